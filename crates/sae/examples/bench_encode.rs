//! Time of one dictionary call on a batch read from a raw file, the Rust side of the Python
//! bindings' benchmark (`crates/python/bench/bench_encode.py`, which writes the file and
//! times the same calls through Python). Not a test: numbers depend on the machine.
//!
//!     cargo run --release -p saelab-sae --example bench_encode -- DICT_DIR ROWS_F32 REPEATS
//!
//! `ROWS_F32` holds little-endian float32 rows of the dictionary's `d_in`. Prints, for
//! `forward` (encode and decode) and `encode`, the median and the minimum seconds per call.

use std::time::Instant;

use saelab_sae::format::load_any;
use saelab_sae::Dictionary;

// The allocator of the `saelab` command and of the Python module: a batch's pre-activations
// are gigabytes, and the system allocator returns and faults them in again on every call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, rows, repeats] = args.as_slice() else {
        return Err("usage: bench_encode DICT_DIR ROWS_F32 REPEATS".into());
    };
    let repeats: usize = repeats.parse()?;
    let sae = load_any(dir.as_ref())?;
    let bytes = std::fs::read(rows)?;
    let x: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if !x.len().is_multiple_of(sae.d_in()) {
        return Err(format!("{rows}: not whole rows of {}", sae.d_in()).into());
    }
    let time = |f: &dyn Fn()| -> (f64, f64) {
        let mut seconds: Vec<f64> = (0..repeats)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect();
        seconds.sort_by(f64::total_cmp);
        (seconds[seconds.len() / 2], seconds[0])
    };
    let forward = time(&|| {
        std::hint::black_box(sae.forward(&x).map(|o| o.reconstruction.len()).ok());
    });
    let encode = time(&|| {
        std::hint::black_box(sae.encode(&x).map(|f| f.nnz()).ok());
    });
    println!(
        "{{\"rows\": {}, \"forward\": [{:.6}, {:.6}], \"encode\": [{:.6}, {:.6}]}}",
        x.len() / sae.d_in(),
        forward.0,
        forward.1,
        encode.0,
        encode.1
    );
    Ok(())
}

//! GGUF reading: dequantisation checked against the block formulas of the format, applied
//! to bytes written by hand here, and clear errors for broken files.

use std::path::Path;

use half::f16;
use saelab_model::gguf::GgufFile;
use saelab_model::weights::WeightSource;

/// A minimal GGUF v3 writer: no metadata, tensors given as raw bytes.
fn write_gguf(path: &Path, magic: &[u8; 4], tensors: &[(&str, [u64; 2], u32, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(magic);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut offset = 0u64;
    for (name, [rows, cols], ty, data) in tensors {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        // GGML lists dimensions innermost first.
        out.extend_from_slice(&cols.to_le_bytes());
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        while out.len() % 32 != 0 {
            out.push(0);
        }
    }
    std::fs::write(path, out).unwrap();
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

const ROWS: u64 = 2;
const COLS: u64 = 64;
const N: usize = (ROWS * COLS) as usize;

/// Returns (raw bytes, expected values) for each type.
fn q8_0() -> (Vec<u8>, Vec<f32>) {
    let (mut raw, mut want) = (Vec::new(), Vec::new());
    for block in 0..N / 32 {
        let d = 0.01 + block as f32 * 0.003;
        raw.extend_from_slice(&f16_bytes(d));
        let d = f16::from_f32(d).to_f32();
        for q in bytes(32, block as u64) {
            raw.push(q);
            want.push(q as i8 as f32 * d);
        }
    }
    (raw, want)
}

fn q4_0() -> (Vec<u8>, Vec<f32>) {
    let (mut raw, mut want) = (Vec::new(), Vec::new());
    for block in 0..N / 32 {
        let d = 0.05 - block as f32 * 0.01;
        raw.extend_from_slice(&f16_bytes(d));
        let d = f16::from_f32(d).to_f32();
        let qs = bytes(16, 100 + block as u64);
        raw.extend_from_slice(&qs);
        let mut vals = vec![0.0; 32];
        for (j, q) in qs.iter().enumerate() {
            vals[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            vals[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
        want.extend(vals);
    }
    (raw, want)
}

fn q4_1() -> (Vec<u8>, Vec<f32>) {
    let (mut raw, mut want) = (Vec::new(), Vec::new());
    for block in 0..N / 32 {
        let (d, m) = (0.02 + block as f32 * 0.01, -0.3 + block as f32 * 0.1);
        raw.extend_from_slice(&f16_bytes(d));
        raw.extend_from_slice(&f16_bytes(m));
        let (d, m) = (f16::from_f32(d).to_f32(), f16::from_f32(m).to_f32());
        let qs = bytes(16, 200 + block as u64);
        raw.extend_from_slice(&qs);
        let mut vals = vec![0.0; 32];
        for (j, q) in qs.iter().enumerate() {
            vals[j] = (q & 0x0f) as f32 * d + m;
            vals[j + 16] = (q >> 4) as f32 * d + m;
        }
        want.extend(vals);
    }
    (raw, want)
}

fn f32s() -> (Vec<u8>, Vec<f32>) {
    let want: Vec<f32> = (0..N).map(|i| (i as f32 * 0.37).sin()).collect();
    (want.iter().flat_map(|v| v.to_le_bytes()).collect(), want)
}

fn f16s() -> (Vec<u8>, Vec<f32>) {
    let vals: Vec<f16> = (0..N)
        .map(|i| f16::from_f32((i as f32 * 0.11).cos() * 3.0))
        .collect();
    (
        vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
        vals.iter().map(|v| v.to_f32()).collect(),
    )
}

#[test]
fn dequantises_every_supported_type_like_the_format_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.gguf");
    // GGML type ids: F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 8.
    let cases = [
        ("f32", 0u32, f32s()),
        ("f16", 1, f16s()),
        ("q4_0", 2, q4_0()),
        ("q4_1", 3, q4_1()),
        ("q8_0", 8, q8_0()),
    ];
    let tensors: Vec<_> = cases
        .iter()
        .map(|(name, ty, (raw, _))| (*name, [ROWS, COLS], *ty, raw.clone()))
        .collect();
    write_gguf(&path, b"GGUF", &tensors);
    let mut g = GgufFile::open(&path).unwrap();
    for (name, _, (_, want)) in &cases {
        let t = g.tensor(name).unwrap();
        assert_eq!(t.dims(), &[ROWS as usize, COLS as usize], "{name}");
        let got = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{name}[{i}]: {g} vs {w}"
            );
        }
    }
}

fn open_err(path: &Path) -> String {
    match GgufFile::open(path) {
        Ok(_) => panic!("{} opened without error", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.gguf");
    let msg = open_err(&path);
    assert!(
        msg.contains("absent.gguf") && msg.contains("no such GGUF file"),
        "{msg}"
    );
}

#[test]
fn wrong_magic_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("magic.gguf");
    write_gguf(&path, b"GGML", &[("t", [ROWS, COLS], 0, f32s().0)]);
    let msg = open_err(&path);
    assert!(
        msg.contains("magic.gguf") && msg.contains("not a GGUF file"),
        "{msg}"
    );
}

#[test]
fn truncated_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    write_gguf(&path, b"GGUF", &[("t", [ROWS, COLS], 0, f32s().0)]);
    let full = std::fs::read(&path).unwrap();
    // Cut inside the tensor data: the header is readable but a tensor runs past the end.
    std::fs::write(&path, &full[..full.len() - 100]).unwrap();
    let msg = open_err(&path);
    assert!(
        msg.contains("cut.gguf") && msg.contains("truncated") && msg.contains("`t`"),
        "{msg}"
    );
    // Cut inside the header.
    std::fs::write(&path, &full[..30]).unwrap();
    let msg = open_err(&path);
    assert!(
        msg.contains("cut.gguf") && msg.contains("truncated or corrupt"),
        "{msg}"
    );
    // Shorter than the magic.
    std::fs::write(&path, &full[..2]).unwrap();
    let msg = open_err(&path);
    assert!(msg.contains("too short"), "{msg}");
}

#[test]
fn unsupported_quant_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iq.gguf");
    // Type 16 is IQ2_XXS, which saelab does not dequantise.
    write_gguf(&path, b"GGUF", &[("t", [ROWS, 256], 16, vec![0u8; 1024])]);
    let msg = open_err(&path);
    assert!(
        msg.contains("iq.gguf") && msg.contains("unsupported tensor type IQ2_XXS"),
        "{msg}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.gguf");
    write_gguf(&path, b"GGUF", &[("t", [ROWS, COLS], 0, f32s().0)]);
    let mut g = GgufFile::open(&path).unwrap();
    let msg = g.tensor("blk.0.attn_q.weight").unwrap_err().to_string();
    assert!(
        msg.contains("one.gguf") && msg.contains("blk.0.attn_q.weight"),
        "{msg}"
    );
}

/// Header fields that make a tensor read bytes that are not its own used to load and give
/// garbage: a type changed to a wider one (it runs into the next tensor) and an offset off
/// the alignment are refused, naming the tensor.
#[test]
fn tensors_reading_past_their_own_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.gguf");
    let tensors = [
        ("a", [ROWS, COLS], 1u32, f16s().0),
        ("b", [ROWS, COLS], 1u32, f16s().0),
    ];
    write_gguf(&path, b"GGUF", &tensors);
    GgufFile::open(&path).expect("the file as written is sound");
    let good = std::fs::read(&path).unwrap();
    // Header: magic, version, counts (24 bytes); per tensor: name length (8), name, dims
    // count (4), two dims (16), type (4), offset (8).
    let entry = 8 + 1 + 4 + 16 + 4 + 8;
    let type_of_a = 24 + 8 + 1 + 4 + 16;
    let offset_of_b = 24 + entry + 8 + 1 + 4 + 16 + 4;

    let mut wider = good.clone();
    wider[type_of_a..type_of_a + 4].copy_from_slice(&0u32.to_le_bytes()); // F16 → F32
    std::fs::write(&path, &wider).unwrap();
    let msg = open_err(&path);
    assert!(
        msg.contains("`a`") && msg.contains("runs") && msg.contains("`b`"),
        "{msg}"
    );

    let mut unaligned = good.clone();
    let at = u64::from_le_bytes(good[offset_of_b..offset_of_b + 8].try_into().unwrap());
    unaligned[offset_of_b..offset_of_b + 8].copy_from_slice(&(at + 4).to_le_bytes());
    std::fs::write(&path, &unaligned).unwrap();
    let msg = open_err(&path);
    assert!(msg.contains("`b`") && msg.contains("alignment"), "{msg}");
}

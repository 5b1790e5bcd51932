//! The shuffling buffer on synthetic windows: batches mix many windows, every token comes out
//! once, window batches keep their masks, and too small a buffer is a clear error.

use saelab_data::activations::{
    ActivationBatch, ActivationBuffer, ActivationWindow, BatchShape, BufferConfig, HookLayout,
    Layout, WindowStream,
};

const CTX: usize = 16;
const D: usize = 8;

fn layout() -> Layout {
    Layout {
        ctx: CTX,
        hooks: vec![HookLayout {
            name: "h".into(),
            d: D,
        }],
    }
}

/// Window `w`: position 0 is the start token, the last three are padding in odd windows;
/// every activation value encodes (window, position).
fn window(w: u64) -> ActivationWindow {
    let real = if w % 2 == 1 { CTX - 3 } else { CTX };
    ActivationWindow {
        index: w,
        ids: (0..CTX as u32).collect(),
        mask: (0..CTX).map(|t| u8::from(t < real)).collect(),
        special: (0..CTX).map(|t| t == 0 || t >= real).collect(),
        hooks: vec![(0..CTX * D)
            .map(|i| (w * 1000 + (i / D) as u64) as f32)
            .collect()],
    }
}

fn stream(windows: u64) -> WindowStream {
    WindowStream::spawn(layout(), 2, move |sink| {
        for start in (0..windows).step_by(10) {
            if !sink.send((start..(start + 10).min(windows)).map(window).collect()) {
                break;
            }
        }
        Ok(())
    })
}

fn buffer(windows: u64, bytes: usize, shape: BatchShape) -> Vec<ActivationBatch> {
    let config = BufferConfig {
        bytes,
        shape,
        seed: 42,
        include_special: false,
    };
    ActivationBuffer::new(stream(windows), config)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn consecutive_rows_come_from_many_windows() {
    let row = ActivationBuffer::bytes_per_row(&layout(), 1);
    // Room for about 60 windows of tokens; 400 windows go through.
    let batches = buffer(400, 60 * CTX * row, BatchShape::Tokens(64));
    let full: Vec<&ActivationBatch> = batches.iter().filter(|b| b.rows == 64).collect();
    assert!(full.len() > 50);
    let mut distinct_total = 0usize;
    let mut same_neighbour = 0usize;
    let mut pairs = 0usize;
    for b in &full {
        let mut windows: Vec<u64> = b.origin.iter().map(|o| o.0).collect();
        same_neighbour += windows.windows(2).filter(|p| p[0] == p[1]).count();
        pairs += windows.len() - 1;
        windows.sort();
        windows.dedup();
        distinct_total += windows.len();
    }
    let mean_distinct = distinct_total as f64 / full.len() as f64;
    let neighbour_rate = same_neighbour as f64 / pairs as f64;
    // Drawing 64 of ~30-60 windows' tokens uniformly gives ~35 distinct windows and a
    // neighbour in the same window ~1/45 of the time; an unshuffled stream gives 4-5 and ~0.93.
    assert!(
        mean_distinct > 25.0,
        "mean distinct windows per batch {mean_distinct}"
    );
    assert!(
        neighbour_rate < 0.08,
        "same-window neighbours {neighbour_rate}"
    );
    // Values travel with their origin.
    for b in &full {
        for (r, &(w, t)) in b.origin.iter().enumerate() {
            assert_eq!(b.hooks[0][r * D], (w * 1000 + t as u64) as f32);
        }
    }
}

#[test]
fn every_training_token_comes_out_exactly_once() {
    let batches = buffer(101, 200_000, BatchShape::Tokens(50));
    let mut origins: Vec<(u64, u32)> = batches.iter().flat_map(|b| b.origin.clone()).collect();
    let n = origins.len();
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), n);
    // 51 even windows with 15 tokens (start left out), 50 odd ones with 12.
    assert_eq!(n, 51 * 15 + 50 * 12);
    assert!(origins.iter().all(|&(_, t)| t != 0));
    assert!(batches[..batches.len() - 1].iter().all(|b| b.rows == 50));
}

#[test]
fn window_batches_keep_masks_and_special_flags() {
    let batches = buffer(40, 200_000, BatchShape::Windows(4));
    let mut seen = Vec::new();
    for b in &batches {
        assert_eq!(b.ids.len(), b.rows * CTX);
        assert_eq!(b.hooks[0].len(), b.rows * CTX * D);
        for (r, &(w, _)) in b.origin.iter().enumerate() {
            let original = window(w);
            assert_eq!(&b.mask[r * CTX..(r + 1) * CTX], original.mask.as_slice());
            assert_eq!(
                &b.special[r * CTX..(r + 1) * CTX],
                original.special.as_slice()
            );
            assert_eq!(
                &b.hooks[0][r * CTX * D..(r + 1) * CTX * D],
                original.hooks[0].as_slice()
            );
            seen.push(w);
        }
    }
    seen.sort();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    let first: Vec<u64> = batches[0].origin.iter().map(|o| o.0).collect();
    assert_ne!(first, vec![0, 1, 2, 3], "windows are drawn at random");
}

#[test]
fn a_buffer_too_small_for_a_batch_is_an_error_naming_the_flag() {
    let err = refusal_of_buffer(1000);
    assert!(
        err.contains("buffer bytes") && err.contains("batch of 64"),
        "{err}"
    );
}

#[test]
fn a_producer_error_ends_the_stream_with_that_error() {
    let failing = WindowStream::spawn(layout(), 1, |sink| {
        sink.send(vec![window(0)]);
        Err(saelab_data::DataError::invalid(
            "source",
            "broke on purpose",
        ))
    });
    let config = BufferConfig {
        bytes: 100_000,
        shape: BatchShape::Tokens(8),
        seed: 0,
        include_special: false,
    };
    let results: Vec<_> = ActivationBuffer::new(failing, config).unwrap().collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap()
        .to_string();
    assert!(err.contains("broke on purpose"), "{err}");
}

/// A buffer over a stream that names a hook twice is refused (it used to panic).
#[test]
fn a_stream_with_a_repeated_hook_is_refused() {
    let mut repeated = layout();
    repeated.hooks.push(repeated.hooks[0].clone());
    let stream = WindowStream::spawn(repeated, 1, |_| Ok(()));
    let config = BufferConfig {
        bytes: 1 << 20,
        shape: BatchShape::Tokens(8),
        seed: 0,
        include_special: false,
    };
    let err = ActivationBuffer::new(stream, config)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("h is given more than once"), "{err}");
}

/// Buffer sizes past the machine's memory, and layouts whose row size overflows, are refused
/// before anything is allocated (`--buffer-mib 100000000` used to abort).
#[test]
fn huge_buffers_and_widths_are_refused_before_allocating() {
    // Where the machine's memory is unknown only the layout checks below apply.
    if let Some(memory) = saelab_data::activations::buffer::physical_memory() {
        let beyond = usize::try_from(memory).unwrap().saturating_add(1);
        for bytes in [
            beyond,
            beyond.saturating_mul(2),
            100_000_000 << 20,
            usize::MAX,
        ] {
            let err = refusal_of_buffer(bytes);
            assert!(
                err.contains("buffer bytes") && err.contains("memory"),
                "{bytes}: {err}"
            );
        }
    }
    for d in [usize::MAX, usize::MAX / 2, usize::MAX / 4 + 1] {
        let wide = Layout {
            ctx: CTX,
            hooks: vec![
                HookLayout {
                    name: "a".into(),
                    d,
                },
                HookLayout {
                    name: "b".into(),
                    d,
                },
            ],
        };
        for shape in [BatchShape::Tokens(64), BatchShape::Windows(2)] {
            let config = BufferConfig {
                bytes: 1 << 20,
                shape,
                seed: 0,
                include_special: false,
            };
            let stream = WindowStream::spawn(wide.clone(), 1, |_| Ok(()));
            let err = ActivationBuffer::new(stream, config)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("buffer bytes"), "d = {d}: {err}");
        }
    }
}

/// The error of a buffer of `bytes` asked for batches of 64 tokens.
fn refusal_of_buffer(bytes: usize) -> String {
    let config = BufferConfig {
        bytes,
        shape: BatchShape::Tokens(64),
        seed: 0,
        include_special: false,
    };
    ActivationBuffer::new(stream(5), config)
        .err()
        .expect("the buffer is refused")
        .to_string()
}

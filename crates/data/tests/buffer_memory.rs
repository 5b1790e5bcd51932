//! Peak memory while streaming ten times more activations than the buffer holds: the
//! buffer flag plus a stated overhead (the windows in flight between producer and buffer and
//! one output batch). Alone in its own test binary so that the process's peak RSS is its own.

use saelab_data::activations::{
    ActivationBuffer, ActivationWindow, BatchShape, BufferConfig, HookLayout, Layout, WindowStream,
};

const CTX: usize = 128;
const D: usize = 576;
const CHUNK: u64 = 32;

fn rss_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn peak_memory_stays_within_the_buffer_flag_plus_overhead() {
    let buffer_bytes: usize = 64 << 20;
    let layout = Layout {
        ctx: CTX,
        hooks: vec![HookLayout {
            name: "blocks.6.hook_resid_post".into(),
            d: D,
        }],
    };
    let window_bytes = CTX * D * 4;
    let total_windows = (10 * buffer_bytes / window_bytes) as u64 + 1;
    let before = rss_kib("VmRSS:");
    let stream = WindowStream::spawn(layout, 2, move |sink| {
        let mut w = 0u64;
        while w < total_windows {
            let chunk = (w..(w + CHUNK).min(total_windows))
                .map(|index| ActivationWindow {
                    index,
                    ids: vec![1; CTX],
                    mask: vec![1; CTX],
                    special: vec![false; CTX],
                    hooks: vec![vec![index as f32; CTX * D]],
                })
                .collect();
            if !sink.send(chunk) {
                break;
            }
            w += CHUNK;
        }
        Ok(())
    });
    let batch = 4096;
    let config = BufferConfig {
        bytes: buffer_bytes,
        shape: BatchShape::Tokens(batch),
        seed: 3,
        include_special: false,
    };
    let mut tokens = 0usize;
    for b in ActivationBuffer::new(stream, config).unwrap() {
        tokens += b.unwrap().rows;
    }
    assert_eq!(tokens, total_windows as usize * CTX);
    let streamed = tokens * D * 4;
    assert!(streamed >= 10 * buffer_bytes);
    let peak_growth = (rss_kib("VmHWM:") - before) * 1024;
    // In flight: the channel's 2 chunks, one being made and one being unpacked into the
    // buffer; one output batch; 16 MiB for the allocator and thread stacks.
    let overhead = 4 * CHUNK as usize * window_bytes + batch * D * 4 + (16 << 20);
    eprintln!(
        "streamed {} MiB through a {} MiB buffer: peak growth {} MiB (allowed {} MiB)",
        streamed >> 20,
        buffer_bytes >> 20,
        peak_growth >> 20,
        (buffer_bytes + overhead) >> 20
    );
    assert!(
        peak_growth <= buffer_bytes + overhead,
        "peak growth {peak_growth} bytes > buffer {buffer_bytes} + overhead {overhead}"
    );
}

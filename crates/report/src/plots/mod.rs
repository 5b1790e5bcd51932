//! One module per plot kind. Each returns `Figure`s: an svg plus a title and a caption that
//! say what is drawn and how it was computed (plain text; the page escapes it).

pub mod ce_bars;
pub mod de_projection;
pub mod death;
pub mod density;
pub mod frontier;
pub mod histogram;
pub mod l0;
pub mod lines;
pub mod mcs;
pub mod probe_k;
pub mod pruning_paths;
pub mod training;

pub struct Figure {
    pub title: String,
    pub svg: String,
    pub caption: String,
}

/// Deterministic subsampling: the stride that keeps at most `max` of `n` items.
pub fn stride_for(n: usize, max: usize) -> usize {
    n.div_ceil(max.max(1)).max(1)
}

/// The start of a per-latent scatter's caption, saying how many were drawn when subsampled.
pub fn per_latent_caption(stride: usize, shown: usize, total: usize) -> String {
    let mut caption = String::from("One point per latent");
    if stride > 1 {
        caption.push_str(&format!(
            " (every {} latent: {} of {} drawn)",
            crate::format::ordinal(stride),
            crate::format::count(shown as u64),
            crate::format::count(total as u64)
        ));
    }
    caption
}

/// A number in [0, 1) that depends only on `i`: spreads dead latents across their band
/// the same way on every render.
pub fn jitter(i: usize) -> f64 {
    (i as f64 * 0.618_033_988_749_895).fract()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_keep_at_most_max() {
        assert_eq!(stride_for(16384, 4000), 5);
        assert_eq!(16384usize.div_ceil(stride_for(16384, 4000)), 3277);
        assert_eq!(stride_for(100, 4000), 1);
        assert_eq!(stride_for(0, 4000), 1);
        assert!((0..1000).map(jitter).all(|j| (0.0..1.0).contains(&j)));
    }
}

//! Colours: one per dictionary (the same everywhere on a page) and a perceptual colour
//! scale for continuous values.

/// Distinct, colour-blind-tolerable hues for series.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Grey for things outside the main data (dead latents, n/a).
pub const NEUTRAL: &str = "#8c8c8c";

pub fn series_colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Stops of the viridis map: dark to light, readable on white at every point, even in grey.
const VIRIDIS: [(u8, u8, u8); 6] = [
    (0x44, 0x01, 0x54),
    (0x41, 0x44, 0x87),
    (0x2a, 0x78, 0x8e),
    (0x22, 0xa8, 0x84),
    (0x7a, 0xd1, 0x51),
    (0xfd, 0xe7, 0x25),
];

/// The viridis colour at `t` in [0, 1] (clamped), as `#rrggbb`.
pub fn viridis(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// Maps values in [lo, hi] onto viridis; values outside take the end colours.
#[derive(Clone, Copy, Debug)]
pub struct ColourScale {
    pub lo: f64,
    pub hi: f64,
}

impl ColourScale {
    /// A scale over the 1st to 99th percentile of `values`, so that a few outliers do not
    /// wash every other point into one colour. None when no value is finite.
    pub fn robust(values: impl Iterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        let (lo, hi) = (at(0.01), at(0.99));
        Some(if hi > lo {
            ColourScale { lo, hi }
        } else {
            ColourScale {
                lo: lo - 0.5,
                hi: hi + 0.5,
            }
        })
    }

    pub fn colour(&self, v: f64) -> String {
        viridis((v - self.lo) / (self.hi - self.lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_clamps() {
        assert_eq!(viridis(0.0), "#440154");
        assert_eq!(viridis(1.0), "#fde725");
        assert_eq!(viridis(7.0), "#fde725");
        assert_eq!(viridis(f64::NAN), "#440154");
    }

    #[test]
    fn robust_scale_ignores_outliers_and_non_finite_values() {
        let mut values: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        values.push(1e9);
        values.push(f64::NAN);
        let s = ColourScale::robust(values.into_iter()).unwrap();
        assert!(s.hi < 1.0 && s.lo < 0.02);
        assert!(ColourScale::robust([f64::NAN].into_iter()).is_none());
    }
}

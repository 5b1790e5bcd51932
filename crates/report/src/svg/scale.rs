//! Mapping data values to pixels (linear or log10) and choosing round tick values.

use crate::format;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleKind {
    Linear,
    Log10,
}

/// A map from the data interval [lo, hi] to the pixel interval [from, to] (which may run
/// backwards, as y does in SVG).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub kind: ScaleKind,
    pub lo: f64,
    pub hi: f64,
    pub from: f64,
    pub to: f64,
}

impl Scale {
    /// A linear scale; an empty or inverted domain is widened so that mapping stays finite.
    pub fn linear(lo: f64, hi: f64, from: f64, to: f64) -> Self {
        let (lo, hi) = widen(lo, hi);
        Scale {
            kind: ScaleKind::Linear,
            lo,
            hi,
            from,
            to,
        }
    }

    /// A log10 scale over positive values; a domain touching zero is cut off at hi / 10.
    pub fn log10(lo: f64, hi: f64, from: f64, to: f64) -> Self {
        let hi = if hi.is_finite() && hi > 0.0 { hi } else { 1.0 };
        let lo = if lo.is_finite() && lo > 0.0 && lo <= hi {
            lo
        } else {
            hi / 10.0
        };
        let (lo, hi) = if hi / lo < 1.0 + 1e-9 {
            (lo / 10f64.sqrt(), hi * 10f64.sqrt())
        } else {
            (lo, hi)
        };
        Scale {
            kind: ScaleKind::Log10,
            lo,
            hi,
            from,
            to,
        }
    }

    /// Where `v` lies in the domain, 0 at lo and 1 at hi (outside [0, 1] when outside it).
    fn fraction(&self, v: f64) -> f64 {
        match self.kind {
            ScaleKind::Linear => (v - self.lo) / (self.hi - self.lo),
            ScaleKind::Log10 if v > 0.0 => {
                (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
            ScaleKind::Log10 => 0.0,
        }
    }

    pub fn map(&self, v: f64) -> f64 {
        self.from + self.fraction(v) * (self.to - self.from)
    }

    /// Like `map`, but values outside the domain land on its edge.
    pub fn map_clamped(&self, v: f64) -> f64 {
        self.from + self.fraction(v).clamp(0.0, 1.0) * (self.to - self.from)
    }

    pub fn contains(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi
    }

    /// Round values inside the domain to label the axis with (about `target` of them).
    pub fn ticks(&self, target: usize) -> Vec<f64> {
        match self.kind {
            ScaleKind::Linear => linear_ticks(self.lo, self.hi, target),
            ScaleKind::Log10 => log_ticks(self.lo, self.hi),
        }
    }
}

/// How tick values are written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TickFormat {
    /// A few significant digits.
    Plain,
    /// With k / M / G suffixes (token counts).
    Si,
    /// The value is a base-10 exponent: -3 is written 10⁻³.
    Exponent,
    /// A fraction written as a percentage.
    Percent,
}

impl TickFormat {
    pub fn label(self, v: f64) -> String {
        match self {
            TickFormat::Plain => format::number(v),
            TickFormat::Si => format::si(v),
            TickFormat::Percent => format::percent(v),
            TickFormat::Exponent if (v - v.round()).abs() < 1e-9 => {
                format::power_of_ten(v.round() as i32)
            }
            TickFormat::Exponent => format::number(10f64.powf(v)),
        }
    }
}

fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if hi - lo > 1e-12 * hi.abs().max(lo.abs()).max(1e-300) {
        return (lo, hi);
    }
    let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
    (lo - pad, hi + pad)
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into about `target` pieces.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span.abs() / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n < 1.5 => 1.0,
        n if n < 3.0 => 2.0,
        n if n < 7.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// [lo, hi] pushed outwards to the nearest multiples of a nice step.
pub fn nice_extent(lo: f64, hi: f64, target: usize) -> (f64, f64) {
    let (lo, hi) = widen(lo, hi);
    let step = nice_step(hi - lo, target);
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

/// Multiples of a nice step inside [lo, hi]; computed as i·step so no error accumulates.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (lo, hi) = widen(lo, hi);
    let step = nice_step(hi - lo, target);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            if v == 0.0 {
                0.0 // no "-0"
            } else {
                v
            }
        })
        .collect()
}

/// Exact powers of ten: parsing "1e-3" is correctly rounded, unlike repeated products.
fn power(exponent: i32) -> f64 {
    format!("1e{exponent}").parse().unwrap_or(f64::NAN)
}

/// Powers of ten inside [lo, hi] (every n-th decade when there are many); over less than
/// about two decades, the 2× and 5× values as well so that a narrow axis still has labels.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let first = (lo.log10() - 1e-9).ceil() as i32;
    let last = (hi.log10() + 1e-9).floor() as i32;
    let decades = last - first + 1;
    if decades >= 3 {
        let every = (decades + 7) / 8;
        return (first..=last)
            .filter(|e| (e - first) % every == 0)
            .map(power)
            .collect();
    }
    let ticks: Vec<f64> = (first - 1..=last)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * power(e)))
        .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
        .collect();
    if ticks.len() >= 2 {
        ticks
    } else {
        linear_ticks(lo, hi, 4)
            .into_iter()
            .filter(|v| *v > 0.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_fall_on_powers_of_ten() {
        assert_eq!(log_ticks(1e-4, 1.0), vec![1e-4, 1e-3, 1e-2, 0.1, 1.0]);
        assert_eq!(log_ticks(3e-5, 0.5), vec![1e-4, 1e-3, 1e-2, 0.1]);
        // Twenty decades: every third one, so the axis stays legible.
        let many = log_ticks(1e-10, 1e10);
        assert_eq!(many.len(), 7);
        assert_eq!(many[0], 1e-10);
        assert_eq!(many[1], 1e-7);
    }

    #[test]
    fn narrow_log_axes_get_two_and_five_multiples() {
        assert_eq!(log_ticks(2.0, 60.0), vec![2.0, 5.0, 10.0, 20.0, 50.0]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn log_scale_maps_decades_evenly() {
        let s = Scale::log10(1e-3, 1.0, 0.0, 300.0);
        assert!((s.map(1e-2) - 100.0).abs() < 1e-9);
        assert!((s.map(0.1) - 200.0).abs() < 1e-9);
        assert_eq!(s.map_clamped(10.0), 300.0);
        assert_eq!(s.map(0.0), 0.0); // log of zero lands on the low edge, not NaN
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_domain() {
        assert_eq!(
            linear_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(linear_ticks(-4.6, -0.1, 5), vec![-4.0, -3.0, -2.0, -1.0]);
        assert_eq!(nice_extent(0.3, 9.2, 5), (0.0, 10.0));
        // A one-value domain is widened instead of dividing by zero.
        let s = Scale::linear(5.0, 5.0, 0.0, 100.0);
        assert!(s.map(5.0).is_finite());
    }

    #[test]
    fn tick_labels() {
        assert_eq!(TickFormat::Exponent.label(-3.0), "10⁻³");
        assert_eq!(TickFormat::Si.label(250_000.0), "250k");
        assert_eq!(TickFormat::Percent.label(0.5), "50%");
    }
}

//! Numbers as pages show them.

/// Three significant digits, scientific outside [0.01, 100000).
pub fn value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(0.01..100_000.0).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// Thousands separated by commas.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A density as a percentage with its log10 beside it.
pub fn density(d: f64) -> String {
    if d <= 0.0 {
        "dead".into()
    } else {
        format!("{} % (10^{:.2})", value(d * 100.0), d.log10())
    }
}

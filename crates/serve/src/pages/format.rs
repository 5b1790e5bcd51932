//! Numbers as pages show them.

use maud::{html, Markup};

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

/// 10 to an integer power as a log axis labels it: `10⁻⁴`, `10⁻¹`, `1`, `10`, `10²`.
pub fn power_of_ten(exponent: i32) -> String {
    match exponent {
        0 => "1".into(),
        1 => "10".into(),
        e => {
            let digits: String = e
                .to_string()
                .chars()
                .map(|c| match c {
                    '-' => '⁻',
                    d => ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹']
                        [d.to_digit(10).unwrap_or(0) as usize],
                })
                .collect();
            format!("10{digits}")
        }
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

/// P(stays on at the next token), or a dash where it fired too few times to say.
pub fn persistence(p_stay: Option<f64>) -> Markup {
    html! {
        @match p_stay {
            Some(p) => (format!("{p:.2}")),
            None => span.muted { "–" },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_ten_read_as_on_a_log_axis() {
        let shown: Vec<String> = [-12, -4, -1, 0, 1, 2, 4, 10].map(power_of_ten).into();
        assert_eq!(
            shown,
            ["10⁻¹²", "10⁻⁴", "10⁻¹", "1", "10", "10²", "10⁴", "10¹⁰"]
        );
    }
}

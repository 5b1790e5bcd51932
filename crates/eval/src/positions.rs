//! Which positions of a batch of windows each metric counts (METRICS.md, "Which positions
//! count"). Rows are flattened `[window, position]`.

use saelab_data::windows::Window;

#[derive(Clone, Debug, PartialEq)]
pub struct Positions {
    /// Where a dictionary's reconstruction replaces the activation: real and not special.
    pub splice: Vec<bool>,
    /// Where reconstruction and sparsity metrics are measured: real, and not special unless
    /// special tokens are included.
    pub measured: Vec<bool>,
    /// Where next-token CE and KL count: the input is real and not special and the next
    /// token is real.
    pub next_token: Vec<bool>,
}

impl Positions {
    pub fn of(windows: &[Window], include_special: bool) -> Self {
        let mut p = Positions {
            splice: Vec::new(),
            measured: Vec::new(),
            next_token: Vec::new(),
        };
        for w in windows {
            let len = w.ids.len();
            for t in 0..len {
                let real = w.mask[t] == 1;
                let plain = real && !w.special[t];
                p.splice.push(plain);
                p.measured.push(if include_special { real } else { plain });
                p.next_token
                    .push(plain && t + 1 < len && w.mask[t + 1] == 1);
            }
        }
        p
    }
}

/// Counts of `true`.
pub fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|f| **f).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(ids: &[u32], mask: &[u8], special: &[bool]) -> Window {
        Window {
            ids: ids.to_vec(),
            mask: mask.to_vec(),
            special: special.to_vec(),
        }
    }

    #[test]
    fn padding_and_special_tokens_are_left_out() {
        // [start, a, sep, b, pad, pad]
        let w = window(
            &[0, 5, 0, 6, 0, 0],
            &[1, 1, 1, 1, 0, 0],
            &[true, false, true, false, true, true],
        );
        let p = Positions::of(std::slice::from_ref(&w), false);
        assert_eq!(p.splice, [false, true, false, true, false, false]);
        assert_eq!(p.measured, p.splice);
        // a predicts sep (counted); b's next token is padding (not counted).
        assert_eq!(p.next_token, [false, true, false, false, false, false]);
        let with_special = Positions::of(&[w], true);
        assert_eq!(
            with_special.measured,
            [true, true, true, true, false, false]
        );
        assert_eq!(with_special.splice, p.splice);
    }
}

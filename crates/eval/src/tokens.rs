//! The tokens an evaluation reads: the first N of a corpus, in order, cut into windows.

use saelab_data::{DataError, Window};

use crate::error::{EvalError, Result};

/// Windows holding exactly the first `n` window positions (start and separator tokens
/// included) of `stream`; the last window is padded after its n-th token. A corpus with
/// fewer tokens is an error naming both counts.
pub fn first_tokens(
    stream: impl Iterator<Item = std::result::Result<Window, DataError>>,
    n: u64,
) -> Result<Vec<Window>> {
    if n == 0 {
        return Err(EvalError::invalid("tokens", "must be at least 1"));
    }
    let mut out = Vec::new();
    let mut have = 0u64;
    for window in stream {
        let mut window = window.map_err(EvalError::Data)?;
        let real = window.real_len() as u64;
        if have + real >= n {
            truncate(&mut window, (n - have) as usize);
            out.push(window);
            return Ok(out);
        }
        have += real;
        out.push(window);
    }
    Err(EvalError::Data(DataError::invalid(
        "tokens",
        format!("{n} tokens requested but the corpus has only {have}"),
    )))
}

/// Masks every position from the `keep`-th real one on.
fn truncate(window: &mut Window, keep: usize) {
    let mut seen = 0;
    for t in 0..window.ids.len() {
        if window.mask[t] == 1 {
            if seen >= keep {
                window.mask[t] = 0;
                window.special[t] = true;
            }
            seen += 1;
        }
    }
}

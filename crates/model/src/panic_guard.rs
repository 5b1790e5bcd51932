//! Libraries that panic on malformed input they were asked to parse (the tokenizers crate
//! unwraps some of its own errors; candle's GGUF reader sizes a `Vec` from a header field;
//! the parquet crate indexes past corrupt lengths): `quietly` turns such a panic into an
//! error for the caller to name the file, and prints nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic inside it becomes `None` without a message on stderr. The panic hook
/// is process-wide, so a panic on another thread meanwhile is also silent (never lost: it
/// still unwinds there).
pub fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.ok()
}

#[cfg(test)]
mod tests {
    use super::quietly;

    #[test]
    fn a_panic_becomes_an_error_and_a_value_passes_through() {
        assert_eq!(quietly(|| 7), Some(7));
        let v: Vec<u8> = Vec::new();
        assert_eq!(quietly(|| v[3]), None);
    }
}

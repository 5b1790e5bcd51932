//! Streams that end at their first error: a reader that failed once does not go on.

/// The next item of a stream that stops for good after its end or its first error.
/// `done` remembers that; `next` produces `Ok(None)` at the end.
pub fn next_until_error<T, E>(
    done: &mut bool,
    next: impl FnOnce() -> Result<Option<T>, E>,
) -> Option<Result<T, E>> {
    if *done {
        return None;
    }
    let item = next().transpose();
    if !matches!(item, Some(Ok(_))) {
        *done = true;
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_the_first_error_and_after_the_end() {
        let mut done = false;
        assert_eq!(
            next_until_error(&mut done, || Ok::<_, ()>(Some(1))),
            Some(Ok(1))
        );
        assert_eq!(
            next_until_error(&mut done, || Err::<Option<i32>, _>(())),
            Some(Err(()))
        );
        assert_eq!(next_until_error(&mut done, || Ok::<_, ()>(Some(2))), None);
        let mut done = false;
        assert_eq!(
            next_until_error(&mut done, || Ok::<Option<i32>, ()>(None)),
            None
        );
        assert_eq!(next_until_error(&mut done, || Ok::<_, ()>(Some(3))), None);
    }
}

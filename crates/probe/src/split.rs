//! Seeded shuffles and the train/validation split, made per document and per class so that
//! the tokens of one document never sit on both sides and every class keeps its share.

use saelab_sae::rng::SplitMix64;

/// Fisher–Yates with the project's seeded generator.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// `true` for the documents in the validation set: within each class, a seeded
/// `fraction` of its documents (at least one where the class has two or more, so that every
/// class with training examples is also scored).
pub fn validation_documents(labels: &[u32], classes: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let mut held = vec![false; labels.len()];
    for class in 0..classes as u32 {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        shuffle(&mut members, seed ^ (u64::from(class) << 32));
        let n = members.len();
        let take = ((n as f64 * fraction).round() as usize)
            .clamp(usize::from(n >= 2), n.saturating_sub(1));
        for &i in &members[..take] {
            held[i] = true;
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_seeded_permutations() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut a, 3);
        shuffle(&mut b, 3);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn every_class_keeps_its_share_on_both_sides() {
        let labels: Vec<u32> = (0..100).map(|i| u32::from(i >= 80)).collect();
        let held = validation_documents(&labels, 2, 0.25, 1);
        let count = |class: u32, side: bool| {
            (0..100)
                .filter(|&i| labels[i] == class && held[i] == side)
                .count()
        };
        assert_eq!((count(0, true), count(0, false)), (20, 60));
        assert_eq!((count(1, true), count(1, false)), (5, 15));
        // A class of two still has one document on each side.
        let held = validation_documents(&[0, 0, 0, 0, 1, 1], 2, 0.1, 1);
        assert_eq!(held.iter().filter(|&&h| h).count(), 2);
    }
}

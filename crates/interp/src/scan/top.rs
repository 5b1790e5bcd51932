//! The k largest activations of a feature, in one pass: a heap whose root is the weakest
//! example kept, so a candidate is compared with one value.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::example::Example;

/// Orders examples so that the heap's maximum is the one to drop first: the lowest value,
/// and among equal values the later position (earlier positions win ties, as argmax does).
struct Weakest {
    row: u64,
    example: Example,
}

impl PartialEq for Weakest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Weakest {}
impl PartialOrd for Weakest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Weakest {
    fn cmp(&self, other: &Self) -> Ordering {
        weaker(other.example.value, other.row, self.example.value, self.row)
    }
}

/// `Greater` when (value a, row a) ranks above (value b, row b).
fn weaker(a_value: f32, a_row: u64, b_value: f32, b_row: u64) -> Ordering {
    a_value.total_cmp(&b_value).then_with(|| b_row.cmp(&a_row))
}

pub struct TopExamples {
    k: usize,
    heap: BinaryHeap<Weakest>,
}

impl TopExamples {
    pub fn new(k: usize) -> Self {
        TopExamples {
            k,
            heap: BinaryHeap::new(),
        }
    }

    /// Whether an activation of `value` at `row` would be kept (checked before building its
    /// context, which is the costly part).
    pub fn admits(&self, value: f32, row: u64) -> bool {
        if self.k == 0 {
            return false;
        }
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.k => {
                weaker(value, row, w.example.value, w.row) == Ordering::Greater
            }
            _ => true,
        }
    }

    pub fn push(&mut self, row: u64, example: Example) {
        self.heap.push(Weakest { row, example });
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// The kept examples, strongest first.
    pub fn into_sorted(self) -> Vec<Example> {
        // into_sorted_vec is ascending in `Weakest` order: strongest first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.example)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn example(value: f32, pos: u32) -> Example {
        Example {
            window: 0,
            ids: Arc::from(vec![0u32; 8]),
            pos,
            value,
            start: pos,
            acts: vec![value],
            key: 0,
        }
    }

    #[test]
    fn keeps_the_k_largest_with_earlier_positions_winning_ties() {
        let mut top = TopExamples::new(3);
        for (pos, v) in [1.0f32, 5.0, 3.0, 5.0, 0.5, 4.0, 3.0].iter().enumerate() {
            if top.admits(*v, pos as u64) {
                top.push(pos as u64, example(*v, pos as u32));
            }
        }
        let kept: Vec<(f32, u32)> = top.into_sorted().iter().map(|e| (e.value, e.pos)).collect();
        assert_eq!(kept, [(5.0, 1), (5.0, 3), (4.0, 5)]);
    }

    #[test]
    fn k_zero_keeps_nothing() {
        let top = TopExamples::new(0);
        assert!(!top.admits(1.0, 0));
    }
}

//! (The carry design: next slice.)

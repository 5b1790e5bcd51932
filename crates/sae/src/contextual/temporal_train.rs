//! (The temporal SAE trainer: next slice.)

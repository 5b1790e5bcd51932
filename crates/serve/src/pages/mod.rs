//! One file per page: its handler and its markup. `layout`, `format`, `plots`, `tokens`
//! (running text) and `chip` (a token alone) are the pieces they share.

pub mod ablation;
pub mod api;
pub mod chip;
pub mod dictionary;
pub mod feature;
pub mod fires;
pub mod format;
pub mod index;
pub mod layout;
pub mod plots;
pub mod search;
pub mod steer;
pub mod tokens;

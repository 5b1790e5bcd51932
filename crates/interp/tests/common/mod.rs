//! Helpers shared by the interp crate's tests.

use std::path::Path;

use saelab_model::LoadedModel;

/// The tiny random Llama fixture (an HF folder).
pub fn tiny_llama() -> LoadedModel {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tiny/llama"
    );
    saelab_model::load::load_hf_dir(Path::new(dir), "llama").unwrap()
}

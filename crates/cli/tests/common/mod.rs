//! Helpers shared by the CLI's end-to-end tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `saelab` binary under test.
pub fn saelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_saelab"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The tiny random Llama fixture (an HF folder), for fast end-to-end runs.
pub fn tiny_llama() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures/tiny/llama")
        .display()
        .to_string()
}

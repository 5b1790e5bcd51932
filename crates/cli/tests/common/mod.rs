//! Helpers shared by the CLI's end-to-end tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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

/// `saelab ARGS` started with its output discarded, to be killed.
pub fn spawn_quietly<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    saelab()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("saelab starts")
}

/// Kill points from a fixed linear congruential sequence, so that a failing kill test
/// repeats from run to run.
pub struct KillPoints(pub u64);

impl KillPoints {
    /// The next number in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Files in `dir` whose name holds `.partial` (a feature database's temporary file).
pub fn partial_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect()
}

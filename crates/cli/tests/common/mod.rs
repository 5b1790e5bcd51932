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

/// A cache of the tiny model's `hooks` over the first `tokens` tokens of the wiki corpus in
/// windows of 32, harvested into `dir`.
pub fn tiny_cache(dir: &Path, hooks: &[&str], tokens: u64) {
    let mut c = saelab();
    c.args(["harvest", "--model", &tiny_llama(), "--corpus", "wiki"]);
    for h in hooks {
        c.args(["--hook", h]);
    }
    let o = c
        .args(["--tokens", &tokens.to_string(), "--ctx", "32", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `saelab train` of one small TopK dictionary from `cache` into `out`, plus `extra` flags.
pub fn train_tiny(cache: &Path, out: &Path, extra: &[&str]) -> Output {
    saelab()
        .args(["train", "--sae", "topk:k=4,width=64", "--batch", "64"])
        .args(extra)
        .arg("--cache")
        .arg(cache)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
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

/// The hook the tiny model's test dictionaries read, and its width.
pub const TINY_HOOK: &str = "blocks.0.hook_resid_post";
pub const TINY_D_MODEL: usize = 32;

/// A dictionary of random tied weights (`seed`) reading `TINY_HOOK`, saved in `dir`;
/// returns the folder.
pub fn save_random_dictionary(
    activation: saelab_sae::Activation,
    d_in: usize,
    d_sae: usize,
    seed: u64,
    dir: &Path,
) -> String {
    use saelab_sae::Dictionary;
    let weights = saelab_sae::SaeWeights::init_tied(d_in, d_sae, 1.0, seed);
    let mut sae = saelab_sae::Sae::new(weights, activation).unwrap();
    sae.metadata.hook_name = Some(TINY_HOOK.to_string());
    sae.save(dir).unwrap();
    dir.display().to_string()
}

/// What a small `saelab features` build reads: a corpus of 40 short paragraphs and two
/// dictionaries on the tiny model (`a`: TopK, 64 latents; `b`: ReLU, 48), written into a
/// folder; `args` gives the command for a database path.
pub struct TinyFeatures {
    args: Vec<String>,
}

impl TinyFeatures {
    pub fn new(dir: &Path, tokens: usize, ablate_top: usize) -> Self {
        let corpus = dir.join("corpus.txt");
        let text: String = (0..40)
            .map(|i| format!("{i}. The river runs to the sea, and the road follows the river.\n\n"))
            .collect();
        std::fs::write(&corpus, text).unwrap();
        let activation = saelab_sae::Activation::TopK { k: 4 };
        let a = save_random_dictionary(activation, TINY_D_MODEL, 64, 3, &dir.join("a"));
        let relu = saelab_sae::Activation::Relu;
        let b = save_random_dictionary(relu, TINY_D_MODEL, 48, 5, &dir.join("b"));
        let args = [
            "features".to_string(),
            "--model".into(),
            tiny_llama(),
            "--corpus".into(),
            corpus.display().to_string(),
            "--ctx".into(),
            "16".into(),
            "--tokens".into(),
            tokens.to_string(),
            "--ablate-top".into(),
            ablate_top.to_string(),
            "--sae".into(),
            format!("a={a}"),
            "--sae".into(),
            format!("b={b}"),
        ];
        TinyFeatures {
            args: args.to_vec(),
        }
    }

    /// The command line that builds the database `db`.
    pub fn args(&self, db: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(["--db".into(), db.display().to_string()]);
        args
    }
}

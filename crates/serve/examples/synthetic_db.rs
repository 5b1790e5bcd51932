//! A benchmark-sized feature database on the tiny test model, for the load benchmark:
//! `cargo run --release -p saelab-serve --example synthetic_db -- DIR [WINDOWS] [FEATURES]`
//! writes DIR/features.sqlite (default 256 windows, 16,384 features) and its dictionary.
//! Statistics and examples come from the dictionary's real activations (see
//! tests/common/fixture.rs, which the tests use at a smaller size).

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::path::PathBuf;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: synthetic_db DIR [WINDOWS] [FEATURES]")?,
    );
    let count = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse().map_err(|_| format!("`{a}` is not a count"))
        })
    };
    let (windows, features) = (count(1, 256)?, count(2, 16_384)?);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let db = dir.join("features.sqlite");
    if db.exists() {
        return Err(format!("{} exists already", db.display()));
    }
    let fixture = fixture::build(&dir, &fixture::Spec::large(windows, features));
    println!("{}", fixture.db.display());
    Ok(())
}

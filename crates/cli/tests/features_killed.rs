//! `saelab features` killed with SIGKILL again and again at random points: a database under
//! the final name is always whole (it appears only when a run has written all of it), the
//! temporary files of killed runs are removed by the next run, and the run that completes
//! writes the same bytes as one never interrupted.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{partial_files, saelab, spawn_quietly, stderr, KillPoints, TinyFeatures};

#[test]
fn features_killed_again_and_again_ends_with_the_same_database() {
    let tmp = tempfile::tempdir().unwrap();
    let build = TinyFeatures::new(tmp.path(), 600, 2);
    let args = |db: &Path| build.args(db);

    let whole = tmp.path().join("whole.db");
    let start = Instant::now();
    let o = saelab().args(args(&whole)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut whole_run = start.elapsed();
    let reference = std::fs::read(&whole).unwrap();
    // The premise: two uninterrupted builds write the same bytes.
    let again = tmp.path().join("again.db");
    let o = saelab().args(args(&again)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(&again).unwrap() == reference,
        "two builds differ"
    );

    let killed_dir = tmp.path().join("killed");
    std::fs::create_dir_all(&killed_dir).unwrap();
    let killed = killed_dir.join("features.db");
    // Kill points over the whole run's length, from a fixed linear congruential sequence
    // so that a failure repeats.
    let mut points = KillPoints(0x2545_f491_4f6c_dd1d);
    let (mut kills, mut seen_partial, mut completed) = (0, false, 0);
    // Until a dozen kills, one of them while the database was being written: a run that
    // completes before its kill point must have written the same bytes, and is removed so
    // that the next one starts over (and the kill points follow its length, should the
    // machine's load change).
    for attempt in 0.. {
        assert!(
            attempt < 100,
            "{kills} kills in 100 runs ({completed} completed); seen a partial database: \
             {seen_partial}"
        );
        if kills >= 12 && seen_partial {
            break;
        }
        let started = Instant::now();
        let mut child = spawn_quietly(&args(&killed));
        std::thread::sleep(whole_run.mul_f64(points.below(1500) as f64 / 1000.0));
        child.kill().unwrap(); // SIGKILL (or a no-op if it has just exited)
        if child.wait().unwrap().success() {
            completed += 1;
            whole_run = started.elapsed();
            assert!(
                std::fs::read(&killed).unwrap() == reference,
                "a run differs"
            );
            std::fs::remove_file(&killed).unwrap();
            continue;
        }
        kills += 1;
        // Killed after moving the database into place: it must be whole.
        if killed.exists() {
            assert!(
                std::fs::read(&killed).unwrap() == reference,
                "a killed run left a partial database"
            );
            std::fs::remove_file(&killed).unwrap();
        }
        let partial = partial_files(&killed_dir);
        assert!(
            partial.len() <= 1,
            "stale files are not cleared: {partial:?}"
        );
        seen_partial |= !partial.is_empty();
    }
    if !killed.exists() {
        let o = saelab().args(args(&killed)).output().unwrap();
        assert!(o.status.success(), "after {kills} kills: {}", stderr(&o));
    }
    eprintln!("{kills} kills");
    assert!(
        std::fs::read(&killed).unwrap() == reference,
        "after {kills} kills the database differs"
    );
    assert_eq!(partial_files(&killed_dir), Vec::<String>::new());
}

//! Hub ids with HF_HUB_OFFLINE set: a model in the HF cache loads from it; one that is not
//! fails with a message that says how to pass a local path. (Its own test binary, and one
//! test, because it sets process-wide environment variables.)

use std::path::Path;

#[test]
fn hub_ids_offline_read_the_cache_or_say_how_to_pass_a_local_path() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");

    for id in [
        "gpt2",
        "EleutherAI/pythia-70m-deduped",
        "HuggingFaceTB/SmolLM2-135M",
    ] {
        let err = match saelab_model::load(Some(id)) {
            Ok(_) => panic!("{id} loaded while offline with an empty cache"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(id), "{err}");
        assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
        assert!(err.contains("pass a local path instead"), "{err}");
    }

    // The cache layout the hub client writes: refs/main names a snapshot folder.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama");
    let repo = cache.path().join("models--saelab--tiny-llama");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), snapshot.join(f)).unwrap();
    }
    let from_cache = saelab_model::load(Some("saelab/tiny-llama")).unwrap();
    let local = saelab_model::load::load_hf_dir(&fixture, "tiny").unwrap();
    let ids = local
        .tokenizer
        .encode("cached models load offline")
        .unwrap();
    assert_eq!(
        from_cache
            .tokenizer
            .encode("cached models load offline")
            .unwrap(),
        ids
    );
    let batch = saelab_model::Batch::single(&ids);
    let logits = |m: &saelab_model::LoadedModel| -> Vec<f32> {
        let t = m.model.logits(&batch).unwrap();
        t.flatten_all().unwrap().to_vec1().unwrap()
    };
    assert_eq!(logits(&from_cache), logits(&local));
}

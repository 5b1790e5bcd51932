//! With no hub reachable and HF_HUB_OFFLINE set, a hub id fails with a message that says how
//! to pass a local path. (Its own test binary: it sets process-wide environment variables.)

#[test]
fn hub_id_offline_says_how_to_pass_a_local_path() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HOME", cache.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    for id in [
        "gpt2",
        "EleutherAI/pythia-70m-deduped",
        "HuggingFaceTB/SmolLM2-135M",
    ] {
        let err = match saelab_model::load(Some(id)) {
            Ok(_) => panic!("{id} loaded while offline"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(id), "{err}");
        assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
        assert!(err.contains("pass a local path instead"), "{err}");
    }
}

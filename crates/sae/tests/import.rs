//! Dictionaries of dictionary_learning (`ae.pt` + `config.json`) and sparsify (`cfg.json` +
//! `sae.safetensors`): loading reproduces the peers' forward passes (computed in Python by
//! `reference/peer_dictionaries.py`), survives a SAELens round trip, and broken folders give
//! errors that name the file and the field.

use std::path::{Path, PathBuf};

use saelab_sae::format::tensors::{to_bytes, TensorFile};
use saelab_sae::format::{detect, load_any, saelens, Format};
use saelab_sae::{Activation, Dictionary, Sae, SaeError};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers")
        .join(name)
}

struct Expected {
    d_in: usize,
    d_sae: usize,
    inputs: Vec<f32>,
    features: Vec<f32>,
    reconstructions: Vec<f32>,
}

fn flat(v: &Value, width: usize) -> Vec<f32> {
    let rows = v.as_array().expect("rows");
    let mut out = Vec::new();
    for row in rows {
        let row = row.as_array().expect("row");
        assert_eq!(row.len(), width);
        out.extend(row.iter().map(|x| x.as_f64().expect("number") as f32));
    }
    out
}

fn expected(dir: &Path) -> Expected {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    let v: Value = serde_json::from_str(&text).expect("json");
    let d_in = v["d_in"].as_u64().expect("d_in") as usize;
    let d_sae = v["d_sae"].as_u64().expect("d_sae") as usize;
    Expected {
        d_in,
        d_sae,
        inputs: flat(&v["inputs"], d_in),
        features: flat(&v["features"], d_sae),
        reconstructions: flat(&v["reconstructions"], d_in),
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    // Relative to the largest value where that exceeds 1: f32 sums over hundreds of
    // dimensions round at that scale.
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-5 * scale,
        "{what}: max |diff| = {worst} (largest value {scale})"
    );
}

/// Loads a fixture, checks it against the Python forward pass, and returns it.
fn check_against_reference(name: &str, format: Format) -> Sae {
    let dir = fixture(name);
    assert_eq!(detect(&dir).expect("detect"), format, "{name}");
    let sae = load_any(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let e = expected(&dir);
    assert_eq!((sae.d_in(), sae.d_sae()), (e.d_in, e.d_sae), "{name}");
    let out = sae.forward(&e.inputs).expect("forward");
    let features = out.features.to_dense();
    assert_close(&format!("{name} features"), &features, &e.features);
    assert_close(
        &format!("{name} reconstructions"),
        &out.reconstruction,
        &e.reconstructions,
    );
    // The same latents fire: no value near zero was kept or dropped by rounding.
    let fired = |f: &[f32]| f.iter().map(|v| *v != 0.0).collect::<Vec<_>>();
    assert_eq!(
        fired(&features),
        fired(&e.features),
        "{name}: active latents"
    );
    sae
}

/// load → save as SAELens → load gives the same encode and decode.
fn check_round_trip(sae: &Sae, name: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    sae.save(tmp.path()).expect("save");
    assert_eq!(detect(tmp.path()).expect("detect"), Format::SaeLens);
    let back = load_any(tmp.path()).expect("load saved");
    let e = expected(&fixture(name));
    let a = sae.forward(&e.inputs).expect("forward");
    let b = back.forward(&e.inputs).expect("forward");
    assert_eq!(a.features, b.features, "{name}: features after round trip");
    assert_eq!(
        a.reconstruction, b.reconstruction,
        "{name}: reconstructions after round trip"
    );
    assert_eq!(back.activation, sae.activation, "{name}");
    assert_eq!(
        back.apply_b_dec_to_input, sae.apply_b_dec_to_input,
        "{name}"
    );
}

#[test]
fn sparsify_topk_matches_reference_and_round_trips() {
    let sae = check_against_reference("sparsify_topk", Format::Sparsify);
    // num_latents 0 → d_in · expansion_factor = 32.
    assert_eq!(sae.activation, Activation::TopK { k: 6 });
    assert!(sae.apply_b_dec_to_input);
    check_round_trip(&sae, "sparsify_topk");
}

#[test]
fn dictionary_learning_standard_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_standard", Format::DictionaryLearning);
    assert_eq!(sae.activation, Activation::Relu);
    assert!(sae.apply_b_dec_to_input, "AutoEncoder subtracts its bias");
    assert_eq!(
        sae.metadata.model_name.as_deref(),
        Some("EleutherAI/pythia-70m-deduped")
    );
    assert_eq!(sae.metadata.context_size, Some(128));
    check_round_trip(&sae, "dl_standard");
}

#[test]
fn dictionary_learning_april_update_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_april", Format::DictionaryLearning);
    assert_eq!(sae.activation, Activation::Relu);
    assert!(!sae.apply_b_dec_to_input, "AutoEncoderNew does not center");
    check_round_trip(&sae, "dl_april");
}

#[test]
fn dictionary_learning_jumprelu_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_jumprelu", Format::DictionaryLearning);
    let Activation::JumpRelu { threshold } = &sae.activation else {
        panic!("expected JumpReLU, got {:?}", sae.activation);
    };
    assert!(
        threshold.iter().any(|t| *t < 0.0),
        "fixture has a negative threshold"
    );
    assert!(!sae.apply_b_dec_to_input);
    check_round_trip(&sae, "dl_jumprelu");
}

#[test]
fn dictionary_learning_gated_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_gated", Format::DictionaryLearning);
    assert!(matches!(sae.activation, Activation::Gated { .. }));
    assert_eq!(sae.architecture(), "gated");
    assert!(
        sae.apply_b_dec_to_input,
        "the gated encoder reads x − decoder_bias"
    );
    // Some open gates have a negative magnitude, so the two halves of the gate both matter.
    let e = expected(&fixture("dl_gated"));
    let pre = sae.pre_activations(&e.inputs).expect("pre");
    let open = pre.iter().filter(|v| **v > 0.0).count();
    let fired = e.features.iter().filter(|v| **v != 0.0).count();
    assert!(fired < open, "{fired} fired of {open} open gates");
    check_round_trip(&sae, "dl_gated");
    // SAELens's gated layout: b_gate, r_mag and b_mag instead of b_enc.
    let tmp = tempfile::tempdir().expect("tempdir");
    sae.save(tmp.path()).expect("save");
    let file = TensorFile::open(&tmp.path().join(saelens::WEIGHTS_FILE)).expect("open");
    for name in ["b_gate", "r_mag", "b_mag"] {
        assert_eq!(file.read(name, &[32]).expect(name).len(), 32);
    }
    assert!(
        file.read("b_enc", &[32]).is_err(),
        "no b_enc in a gated file"
    );
}

#[test]
fn dictionary_learning_topk_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_topk", Format::DictionaryLearning);
    assert_eq!(sae.activation, Activation::TopK { k: 6 });
    check_round_trip(&sae, "dl_topk");
}

#[test]
fn dictionary_learning_batchtopk_runs_as_jumprelu_with_its_global_threshold() {
    let sae = check_against_reference("dl_batchtopk", Format::DictionaryLearning);
    assert_eq!(
        sae.activation,
        Activation::JumpRelu {
            threshold: vec![0.9; 32]
        }
    );
    check_round_trip(&sae, "dl_batchtopk");
}

#[test]
fn dictionary_learning_matryoshka_matches_reference_and_round_trips() {
    let sae = check_against_reference("dl_matryoshka", Format::DictionaryLearning);
    assert!(matches!(sae.activation, Activation::JumpRelu { .. }));
    check_round_trip(&sae, "dl_matryoshka");
}

/// The Matryoshka prefix widths `expected.json` records, and the ones saelab read.
fn assert_matryoshka_widths(sae: &Sae, name: &str) {
    let text = std::fs::read_to_string(fixture(name).join("expected.json")).expect("expected");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        sae.metadata.extra.get("matryoshka_widths"),
        Some(&v["matryoshka_widths"]),
        "{name}"
    );
}

/// Made by dictionary_learning's own `trainSAE` (reference/matryoshka_peers.py): normalised
/// training, so its save folded the scale into the biases and the threshold.
#[test]
fn a_matryoshka_trained_by_dictionary_learning_matches_its_forward() {
    let name = "dl_matryoshka_trained";
    let sae = check_against_reference(name, Format::DictionaryLearning);
    let Activation::JumpRelu { threshold } = &sae.activation else {
        panic!("{name}: {:?}", sae.activation);
    };
    assert!(threshold.iter().all(|t| *t == threshold[0] && *t > 0.0));
    assert_matryoshka_widths(&sae, name);
    check_round_trip(&sae, name);
}

/// Trained and saved by SAELens's MatryoshkaBatchTopKTrainingSAE (as JumpReLU).
#[test]
fn a_matryoshka_saved_by_saelens_matches_its_forward() {
    let sae = check_against_reference("saelens_matryoshka", Format::SaeLens);
    assert!(matches!(sae.activation, Activation::JumpRelu { .. }));
}

/// Written by `saelab train` and read by SAELens's `SAE.load_from_disk`: SAELens's features
/// and reconstructions are saelab's.
#[test]
fn a_matryoshka_written_by_saelab_reads_the_same_in_saelens() {
    let name = "saelab_matryoshka";
    let sae = check_against_reference(name, Format::SaeLens);
    assert_matryoshka_widths(&sae, name);
}

/// A transcoder fixture against its peer's forward (skip connection included), with the
/// kind of transcoder saelab read, and a save-and-load round trip.
fn check_transcoder(name: &str, format: Format, architecture: &str) -> Sae {
    let sae = check_against_reference(name, format);
    assert_eq!(sae.architecture(), architecture, "{name}");
    assert!(!sae.apply_b_dec_to_input, "{name}: b_dec is an output bias");
    let tmp = tempfile::tempdir().expect("tempdir");
    sae.save(tmp.path()).expect("save");
    let back = load_any(tmp.path()).expect("load saved");
    let e = expected(&fixture(name));
    assert_eq!(
        sae.forward(&e.inputs).expect("forward"),
        back.forward(&e.inputs).expect("forward"),
        "{name}: after a round trip"
    );
    sae
}

/// Written by sparsify's own `save_to_disk` (reference/transcoder_peers.py).
#[test]
fn a_sparsify_skip_transcoder_matches_its_forward() {
    check_transcoder(
        "sparsify_skip_transcoder",
        Format::Sparsify,
        "topk_skip_transcoder",
    );
}

/// Written by SAELens's `SkipTranscoder` and `JumpReLUTranscoder`.
#[test]
fn saelens_transcoders_match_their_forward() {
    let sae = check_transcoder(
        "saelens_skip_transcoder",
        Format::SaeLens,
        "skip_transcoder",
    );
    assert_eq!(
        sae.metadata.hook_name_out.as_deref(),
        Some("blocks.1.hook_mlp_out")
    );
    check_transcoder(
        "saelens_jumprelu_transcoder",
        Format::SaeLens,
        "jumprelu_transcoder",
    );
}

/// Trained and written by saelab (`examples/transcoder_fixture.rs`), read by sparsify's
/// `SparseCoder.load_from_disk` and SAELens's `SAE.load_from_disk`: the peers' outputs are
/// saelab's.
#[test]
fn transcoders_written_by_saelab_read_the_same_in_the_peers() {
    for (name, format, architecture) in [
        (
            "saelab_topk_transcoder",
            Format::Sparsify,
            "topk_skip_transcoder",
        ),
        (
            "saelab_jumprelu_transcoder",
            Format::SaeLens,
            "jumprelu_skip_transcoder",
        ),
    ] {
        let sae = check_transcoder(name, format, architecture);
        assert_eq!(
            sae.metadata.hook_name_out.as_deref(),
            Some("blocks.2.hook_mlp_out"),
            "{name}"
        );
    }
}

#[test]
fn a_transcoder_predicting_another_width_is_refused_naming_d_out() {
    let tmp = copy_fixture("saelens_skip_transcoder");
    edit_json(&tmp.path().join("cfg.json"), |v| v["d_out"] = 32.into());
    let msg = message(load_any(tmp.path()));
    assert!(msg.contains("`d_out`") && msg.contains("32"), "{msg}");
}

#[test]
fn dictionary_learning_training_backup_reads_the_state_dict_under_ae() {
    let sae = check_against_reference("dl_topk_backup", Format::DictionaryLearning);
    assert_eq!(sae.activation, Activation::TopK { k: 5 });
    check_round_trip(&sae, "dl_topk_backup");
}

#[test]
fn dictionary_learning_tied_weights_read_through_their_strides() {
    // decoder.weight is a transposed view of encoder.weight's storage.
    let sae = check_against_reference("dl_tied", Format::DictionaryLearning);
    assert_eq!(sae.weights.w_dec, sae.weights.w_enc_t);
    check_round_trip(&sae, "dl_tied");
}

/// Copies a fixture folder (flat) into a temp dir to break it.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy");
    }
    tmp
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(path, serde_json::to_string(&v).expect("json")).expect("write");
}

fn message(r: saelab_sae::Result<Sae>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn topk_k_comes_from_the_ae_pt_buffer_when_the_config_lacks_it() {
    let tmp = copy_fixture("dl_topk");
    edit_json(&tmp.path().join("config.json"), |v| {
        v["trainer"].as_object_mut().expect("trainer").remove("k");
    });
    let sae = load_any(tmp.path()).expect("k from the buffer");
    assert_eq!(sae.activation, Activation::TopK { k: 6 });

    // A config that disagrees with the buffer is an error naming both.
    edit_json(&tmp.path().join("config.json"), |v| {
        v["trainer"]["k"] = 7.into()
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("config.json") && msg.contains("trainer.k") && msg.contains("ae.pt"),
        "{msg}"
    );
    assert!(msg.contains("= 7") && msg.contains("(6)"), "{msg}");
}

#[test]
fn topk_without_k_anywhere_is_an_error_naming_the_field() {
    let msg = message(load_any(&fixture("bad/dl_topk_no_k")));
    assert!(
        msg.contains("config.json") && msg.contains("`trainer.k`") && msg.contains("is missing"),
        "{msg}"
    );
    assert!(msg.contains("ae.pt"), "{msg}");

    let tmp = copy_fixture("sparsify_topk");
    edit_json(&tmp.path().join("cfg.json"), |v| {
        v.as_object_mut().expect("cfg").remove("k");
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("cfg.json") && msg.contains("field `k` is missing"),
        "{msg}"
    );
}

#[test]
fn missing_weights_files_are_named() {
    let tmp = copy_fixture("dl_standard");
    std::fs::remove_file(tmp.path().join("ae.pt")).expect("rm");
    let msg = message(load_any(tmp.path()));
    assert!(msg.contains("found config.json but not ae.pt"), "{msg}");
    assert!(msg.contains("dictionary_learning"), "{msg}");
    // The loader itself names the path it could not open.
    let msg = message(saelab_sae::format::dictionary_learning::load(tmp.path()));
    assert!(
        msg.contains(&tmp.path().join("ae.pt").display().to_string()),
        "{msg}"
    );

    let tmp = copy_fixture("sparsify_topk");
    std::fs::remove_file(tmp.path().join("sae.safetensors")).expect("rm");
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("found cfg.json but not sae.safetensors"),
        "{msg}"
    );
    assert!(msg.contains("sparsify"), "{msg}");
    let msg = message(saelab_sae::format::sparsify::load(tmp.path()));
    assert!(msg.contains("sae.safetensors"), "{msg}");
}

#[test]
fn a_folder_without_a_dictionary_lists_what_was_looked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let msg = message(load_any(tmp.path()));
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    for file in [
        "cfg.json + sae_weights.safetensors (SAELens)",
        "cfg.json + sae.safetensors (sparsify)",
        "config.json + ae.pt (dictionary_learning)",
    ] {
        assert!(msg.contains(file), "{msg}");
    }

    // A run folder with one dictionary per hookpoint points at them.
    for hook in ["layers.3", "layers.4"] {
        let sub = tmp.path().join(hook);
        std::fs::create_dir(&sub).expect("mkdir");
        for f in ["cfg.json", "sae.safetensors"] {
            std::fs::copy(fixture("sparsify_topk").join(f), sub.join(f)).expect("copy");
        }
    }
    std::fs::write(tmp.path().join("config.json"), "{}").expect("write");
    let msg = message(load_any(tmp.path()));
    assert!(msg.contains("subfolders: layers.3, layers.4"), "{msg}");
    load_any(&tmp.path().join("layers.4")).expect("a hookpoint folder loads");

    let msg = message(load_any(&tmp.path().join("nowhere")));
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn a_mis_shaped_tensor_is_named_with_both_shapes() {
    // sparsify: W_dec written as [d_in, num_latents] (the transposed layout).
    let tmp = copy_fixture("sparsify_topk");
    let path = tmp.path().join("sae.safetensors");
    let file = TensorFile::open(&path).expect("open");
    let mut tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, shape) in [
        ("encoder.weight", vec![32, 16]),
        ("encoder.bias", vec![32]),
        ("W_dec", vec![32, 16]),
        ("b_dec", vec![16]),
    ] {
        let data = file.read(name, &shape).expect("read");
        let shape = if name == "W_dec" { vec![16, 32] } else { shape };
        tensors.push((name, shape, data));
    }
    let views: Vec<(&str, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, d)| (*n, s.clone(), d.as_slice()))
        .collect();
    std::fs::write(&path, to_bytes(&path, &views).expect("bytes")).expect("write");
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("sae.safetensors")
            && msg.contains("tensor `W_dec` has shape [16, 32], expected [32, 16]"),
        "{msg}"
    );

    // dictionary_learning: a config whose dict_size does not match ae.pt.
    let tmp = copy_fixture("dl_standard");
    edit_json(&tmp.path().join("config.json"), |v| {
        v["trainer"]["dict_size"] = 31.into()
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("ae.pt")
            && msg.contains("tensor `encoder.weight` has shape [32, 16], expected [31, 16]"),
        "{msg}"
    );
}

#[test]
fn a_truncated_ae_pt_is_a_clear_error() {
    let tmp = copy_fixture("dl_topk");
    let path = tmp.path().join("ae.pt");
    let bytes = std::fs::read(&path).expect("read");
    for keep in [bytes.len() - 30, bytes.len() / 2, 10, 0] {
        std::fs::write(&path, &bytes[..keep]).expect("write");
        let err = load_any(tmp.path()).expect_err("an error");
        assert!(matches!(err, SaeError::Checkpoint { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("ae.pt: not a readable PyTorch checkpoint") && msg.contains("truncated"),
            "{keep} bytes: {msg}"
        );
    }
}

/// A damaged ae.pt is an error or (where the damage hits only unused bytes) a load, never a
/// panic: every fifth byte of the file is flipped in turn.
#[test]
fn a_damaged_ae_pt_never_panics() {
    let tmp = copy_fixture("dl_topk_backup");
    let path = tmp.path().join("ae.pt");
    let bytes = std::fs::read(&path).expect("read");
    let (mut errors, mut loads) = (0, 0);
    for i in (0..bytes.len()).step_by(5) {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0xA5;
        std::fs::write(&path, &damaged).expect("write");
        match load_any(tmp.path()) {
            Ok(_) => loads += 1,
            Err(e) => {
                assert!(e.to_string().contains("ae.pt"), "byte {i}: {e}");
                errors += 1;
            }
        }
    }
    assert!(errors > bytes.len() / 10, "{errors} errors, {loads} loads");
}

#[test]
fn unsupported_peer_architectures_are_refused_by_name() {
    let tmp = copy_fixture("dl_gated");
    edit_json(&tmp.path().join("config.json"), |v| {
        v["trainer"]["dict_class"] = "GatedCrossCoder".into()
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("`trainer.dict_class`")
            && msg.contains("\"GatedCrossCoder\" is not supported"),
        "{msg}"
    );

    let tmp = copy_fixture("sparsify_topk");
    edit_json(&tmp.path().join("cfg.json"), |v| {
        v["activation"] = "groupmax".into()
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("field `activation`") && msg.contains("groupmax"),
        "{msg}"
    );

    edit_json(&tmp.path().join("cfg.json"), |v| {
        v["activation"] = "topk".into();
        v["skip_connection"] = true.into();
    });
    let msg = message(load_any(tmp.path()));
    assert!(
        msg.contains("field `skip_connection`") && msg.contains("sparse autoencoder"),
        "{msg}"
    );
    // A transcoder whose weights lack the skip connection its config announces.
    edit_json(&tmp.path().join("cfg.json"), |v| {
        v["transcode"] = true.into()
    });
    let msg = message(load_any(tmp.path()));
    assert!(msg.contains("W_skip"), "{msg}");
}

#[test]
fn a_saelens_folder_still_loads_through_load_any() {
    let sae = load_any(&fixture("dl_jumprelu")).expect("load");
    let tmp = tempfile::tempdir().expect("tempdir");
    saelens::save(&sae, tmp.path()).expect("save");
    let back = load_any(tmp.path()).expect("load_any");
    assert_eq!(back, Sae::load(tmp.path()).expect("load"));
}

/// Loading writes nothing to stderr (a reader that prints on integer tensors would): the
/// test runs itself in a child process and reads the child's stderr.
#[test]
fn loading_prints_nothing() {
    const CHILD: &str = "SAELAB_IMPORT_QUIET_CHILD";
    if std::env::var_os(CHILD).is_some() {
        for name in ["dl_topk", "dl_batchtopk", "dl_matryoshka", "dl_topk_backup"] {
            load_any(&fixture(name)).expect("load");
        }
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "loading_prints_nothing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run child");
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "stderr must stay empty"
    );
}

/// Widths in a config are checked against the tensors the weights file holds before anything
/// is sized from them: `d_sae` = 2^40 used to abort in an allocation of 2^40 · d_in floats.
#[test]
fn huge_sizes_in_configs_are_refused_before_allocating() {
    let saelens = tempfile::tempdir().expect("tempdir");
    load_any(&fixture("sparsify_topk"))
        .expect("load")
        .save(saelens.path())
        .expect("save");
    // (folder, config file, path to the field, weights file)
    let table: [(&Path, &str, &[&str], &str); 9] = [
        (
            saelens.path(),
            "cfg.json",
            &["d_sae"],
            "sae_weights.safetensors",
        ),
        (
            saelens.path(),
            "cfg.json",
            &["d_in"],
            "sae_weights.safetensors",
        ),
        (
            &fixture("dl_standard"),
            "config.json",
            &["trainer", "dict_size"],
            "ae.pt",
        ),
        (
            &fixture("dl_standard"),
            "config.json",
            &["trainer", "activation_dim"],
            "ae.pt",
        ),
        (
            &fixture("dl_jumprelu"),
            "config.json",
            &["trainer", "dict_size"],
            "ae.pt",
        ),
        (
            &fixture("dl_batchtopk"),
            "config.json",
            &["trainer", "dict_size"],
            "ae.pt",
        ),
        (
            &fixture("sparsify_topk"),
            "cfg.json",
            &["num_latents"],
            "sae.safetensors",
        ),
        (
            &fixture("sparsify_topk"),
            "cfg.json",
            &["expansion_factor"],
            "sae",
        ),
        (
            &fixture("sparsify_topk"),
            "cfg.json",
            &["d_in"],
            "sae.safetensors",
        ),
    ];
    for (source, file, field, named) in table {
        for value in [1u64 << 31, 1 << 40, 1 << 62, u64::MAX] {
            let tmp = tempfile::tempdir().expect("tempdir");
            for entry in std::fs::read_dir(source).expect("fixture") {
                let entry = entry.expect("entry");
                std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy");
            }
            edit_json(&tmp.path().join(file), |v| {
                let mut slot = v;
                for key in field {
                    slot = &mut slot[*key];
                }
                *slot = value.into();
            });
            let msg = message(load_any(tmp.path()));
            assert!(
                msg.contains(named) || msg.contains(file),
                "{file} {field:?} = {value}: {msg}"
            );
        }
    }
}

//! SAELens folders: round trips, BatchTopK saved as JumpReLU, the input scale folded into
//! the weights, and clear errors for broken folders.

mod common;

use std::path::Path;

use common::SparseSource;
use saelab_sae::format::saelens::{CFG_FILE, SPARSITY_FILE, WEIGHTS_FILE};
use saelab_sae::format::tensors::to_bytes;
use saelab_sae::{Activation, Dictionary, Sae, SaeError, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 32;
const F: usize = 96;

fn trained(arch: TrainArchitecture, normalize: bool) -> (Sae, SparseSource) {
    let mut cfg = TrainConfig::new(arch, D, F, 30);
    cfg.normalize_activations = normalize;
    cfg.dead_after_tokens = 64;
    cfg.sparsity_window_steps = 10;
    cfg.metadata.model_name = Some("SmolLM2-135M-Instruct".into());
    cfg.metadata.hook_name = Some("blocks.12.hook_resid_post".into());
    cfg.metadata.context_size = Some(128);
    cfg.metadata.prepend_bos = Some(true);
    let mut source = SparseSource::new(200, D, 3, 5);
    let mut trainer = Trainer::new(cfg).expect("config");
    for _ in 0..30 {
        let x: Vec<f32> = source.batch(64).iter().map(|v| v * 7.0).collect();
        trainer.step(&x).expect("step");
    }
    (trainer.dictionary(), source)
}

fn cfg_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(CFG_FILE)).expect("cfg.json");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn topk_round_trip_is_exact() {
    let (sae, _) = trained(TrainArchitecture::TopK { k: 4 }, false);
    let dir = tempfile::tempdir().expect("tempdir");
    sae.save(dir.path()).expect("save");
    let cfg = cfg_json(dir.path());
    assert_eq!(cfg["architecture"], "topk");
    assert_eq!(cfg["k"], 4);
    assert_eq!(cfg["d_in"], D);
    assert_eq!(cfg["d_sae"], F);
    assert_eq!(cfg["apply_b_dec_to_input"], true);
    assert_eq!(cfg["normalize_activations"], "none");
    assert_eq!(cfg["metadata"]["hook_name"], "blocks.12.hook_resid_post");
    assert_eq!(cfg["metadata"]["context_size"], 128);
    assert!(cfg.get("hook_layer").is_none(), "v6 has no hook_layer");
    assert!(dir.path().join(SPARSITY_FILE).exists());

    let loaded = Sae::load(dir.path()).expect("load");
    assert_eq!(
        loaded, sae,
        "weights, activation, metadata and density all identical"
    );

    // Saving what was loaded writes the same bytes.
    let again = tempfile::tempdir().expect("tempdir");
    loaded.save(again.path()).expect("save");
    for file in [CFG_FILE, WEIGHTS_FILE, SPARSITY_FILE] {
        let a = std::fs::read(dir.path().join(file)).expect("read");
        let b = std::fs::read(again.path().join(file)).expect("read");
        assert_eq!(a, b, "{file}");
    }
}

#[test]
fn relu_round_trip_and_encoder_layout() {
    let (sae, mut source) = trained(
        TrainArchitecture::ReluL1 {
            variant: saelab_sae::L1Variant::April,
        },
        false,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    sae.save(dir.path()).expect("save");
    assert_eq!(cfg_json(dir.path())["architecture"], "standard");
    let loaded = Sae::load(dir.path()).expect("load");
    assert_eq!(loaded, sae);
    // W_enc is stored [d_in, d_sae] as SAELens has it: check one entry by hand.
    let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let w_enc = st.tensor("W_enc").expect("W_enc");
    assert_eq!(w_enc.shape(), &[D, F]);
    let (i, j) = (3, 17);
    let off = (i * F + j) * 4;
    let v = f32::from_le_bytes(w_enc.data()[off..off + 4].try_into().expect("4 bytes"));
    assert_eq!(v, sae.weights.w_enc_t[j * D + i]);
    let x = source.batch(10);
    assert_eq!(
        loaded.forward(&x).expect("forward"),
        sae.forward(&x).expect("forward")
    );
}

#[test]
fn batchtopk_saves_as_jumprelu_with_its_threshold() {
    let (sae, mut source) = trained(TrainArchitecture::BatchTopK { k: 4 }, false);
    let Activation::JumpRelu { threshold } = &sae.activation else {
        panic!("BatchTopK runs as JumpReLU after training");
    };
    assert!(threshold[0] > 0.0 && threshold.iter().all(|t| *t == threshold[0]));
    let dir = tempfile::tempdir().expect("tempdir");
    sae.save(dir.path()).expect("save");
    assert_eq!(cfg_json(dir.path())["architecture"], "jumprelu");
    assert!(cfg_json(dir.path()).get("k").is_none());
    let loaded = Sae::load(dir.path()).expect("load");
    assert_eq!(loaded.activation, sae.activation);
    let x: Vec<f32> = source.batch(50).iter().map(|v| v * 7.0).collect();
    let (a, b) = (
        sae.encode(&x).expect("encode"),
        loaded.encode(&x).expect("encode"),
    );
    assert_eq!(a, b);
    assert!(a.nnz() > 0, "some features fire");
    // JumpReLU: every kept value is above the threshold.
    assert!(a.val.iter().all(|v| *v > threshold[0]));
}

#[test]
fn input_scale_is_folded_into_the_saved_weights() {
    let (sae, mut source) = trained(TrainArchitecture::TopK { k: 4 }, true);
    assert!(
        (sae.input_scale - 1.0).abs() > 0.1,
        "inputs were rescaled ({})",
        sae.input_scale
    );
    let dir = tempfile::tempdir().expect("tempdir");
    sae.save(dir.path()).expect("save");
    let loaded = Sae::load(dir.path()).expect("load");
    assert_eq!(loaded.input_scale, 1.0);
    let x: Vec<f32> = source.batch(40).iter().map(|v| v * 7.0).collect();
    let (a, b) = (
        sae.forward(&x).expect("forward"),
        loaded.forward(&x).expect("forward"),
    );
    assert_eq!(a.features.idx, b.features.idx);
    for (u, v) in a.features.val.iter().zip(&b.features.val) {
        assert!((u - v).abs() <= 1e-4 * u.abs().max(1.0), "{u} vs {v}");
    }
    for (u, v) in a.reconstruction.iter().zip(&b.reconstruction) {
        assert!((u - v).abs() <= 1e-4 * u.abs().max(1.0), "{u} vs {v}");
    }
    // Reconstructions are in the input's units, not the training scale.
    let err: f32 = x
        .iter()
        .zip(&a.reconstruction)
        .map(|(p, q)| (p - q).powi(2))
        .sum();
    let norm: f32 = x.iter().map(|p| p * p).sum();
    assert!(err < norm, "reconstruction error {err} vs signal {norm}");
}

#[test]
fn trained_jumprelu_and_gated_dictionaries_round_trip_with_their_own_tensors() {
    let cases: [(TrainArchitecture, &str, &[&str]); 2] = [
        (
            TrainArchitecture::JumpRelu,
            "jumprelu",
            &["threshold", "b_enc"],
        ),
        (
            TrainArchitecture::Gated,
            "gated",
            &["b_gate", "r_mag", "b_mag"],
        ),
    ];
    for (arch, name, tensors) in cases {
        // Normalised inputs: the scale folds into the weights and the extra tensors stay put.
        let (sae, mut source) = trained(arch, true);
        assert_eq!(sae.architecture(), name);
        let dir = tempfile::tempdir().expect("tempdir");
        sae.save(dir.path()).expect("save");
        assert_eq!(cfg_json(dir.path())["architecture"], name);
        let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).expect("read");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        for t in tensors {
            assert_eq!(st.tensor(t).expect(t).shape(), &[F], "{name}: {t}");
        }
        let loaded = Sae::load(dir.path()).expect("load");
        assert_eq!(loaded.activation, sae.activation, "{name}");
        let x: Vec<f32> = source.batch(40).iter().map(|v| v * 7.0).collect();
        let (a, b) = (
            sae.forward(&x).expect("forward"),
            loaded.forward(&x).expect("forward"),
        );
        assert!(a.features.nnz() > 0, "{name}: some features fire");
        assert_eq!(a.features.idx, b.features.idx, "{name}");
        for (u, v) in a.reconstruction.iter().zip(&b.reconstruction) {
            assert!(
                (u - v).abs() <= 1e-4 * u.abs().max(1.0),
                "{name}: {u} vs {v}"
            );
        }
    }
}

fn saved_topk() -> tempfile::TempDir {
    let (sae, _) = trained(TrainArchitecture::TopK { k: 4 }, false);
    let dir = tempfile::tempdir().expect("tempdir");
    sae.save(dir.path()).expect("save");
    dir
}

fn rewrite_weights(dir: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) {
    let path = dir.join(WEIGHTS_FILE);
    std::fs::write(&path, to_bytes(&path, tensors).expect("serialise")).expect("write");
}

#[test]
fn missing_tensor_is_named_with_its_file() {
    let dir = saved_topk();
    let (w_enc, b_dec) = (vec![0.0f32; D * F], vec![0.0f32; D]);
    let w_dec = w_enc.clone();
    rewrite_weights(
        dir.path(),
        &[
            ("W_enc", vec![D, F], &w_enc),
            ("W_dec", vec![F, D], &w_dec),
            ("b_dec", vec![D], &b_dec),
        ],
    );
    let err = Sae::load(dir.path()).expect_err("b_enc is missing");
    assert!(matches!(err, SaeError::MissingTensor { ref name, .. } if name == "b_enc"));
    let msg = err.to_string();
    assert!(
        msg.contains("b_enc") && msg.contains(WEIGHTS_FILE) && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = saved_topk();
    let (w_enc, b_enc, b_dec) = (vec![0.0f32; D * F], vec![0.0f32; F], vec![0.0f32; D]);
    let w_dec = w_enc.clone();
    rewrite_weights(
        dir.path(),
        &[
            ("W_enc", vec![D, F], &w_enc),
            ("b_enc", vec![F], &b_enc),
            // Transposed: the dictionary_learning/nn.Linear layout.
            ("W_dec", vec![D, F], &w_dec),
            ("b_dec", vec![D], &b_dec),
        ],
    );
    let msg = Sae::load(dir.path())
        .expect_err("W_dec has the wrong shape")
        .to_string();
    assert!(msg.contains("W_dec") && msg.contains(WEIGHTS_FILE), "{msg}");
    assert!(
        msg.contains(&format!("[{D}, {F}]")) && msg.contains(&format!("[{F}, {D}]")),
        "{msg}"
    );
}

type CfgEdit = Box<dyn FnOnce(&mut serde_json::Map<String, serde_json::Value>)>;

fn edit_cfg(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut cfg = cfg_json(dir);
    edit(cfg.as_object_mut().expect("object"));
    std::fs::write(
        dir.join(CFG_FILE),
        serde_json::to_string(&cfg).expect("json"),
    )
    .expect("write");
}

#[test]
fn bad_cfg_keys_are_named_with_their_file() {
    let cases: Vec<(&str, CfgEdit)> = vec![
        (
            "d_in",
            Box::new(|c| drop(c.insert("d_in".into(), "wide".into()))),
        ),
        ("d_sae", Box::new(|c| drop(c.remove("d_sae")))),
        (
            "k",
            Box::new(|c| drop(c.insert("k".into(), (F + 1).into()))),
        ),
        (
            "architecture",
            Box::new(|c| drop(c.insert("architecture".into(), "crosscoder".into()))),
        ),
        (
            "normalize_activations",
            Box::new(|c| drop(c.insert("normalize_activations".into(), "layer_norm".into()))),
        ),
        (
            "apply_b_dec_to_input",
            Box::new(|c| drop(c.insert("apply_b_dec_to_input".into(), "yes".into()))),
        ),
    ];
    for (field, edit) in cases {
        let dir = saved_topk();
        edit_cfg(dir.path(), edit);
        let err = Sae::load(dir.path()).expect_err(field);
        let msg = err.to_string();
        assert!(matches!(err, SaeError::CfgField { .. }), "{field}: {msg}");
        assert!(
            msg.contains(&format!("`{field}`")) && msg.contains(CFG_FILE),
            "{field}: {msg}"
        );
    }
}

#[test]
fn a_missing_folder_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let msg = Sae::load(&dir.path().join("nowhere"))
        .expect_err("no folder")
        .to_string();
    assert!(msg.contains(CFG_FILE), "{msg}");
}

#[test]
fn reads_a_saelens_v5_topk_cfg() {
    let dir = saved_topk();
    let original = Sae::load(dir.path()).expect("load");
    edit_cfg(dir.path(), |c| {
        c.remove("metadata");
        c.remove("k");
        c.insert("architecture".into(), "standard".into());
        c.insert("activation_fn_str".into(), "topk".into());
        c.insert("activation_fn_kwargs".into(), serde_json::json!({"k": 4}));
        c.insert("hook_name".into(), "blocks.3.hook_resid_pre".into());
        c.insert("hook_layer".into(), 3.into());
        c.insert("normalize_activations".into(), false.into());
    });
    let v5 = Sae::load(dir.path()).expect("v5 loads");
    assert_eq!(v5.activation, Activation::TopK { k: 4 });
    assert_eq!(v5.weights, original.weights);
    assert_eq!(
        v5.metadata.hook_name.as_deref(),
        Some("blocks.3.hook_resid_pre")
    );
}

/// A NaN or infinity in any weight is refused at load, naming the tensor (it used to load
/// and give plausible numbers, NaN metrics becoming `null` in JSON).
#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    use saelab_sae::format::load_any;
    use saelab_sae::format::tensors::TensorFile;
    use saelab_sae::SaeWeights;
    let w = SaeWeights::init_tied(4, 8, 1.0, 1);
    let sae = Sae::new(
        w,
        Activation::JumpRelu {
            threshold: vec![0.1; 8],
        },
    )
    .unwrap();
    for (tensor, shape) in [
        ("W_enc", vec![4, 8]),
        ("b_enc", vec![8]),
        ("W_dec", vec![8, 4]),
        ("b_dec", vec![4]),
        ("threshold", vec![8]),
    ] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let dir = tempfile::tempdir().unwrap();
            sae.save(dir.path()).unwrap();
            let path = dir.path().join(WEIGHTS_FILE);
            let file = TensorFile::open(&path).unwrap();
            let names = ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"];
            let shapes = [vec![4, 8], vec![8], vec![8, 4], vec![4], vec![8]];
            let mut values: Vec<Vec<f32>> = names
                .iter()
                .zip(&shapes)
                .map(|(n, s)| file.read(n, s).unwrap())
                .collect();
            let i = names.iter().position(|n| *n == tensor).unwrap();
            values[i][shape.iter().product::<usize>() - 1] = bad;
            let tensors: Vec<(&str, Vec<usize>, &[f32])> = names
                .iter()
                .zip(&shapes)
                .zip(&values)
                .map(|((n, s), v)| (*n, s.clone(), v.as_slice()))
                .collect();
            std::fs::write(&path, to_bytes(&path, &tensors).unwrap()).unwrap();
            let msg = load_any(dir.path()).expect_err("accepted").to_string();
            assert!(
                msg.contains(&format!("`{tensor}`")) && msg.contains("non-finite"),
                "{tensor} = {bad}: {msg}"
            );
        }
    }
}

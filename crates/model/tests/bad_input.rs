//! Bad input gets a clear error naming the file, field or flag.

mod common;

use common::fixtures;
use saelab_model::hooks::HookPoint;
use saelab_model::load::load_hf_dir;
use saelab_model::Batch;

fn copy_fixture(family: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(
            fixtures().join("tiny").join(family).join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    dir
}

fn load_err(dir: &std::path::Path) -> String {
    match load_hf_dir(dir, "test") {
        Ok(_) => panic!("{} loaded without error", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_config_json_is_named() {
    let dir = copy_fixture("llama");
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{\"model_type\": \"llama\", ").unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("not valid JSON"),
        "{msg}"
    );

    std::fs::write(&config, r#"{"model_type": "llama", "hidden_size": "wide"}"#).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("`hidden_size`"),
        "{msg}"
    );

    std::fs::write(&config, r#"{"model_type": "llama", "hidden_size": 32}"#).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("missing"),
        "{msg}"
    );

    std::fs::write(&config, r#"{"model_type": "bert"}"#).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("`model_type`") && msg.contains("bert"),
        "{msg}"
    );

    std::fs::remove_file(&config).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn weights_of_the_wrong_shape_or_corrupt_files_are_named() {
    let dir = copy_fixture("gpt2");
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"n_embd\": 32", "\"n_embd\": 48");
    std::fs::write(&config, text).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("has shape") && msg.contains("expected"),
        "{msg}"
    );

    let dir = copy_fixture("gpt2");
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"\x05\x00\x00\x00\x00\x00\x00\x00{oops",
    )
    .unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("model.safetensors") && msg.contains("not a valid safetensors file"),
        "{msg}"
    );
}

#[test]
fn unknown_hook_suggests_the_nearest_names() {
    let m = load_hf_dir(&fixtures().join("tiny").join("llama"), "tiny").unwrap();
    let err = HookPoint::parse("blocks.1.hook_resid_pots", &m.model.cfg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown hook point `blocks.1.hook_resid_pots`"),
        "{err}"
    );
    assert!(err.contains("blocks.1.hook_resid_post"), "{err}");
    let err = HookPoint::parse("blocks.7.hook_mlp_out", &m.model.cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("blocks.1.hook_mlp_out"), "{err}");
    // GPT-NeoX runs attention and MLP in parallel: there is no resid_mid.
    let neox = load_hf_dir(&fixtures().join("tiny").join("gpt_neox"), "tiny").unwrap();
    assert!(HookPoint::parse("blocks.0.hook_resid_mid", &neox.model.cfg).is_err());
    assert!(HookPoint::parse("blocks.0.hook_resid_mid", &m.model.cfg).is_ok());
}

#[test]
fn input_longer_than_the_context_is_rejected() {
    let m = load_hf_dir(&fixtures().join("tiny").join("llama"), "tiny").unwrap();
    let ctx = m.model.cfg.context_length;
    let long = vec![5u32; ctx + 1];
    let err = m
        .model
        .logits(&Batch::single(&long))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{} tokens", ctx + 1))
            && err.contains(&format!("context length is {ctx}")),
        "{err}"
    );
    let err = m
        .model
        .generate_greedy(&vec![5u32; ctx - 2], 4, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--max-tokens") && err.contains("context length"),
        "{err}"
    );
    // A huge --max-tokens used to wrap the total around and try to generate that many.
    for max_new in [usize::MAX, usize::MAX - 1, usize::MAX / 2 + 1] {
        let err = m
            .model
            .generate_greedy(&[5u32, 6], max_new, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-tokens"), "{max_new}: {err}");
    }
    let err = m
        .model
        .logits(&Batch::single(&[400]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token id 400") && err.contains("vocabulary"),
        "{err}"
    );
}

/// Sizes read from `config.json` are bounded before anything is sized from them: a layer
/// count of 2^40 used to abort in an allocation of that many blocks.
#[test]
fn huge_sizes_in_config_json_are_refused_before_allocating() {
    let huge = [1u64 << 25, 1 << 40, u64::MAX >> 1, u64::MAX];
    let table: [(&str, &[&str]); 2] = [
        (
            "llama",
            &[
                "num_hidden_layers",
                "hidden_size",
                "intermediate_size",
                "vocab_size",
                "max_position_embeddings",
                "head_dim",
            ],
        ),
        ("gpt2", &["n_layer", "n_embd", "n_positions", "vocab_size"]),
    ];
    for (family, keys) in table {
        for key in keys {
            for value in huge {
                let dir = copy_fixture(family);
                let path = dir.path().join("config.json");
                let mut config: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if config.get(*key).is_none() {
                    panic!("{family} fixture has no `{key}`");
                }
                config[*key] = value.into();
                std::fs::write(&path, config.to_string()).unwrap();
                let msg = load_err(dir.path());
                assert!(
                    msg.contains("config.json") && msg.contains("bound"),
                    "{family} {key} = {value}: {msg}"
                );
            }
        }
    }
}

/// A rotary base that is zero, negative or beyond f32 (infinite once read) gave NaN angles
/// and NaN logits with exit 0: refused at load, naming it.
#[test]
fn an_impossible_rotary_base_is_refused() {
    for value in [
        serde_json::json!(0.0),
        serde_json::json!(-10000.0),
        serde_json::json!(1e39),
    ] {
        let dir = copy_fixture("llama");
        let path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["rope_theta"] = value.clone();
        std::fs::write(&path, config.to_string()).unwrap();
        let msg = load_err(dir.path());
        assert!(msg.contains("rope theta"), "rope_theta = {value}: {msg}");
    }
}

/// An integer tensor among the weights used to be converted to floats silently and give
/// garbage with exit 0: refused, naming the tensor and its type.
#[test]
fn an_integer_weight_tensor_is_refused() {
    use candle_core::{DType, Device, Tensor};
    let dir = copy_fixture("llama");
    let path = dir.path().join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let name = tensors
        .keys()
        .find(|k| k.contains("embed_tokens"))
        .expect("an embedding")
        .clone();
    let mut changed = tensors.clone();
    let ints: Tensor = tensors[&name].to_dtype(DType::I64).unwrap();
    changed.insert(name.clone(), ints);
    candle_core::safetensors::save(&changed, &path).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains(&name) && msg.contains("floating point"),
        "{msg}"
    );
}

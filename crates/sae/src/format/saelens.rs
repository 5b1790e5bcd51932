//! SAELens folders: `cfg.json` (v6 layout, v5 read too), `sae_weights.safetensors` and
//! `sparsity.safetensors`. Written so SAELens loads them unchanged (PEERS.md §1a): the
//! encoder as `W_enc [d_in, d_sae]`, a BatchTopK dictionary as `jumprelu` with a threshold
//! per latent, a gated one with `b_gate`, `r_mag`, `b_mag` in place of `b_enc`, the input scale folded into the weights (`normalize_activations: "none"`).
//! Transcoders (ReLU or JumpReLU, with or without a skip connection) as SAELens's
//! `transcoder`, `skip_transcoder`, `jumprelu_transcoder` and `jumprelu_skip_transcoder`:
//! `d_out` beside `d_in`, `W_skip [d_out, d_in]`, the output hook in `metadata.hook_name_out`.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::atomic::write_atomic;
use super::tensors::{to_bytes, TensorFile};
use crate::dictionary::{Activation, Dictionary, Metadata, Sae, Transcoder};
use crate::error::{Result, SaeError};
use crate::kernels::vector::norm;
use crate::weights::SaeWeights;

pub const CFG_FILE: &str = "cfg.json";
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";
pub const SPARSITY_FILE: &str = "sparsity.safetensors";

pub fn save(sae: &Sae, dir: &Path) -> Result<()> {
    sae.check()?;
    if sae.transcoder.is_some() && matches!(sae.activation, Activation::TopK { .. }) {
        return Err(SaeError::config(
            "architecture",
            "SAELens has no TopK transcoder: save it in sparsify's layout",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
    let w = folded_weights(sae);
    let (d_in, d_sae) = (w.d_in, w.d_sae);

    let weights_path = dir.join(WEIGHTS_FILE);
    let w_enc = w.w_enc();
    // A gated dictionary's encoder bias is its gate bias, `b_gate` in SAELens.
    let b_enc_name = match sae.activation {
        Activation::Gated { .. } => "b_gate",
        _ => "b_enc",
    };
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("W_enc", vec![d_in, d_sae], &w_enc),
        (b_enc_name, vec![d_sae], &w.b_enc),
        ("W_dec", vec![d_sae, d_in], &w.w_dec),
        ("b_dec", vec![d_in], &w.b_dec),
    ];
    if let Some(skip) = sae.transcoder.as_ref().and_then(|t| t.skip.as_ref()) {
        tensors.push(("W_skip", vec![d_in, d_in], skip));
    }
    match &sae.activation {
        Activation::JumpRelu { threshold } => tensors.push(("threshold", vec![d_sae], threshold)),
        Activation::Gated { r_mag, b_mag } => {
            tensors.push(("r_mag", vec![d_sae], r_mag));
            tensors.push(("b_mag", vec![d_sae], b_mag));
        }
        _ => {}
    }
    write_atomic(&weights_path, &to_bytes(&weights_path, &tensors)?)?;

    if let Some(density) = &sae.log_density {
        let path = dir.join(SPARSITY_FILE);
        write_atomic(
            &path,
            &to_bytes(&path, &[("sparsity", vec![d_sae], density)])?,
        )?;
    }

    let cfg_path = dir.join(CFG_FILE);
    let text = serde_json::to_string_pretty(&cfg_json(sae)).map_err(|e| SaeError::Json {
        path: cfg_path.clone(),
        cause: e,
    })?;
    // cfg.json last: a folder with a cfg.json has its weights.
    write_atomic(&cfg_path, text.as_bytes())
}

/// The weights with the input scale s folded in: `W_enc·s`, `W_dec/s`, `b_dec/s` encode the
/// same features from raw inputs and reconstruct in raw units.
pub fn folded_weights(sae: &Sae) -> SaeWeights {
    let mut w = sae.weights.clone();
    let s = sae.input_scale;
    if s != 1.0 {
        w.w_enc_t.iter_mut().for_each(|v| *v *= s);
        w.w_dec.iter_mut().for_each(|v| *v /= s);
        w.b_dec.iter_mut().for_each(|v| *v /= s);
    }
    w
}

fn cfg_json(sae: &Sae) -> Value {
    let mut cfg = json!({
        "architecture": sae.architecture(),
        "d_in": sae.weights.d_in,
        "d_sae": sae.weights.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": serde_json::to_value(&sae.metadata).unwrap_or(Value::Null),
    });
    if let (Activation::TopK { k }, Some(obj)) = (&sae.activation, cfg.as_object_mut()) {
        obj.insert("k".into(), json!(k));
        obj.insert("rescale_acts_by_decoder_norm".into(), json!(false));
    }
    if let (Some(_), Some(obj)) = (&sae.transcoder, cfg.as_object_mut()) {
        obj.insert("d_out".into(), json!(sae.weights.d_in));
    }
    cfg
}

/// The folder's cfg.json as a JSON object, with its path for errors.
pub(super) fn read_cfg(dir: &Path) -> Result<(PathBuf, Map<String, Value>)> {
    let cfg_path = dir.join(CFG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| SaeError::io(&cfg_path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| SaeError::Json {
        path: cfg_path.clone(),
        cause: e,
    })?;
    match value {
        Value::Object(obj) => Ok((cfg_path, obj)),
        _ => Err(SaeError::CfgField {
            path: cfg_path,
            field: "(top level)".into(),
            message: "must be a JSON object".into(),
        }),
    }
}

pub fn load(dir: &Path) -> Result<Sae> {
    let (cfg_path, obj) = read_cfg(dir)?;
    let cfg = Cfg {
        path: cfg_path.clone(),
        obj: &obj,
    };
    // v6 nests the model and hook under `metadata`; v5 keeps them at the top level.
    let v5 = !cfg.obj.contains_key("metadata");

    let d_in = cfg.positive("d_in")?;
    let d_sae = cfg.positive("d_sae")?;
    let architecture = match cfg.obj.get("architecture") {
        None if v5 => "standard".to_string(),
        _ => cfg.string("architecture")?,
    };
    if architecture == "temporal" {
        return Err(cfg.field_error(
            "architecture",
            "= \"temporal\": a temporal SAE encodes whole windows, not single positions; \
             read it with saelab_sae::format::saelens_temporal::TemporalSae",
        ));
    }
    let apply_b_dec_to_input = cfg.optional_bool("apply_b_dec_to_input")?.unwrap_or(true);
    cfg.check_normalization()?;
    // Transcoders: `<base>_transcoder` or `<base>_skip_transcoder`, predicting a hook of the
    // same width (`d_out`).
    let (architecture, transcoder_skip) = match architecture.as_str() {
        "transcoder" => ("standard".to_string(), Some(false)),
        "skip_transcoder" => ("standard".to_string(), Some(true)),
        "jumprelu_transcoder" => ("jumprelu".to_string(), Some(false)),
        "jumprelu_skip_transcoder" => ("jumprelu".to_string(), Some(true)),
        _ => (architecture, None),
    };
    if transcoder_skip.is_some() {
        let d_out = cfg.positive("d_out")?;
        if d_out != d_in {
            return Err(cfg.field_error(
                "d_out",
                format!(
                    "= {d_out} differs from d_in = {d_in}: saelab's transcoders map between \
                     activations of one width"
                ),
            ));
        }
    }

    let weights_path = dir.join(WEIGHTS_FILE);
    let file = TensorFile::open(&weights_path)?;
    let mut weights = SaeWeights::unfilled(d_in, d_sae);
    weights.set_w_enc(&file.read("W_enc", &[d_in, d_sae])?);
    let b_enc_name = if architecture == "gated" {
        "b_gate"
    } else {
        "b_enc"
    };
    weights.b_enc = file.read(b_enc_name, &[d_sae])?;
    weights.w_dec = file.read("W_dec", &[d_sae, d_in])?;
    weights.b_dec = file.read("b_dec", &[d_in])?;

    let v5_topk = v5 && cfg.obj.get("activation_fn_str").and_then(Value::as_str) == Some("topk");
    let activation = match architecture.as_str() {
        "standard" if v5_topk => Activation::TopK {
            k: cfg.v5_k(d_sae)?,
        },
        "standard" => Activation::Relu,
        "topk" => {
            let k = if v5 {
                cfg.v5_k(d_sae)?
            } else {
                cfg.positive("k")?
            };
            cfg.check_k(k, d_sae, "k")?;
            if cfg.optional_bool("rescale_acts_by_decoder_norm")? == Some(true) {
                fold_decoder_norms(&mut weights);
            }
            Activation::TopK { k }
        }
        "jumprelu" => Activation::JumpRelu {
            threshold: file.read("threshold", &[d_sae])?,
        },
        "gated" => Activation::Gated {
            r_mag: file.read("r_mag", &[d_sae])?,
            b_mag: file.read("b_mag", &[d_sae])?,
        },
        other => {
            return Err(cfg.field_error(
                "architecture",
                format!(
                    "= {other:?} is not supported (supported: standard, topk, jumprelu, gated, \
                     transcoder, skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder)"
                ),
            ))
        }
    };

    let metadata = if v5 {
        cfg.v5_metadata()
    } else {
        cfg.metadata()?
    };
    let sparsity_path = dir.join(SPARSITY_FILE);
    let log_density = if sparsity_path.exists() {
        Some(TensorFile::open(&sparsity_path)?.read("sparsity", &[d_sae])?)
    } else {
        None
    };
    let transcoder = match transcoder_skip {
        Some(true) => Some(Transcoder {
            skip: Some(file.read("W_skip", &[d_in, d_in])?),
        }),
        Some(false) => Some(Transcoder { skip: None }),
        None => None,
    };
    let sae = Sae {
        weights,
        activation,
        apply_b_dec_to_input,
        input_scale: 1.0,
        metadata,
        log_density,
        transcoder,
    };
    sae.check()?;
    Ok(sae)
}

/// SAELens's inference-time fold for TopK trained with `rescale_acts_by_decoder_norm`:
/// unit decoder rows, the norms moved into the encoder (features come out pre-scaled).
fn fold_decoder_norms(w: &mut SaeWeights) {
    let d = w.d_in;
    for j in 0..w.d_sae {
        let n = norm(&w.w_dec[j * d..(j + 1) * d]);
        if n > 0.0 {
            w.w_dec[j * d..(j + 1) * d].iter_mut().for_each(|v| *v /= n);
            w.w_enc_t[j * d..(j + 1) * d]
                .iter_mut()
                .for_each(|v| *v *= n);
            w.b_enc[j] *= n;
        }
    }
}

/// A parsed cfg.json with accessors whose errors name the file and the field.
pub(super) struct Cfg<'a> {
    pub(super) path: PathBuf,
    pub(super) obj: &'a Map<String, Value>,
}

impl Cfg<'_> {
    pub(super) fn field_error(&self, field: &str, message: impl Into<String>) -> SaeError {
        SaeError::CfgField {
            path: self.path.clone(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn get(&self, field: &str) -> Result<&Value> {
        self.obj
            .get(field)
            .ok_or_else(|| self.field_error(field, "is missing"))
    }

    pub(super) fn positive(&self, field: &str) -> Result<usize> {
        let v = self.get(field)?;
        match v.as_u64() {
            Some(n) if n > 0 => usize::try_from(n)
                .map_err(|_| self.field_error(field, format!("= {n} is too large"))),
            _ => Err(self.field_error(field, format!("must be a positive integer, found {v}"))),
        }
    }

    pub(super) fn string(&self, field: &str) -> Result<String> {
        let v = self.get(field)?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.field_error(field, format!("must be a string, found {v}")))
    }

    pub(super) fn optional_bool(&self, field: &str) -> Result<Option<bool>> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.field_error(field, format!("must be true or false, found {v}"))),
        }
    }

    fn check_k(&self, k: usize, d_sae: usize, field: &str) -> Result<()> {
        if k > d_sae {
            return Err(self.field_error(field, format!("= {k} is larger than d_sae = {d_sae}")));
        }
        Ok(())
    }

    /// Only scalings that leave nothing to apply at inference are accepted: "none", and
    /// "expected_average_only_in" (SAELens folds its factor into the weights at the end of
    /// training). Per-token norms would need the runtime rescale, not implemented here.
    fn check_normalization(&self) -> Result<()> {
        match self.obj.get("normalize_activations") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
            Some(Value::String(s)) if s == "none" || s == "expected_average_only_in" => Ok(()),
            Some(v) => Err(self.field_error(
                "normalize_activations",
                format!(
                    "= {v} is not supported (supported: \"none\", \"expected_average_only_in\")"
                ),
            )),
        }
    }

    fn v5_k(&self, d_sae: usize) -> Result<usize> {
        let k = self
            .obj
            .get("activation_fn_kwargs")
            .and_then(|kw| kw.get("k"))
            .and_then(Value::as_u64)
            .filter(|k| *k > 0)
            .ok_or_else(|| {
                self.field_error(
                    "activation_fn_kwargs.k",
                    "must be a positive integer for a topk dictionary",
                )
            })?;
        let k = k as usize;
        self.check_k(k, d_sae, "activation_fn_kwargs.k")?;
        Ok(k)
    }

    pub(super) fn metadata(&self) -> Result<Metadata> {
        serde_json::from_value(self.get("metadata")?.clone())
            .map_err(|e| self.field_error("metadata", format!("is not valid: {e}")))
    }

    /// v5 keeps model and hook at the top level; the known keys move into `metadata`.
    fn v5_metadata(&self) -> Metadata {
        let mut m = Metadata::default();
        let s = |k: &str| self.obj.get(k).and_then(Value::as_str).map(str::to_string);
        m.model_name = s("model_name");
        m.hook_name = s("hook_name");
        m.dataset_path = s("dataset_path");
        m.context_size = self.obj.get("context_size").and_then(Value::as_u64);
        m.prepend_bos = self.obj.get("prepend_bos").and_then(Value::as_bool);
        for key in ["hook_layer", "hook_head_index", "neuronpedia_id"] {
            if let Some(v) = self.obj.get(key) {
                m.extra.insert(key.into(), v.clone());
            }
        }
        m
    }
}

//! Architecture-independent description of a decoder-only transformer.

use serde::Serialize;

/// The model families saelab can host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llama,
    Gpt2,
    GptNeox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    Rms,
    Layer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// Exact GELU with erf.
    GeluErf,
    /// GELU with the tanh approximation (GPT-2's `gelu_new`).
    GeluTanh,
    Relu,
}

impl Activation {
    /// Parses a Hugging Face `hidden_act` / `activation_function` string.
    pub fn from_hf_name(name: &str) -> Option<Self> {
        match name {
            "silu" | "swish" => Some(Activation::Silu),
            "gelu" => Some(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }
}

/// Bounds on a model's shape that `ModelConfig::validate` enforces.
pub const MAX_LAYERS: usize = 1 << 12;
pub const MAX_HEADS: usize = 1 << 12;
/// Widths: d_model, d_head, d_mlp and heads × d_head.
pub const MAX_WIDTH: usize = 1 << 20;
pub const MAX_VOCAB: usize = 1 << 24;
/// Positions (rotary tables and position embeddings are sized from it).
pub const MAX_CONTEXT: usize = 1 << 21;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub context_length: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub activation: Activation,
    /// SwiGLU-style MLP: `down(act(gate(x)) * up(x))`.
    pub gated_mlp: bool,
    /// Number of leading head dimensions that rotary embeddings act on (0: no rotary).
    pub rotary_dim: usize,
    pub rope_theta: f32,
    /// GPT-2 style learned absolute position embeddings.
    pub learned_positions: bool,
    /// GPT-NeoX style `x + attn(ln1(x)) + mlp(ln2(x))`.
    pub parallel_residual: bool,
    pub tied_embeddings: bool,
    /// Whether q/k/v/o projections carry biases.
    pub attn_bias: bool,
    /// Whether MLP projections carry biases.
    pub mlp_bias: bool,
}

impl ModelConfig {
    /// Checks the relations the forward pass relies on.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_head", self.d_head),
            ("d_mlp", self.d_mlp),
            ("context_length", self.context_length),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        // Stated bounds, far above any released model, so that a corrupt or hostile file
        // is refused before any buffer is sized from it.
        let bounded = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("d_model", self.d_model, MAX_WIDTH),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("n_heads", self.n_heads, MAX_HEADS),
            ("n_kv_heads", self.n_kv_heads, MAX_HEADS),
            ("d_head", self.d_head, MAX_WIDTH),
            ("d_mlp", self.d_mlp, MAX_WIDTH),
            ("context_length", self.context_length, MAX_CONTEXT),
        ];
        for (name, value, most) in bounded {
            if value > most {
                return Err(format!(
                    "{name} = {value} is larger than saelab's bound {most}"
                ));
            }
        }
        for (name, heads) in [("n_heads", self.n_heads), ("n_kv_heads", self.n_kv_heads)] {
            if heads
                .checked_mul(self.d_head)
                .is_none_or(|width| width > MAX_WIDTH)
            {
                return Err(format!(
                    "{name} × d_head = {heads} × {} is larger than saelab's bound {MAX_WIDTH}",
                    self.d_head
                ));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "n_heads ({}) must be a multiple of n_kv_heads ({})",
                self.n_heads, self.n_kv_heads
            ));
        }
        if self.rotary_dim > self.d_head || !self.rotary_dim.is_multiple_of(2) {
            return Err(format!(
                "rotary dimension {} must be even and at most d_head {}",
                self.rotary_dim, self.d_head
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(format!(
                "norm epsilon = {} must be a positive number",
                self.norm_eps
            ));
        }
        // A NaN or infinite rotary base gives NaN angles, and every logit after them is NaN.
        if self.rotary_dim > 0 && !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "rope theta (rotary base) = {} must be a positive number",
                self.rope_theta
            ));
        }
        Ok(())
    }
}

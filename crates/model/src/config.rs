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
        if self.norm_eps.is_nan() || self.norm_eps <= 0.0 {
            return Err("norm epsilon must be positive".into());
        }
        Ok(())
    }
}

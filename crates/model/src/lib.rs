//! saelab's model host: decoder-only transformers (Llama, GPT-2, GPT-NeoX) loaded from GGUF
//! files, Hugging Face folders or the Hub, with TransformerLens-named hook points that can be
//! read or edited in the middle of a forward, and a forward that stops after the last block
//! it needs.

mod assemble;
pub mod attention;
pub mod batch;
pub mod config;
pub mod error;
pub mod gated;
pub mod generate;
pub mod gguf;
pub mod gpt2;
pub mod hooks;
pub mod hub;
pub mod json_config;
pub mod layers;
pub mod linear;
pub mod llama;
pub mod load;
pub mod neox;
pub mod panic_guard;
pub mod simd;
pub mod summary;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use batch::{Batch, PadSide};
pub use config::{Family, ModelConfig};
pub use error::{ModelError, Result};
pub use hooks::{BlockSite, HookPoint, Hooks};
pub use load::{load, LoadedModel};
pub use tokenizer::TextTokenizer;
pub use transformer::{Output, Transformer};

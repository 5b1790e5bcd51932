//! The on-disk activation cache: `saelab harvest` writes safetensors shards and a manifest;
//! reading streams the shards back as the same windows a live model would give.

pub mod dtype;
pub mod harvest;
pub mod manifest;
pub mod reader;
pub mod shard;

pub use dtype::CacheDtype;
pub use harvest::{harvest, harvest_documents, Harvest, HarvestSettings};
pub use manifest::{HarvestSpec, Manifest, ShardEntry};
pub use reader::{ActivationCache, ReadOptions, ShardOrder};

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

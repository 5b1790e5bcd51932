use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Where the server listens and what it serves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The feature database.
    pub database: PathBuf,
    /// Loopback by default: the browser runs the model for anyone who can reach it.
    pub host: IpAddr,
    /// 0 picks any free port (the bound URL says which).
    pub port: u16,
    /// The model to load instead of the database's `meta.model`.
    pub model: Option<String>,
}

pub const DEFAULT_PORT: u16 = 8077;

impl Options {
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Options {
            database: database.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            model: None,
        }
    }
}

//! `saelab serve DB`: the feature browser over a feature database.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The feature database (written by a feature scan).
    pub database: PathBuf,
    /// Address to listen on. Loopback by default: the pages run the model for whoever can
    /// reach them.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (the printed URL says which).
    #[arg(long, default_value_t = saelab_serve::DEFAULT_PORT)]
    pub port: u16,
    /// Model to load instead of the one the database names (it must have the same shape).
    #[arg(long)]
    pub model: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = saelab_serve::Options::new(args.database);
    options.host = args.host;
    options.port = args.port;
    options.model = args.model;
    saelab_serve::serve(&options)?;
    Ok(())
}

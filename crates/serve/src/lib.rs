//! saelab-serve: the feature browser, a local web app over a feature database
//! (`saelab serve DB`).
//!
//! - [`Server`]: checks the database (SQLite's quick check, format and schema version),
//!   loads the model it was scanned with and its dictionaries, binds, serves.
//! - `database`: a pool of read-only connections, one writer (ablations only), and the
//!   queries behind each page.
//! - `pages`: one file per page, server-rendered HTML (auto-escaped templates, inline CSS
//!   and SVG, no script), and a small JSON API.
//! - `live`: the model and dictionaries behind ablation, "what fires here" and steering,
//!   which run one at a time on the blocking pool.
//! - [`client`]: a minimal HTTP/1.1 client for the load benchmark and the tests.

pub mod client;
pub mod database;
pub mod error;
pub mod http_error;
pub mod live;
pub mod options;
pub mod pages;
pub mod params;
pub mod router;
pub mod server;
pub mod state;

pub use error::{Result, ServeError};
pub use options::{Options, DEFAULT_PORT};
pub use server::Server;

/// Checks, loads, binds and serves until the process ends, printing the URL first.
pub fn serve(options: &Options) -> Result<()> {
    let server = Server::bind(options)?;
    for (name, why) in server.unavailable_dictionaries() {
        eprintln!("warning: dictionary `{name}`: live pages unavailable: {why}");
    }
    println!("saelab serve: {}", server.url()?);
    server.run()
}

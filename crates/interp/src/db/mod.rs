//! The SQLite feature database: created by `write`, opened and checked by `open`.

pub mod blob;
pub mod open;
pub mod schema;
pub mod write;

pub use open::{open, Access, DatabaseInfo, ModelShape};
pub use write::{DatabaseWriter, DictionaryRows};

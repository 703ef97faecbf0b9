//! exai's storage backends, implementing `exai_core::store::Store`.
//!
//! - `sqlite`: the embedded default, one file in the data directory, WAL mode, migrated on open.

mod sqlite;

pub use sqlite::SqliteStore;

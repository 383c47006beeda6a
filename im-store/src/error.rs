//! What can go wrong with a store.

use std::path::PathBuf;

use im_proto::SendId;

/// A store failed. The messages it already holds stay where they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("cannot open the store {path:?}: {source}")]
    Open {
        /// The path given to [`Store::open`](crate::Store::open).
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// Another client (in this process or another) has the store open.
    #[error("the store is in use by another client")]
    InUse,
    /// The file was written by another version of this crate.
    #[error("the store's schema is version {found}; this version reads {expected}")]
    Version {
        /// The version in the file.
        found: i64,
        /// The version this crate writes.
        expected: i64,
    },
    /// A row cannot be read back as a message (edited by hand, or a damaged disk). It stays in
    /// the file; nothing after it is skipped either.
    #[error("stored message {id} cannot be read: {what}")]
    Corrupt {
        /// The row's id.
        id: i64,
        /// What is wrong with it.
        what: String,
    },
    /// An id or a TTL too large for SQLite's 63-bit integers.
    #[error("{id} cannot be stored: ids and TTLs in milliseconds must fit in 63 bits")]
    OutOfRange {
        /// The message's id.
        id: SendId,
    },
    /// The message holds something this version cannot store; it was not accepted.
    #[error("{id} cannot be stored: {what}")]
    Unsupported {
        /// The message's id.
        id: SendId,
        /// What this version cannot store.
        what: &'static str,
    },
    /// SQLite refused a read or a write (a full disk, a read-only file, I/O).
    #[error("the store failed: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => StoreError::InUse,
            _ => StoreError::Sqlite(e),
        }
    }
}

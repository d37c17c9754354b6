//! Store: the SQLite (WAL) database of Ligne Directe — call records first; the queue
//! journal, contacts, tickets, surveys and the KB come in later migrations.
//!
//! Contract: [`Store::open`] creates and migrates the database (`PRAGMA user_version`, each
//! migration in its own transaction, none re-run on reopen). [`StoreWriter`] owns a `Store`
//! on a dedicated thread so that call-handling code never waits on the disk: `write_call`
//! only queues; `close` flushes, checkpoints the WAL and joins.
//!
//! Timestamps are stored as INTEGER milliseconds since the Unix epoch (UTC): they sort and
//! compare as numbers, index well, and read back in SQL with
//! `datetime(arrived_at_ms / 1000, 'unixepoch')`. Precision below the millisecond is
//! dropped on write.

mod db;
mod record;
mod writer;

pub use db::{Store, MIGRATIONS};
pub use record::{CallRecord, HangupBy, JournalEntry, Outcome};
pub use writer::StoreWriter;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: usize,
        source: rusqlite::Error,
    },
    #[error("database schema version {found} is newer than this program knows ({known})")]
    TooNew { found: i64, known: usize },
    /// A row that this version cannot read back (hand-edited or written by a newer version).
    #[error("corrupt row for call {call_id}: {what}")]
    Corrupt { call_id: String, what: String },
    #[error("store writer thread: {0}")]
    Thread(String),
    /// Records the writer could not persist even after its retry; their details are in the log.
    #[error("{0} call record(s) could not be written")]
    Lost(usize),
}

//! The store writer: a dedicated thread owning a [`Store`], so that the call-handling tasks
//! never wait on SQLite (DESIGN.md: records are written off the media path).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{CallRecord, JournalEntry, Store, StoreError};

/// What the writer thread writes.
#[derive(Debug)]
enum Item {
    Call(CallRecord),
    Journal(JournalEntry),
}

/// Pause before the single retry of a failed write: enough for a transient lock or a
/// full-disk alert to clear, short enough to keep the queue moving.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Handle on the writer thread. `write_call` may be called from any thread (`&self`).
#[derive(Debug)]
pub struct StoreWriter {
    tx: Option<mpsc::Sender<Item>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl StoreWriter {
    /// Opens the database here, so that open and migration errors surface at start-up,
    /// then hands it to the writer thread.
    pub fn spawn(path: &Path) -> Result<StoreWriter, StoreError> {
        let store = Store::open(path)?;
        // Unbounded: a slow disk grows memory by a few hundred bytes per call instead of
        // ever blocking a call task.
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ld-store-writer".into())
            .spawn(move || run(store, rx))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(StoreWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a record; never blocks. Failures are logged by the writer thread.
    pub fn write_call(&self, rec: CallRecord) {
        self.send(Item::Call(rec));
    }

    /// Queues a journal entry; never blocks.
    pub fn write_journal(&self, entry: JournalEntry) {
        self.send(Item::Journal(entry));
    }

    fn send(&self, item: Item) {
        let sent = match &self.tx {
            Some(tx) => tx.send(item).map_err(|e| e.0),
            None => Err(item),
        };
        if let Err(item) = sent {
            // Only if the thread died: keep the record in the log so it can be recovered.
            tracing::error!(record = ?item, "store writer is gone; record not written");
        }
    }

    /// Writes everything queued, checkpoints the WAL and joins the thread. Fails with
    /// [`StoreError::Lost`] if some records could not be written even after a retry.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        // Dropping the sender ends the thread's receive loop once the queue is drained.
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| StoreError::Thread("writer thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for StoreWriter {
    /// A writer dropped without `close` (an early return in the daemon) still flushes:
    /// a finished call's record must survive a restart.
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.shutdown() {
                tracing::error!(error = %e, "store writer shut down with errors");
            }
        }
    }
}

fn write(store: &Store, item: &Item) -> Result<(), StoreError> {
    match item {
        Item::Call(rec) => store.insert_call(rec),
        Item::Journal(e) => store.insert_journal(e),
    }
}

fn run(store: Store, rx: mpsc::Receiver<Item>) -> Result<(), StoreError> {
    let mut lost = 0usize;
    for item in rx {
        if let Err(e) = write(&store, &item) {
            tracing::warn!(error = %e, "writing a record failed; retrying once");
            std::thread::sleep(RETRY_DELAY);
            if let Err(e) = write(&store, &item) {
                lost += 1;
                // The whole record goes to the log: it is the last copy.
                tracing::error!(error = %e, record = ?item, "record lost");
            }
        }
    }
    store.checkpoint()?;
    if lost > 0 {
        return Err(StoreError::Lost(lost));
    }
    Ok(())
}

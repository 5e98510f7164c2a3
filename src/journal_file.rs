//! `--journal-file PATH`: every journal event as one JSON line, so a long load test loses
//! nothing to the journal's bound. A thread of its own serializes and writes, so a slow disk
//! never blocks the runtime; the hot path only clones the event into a channel.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The writer: events sent here reach the file in journal order. Generic over the event so the
/// file knows nothing of the journal above it (the journal's own is `JournalFile<Event>`).
pub struct JournalFile<E> {
    tx: mpsc::Sender<E>,
    thread: std::thread::JoinHandle<Result<(), JournalFileError>>,
}

/// Why the journal file could not be created or written.
#[derive(Debug, thiserror::Error)]
#[error("journal file {}: {source}", path.display())]
pub struct JournalFileError {
    /// The file.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

impl<E: Serialize + Clone + Send + 'static> JournalFile<E> {
    /// Creates (truncates) `path` and starts the writer thread.
    pub fn create(path: &Path) -> Result<Self, JournalFileError> {
        let err = |source| JournalFileError {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(err)?;
        let (tx, rx) = mpsc::channel::<E>();
        let owned = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("apnsim-journal-file".into())
            .spawn(move || write_all(rx, file, &owned))
            .map_err(err)?;
        Ok(JournalFile { tx, thread })
    }

    /// Queues one event (never blocks; the channel is unbounded, drained as fast as the disk takes).
    pub fn send(&self, event: &E) {
        let _ = self.tx.send(event.clone());
    }

    /// Stops accepting events and waits until every queued one is written and flushed (blocking).
    pub fn finish(self) -> Result<(), JournalFileError> {
        drop(self.tx);
        self.thread.join().unwrap_or(Ok(()))
    }
}

fn write_all<E: Serialize>(
    rx: mpsc::Receiver<E>,
    file: std::fs::File,
    path: &Path,
) -> Result<(), JournalFileError> {
    let err = |source| JournalFileError {
        path: path.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            serde_json::to_writer(&mut out, &event).map_err(|e| err(e.into()))?;
            out.write_all(b"\n").map_err(err)?;
            next = rx.try_recv().ok();
        }
        // Caught up: flush, so a reader of the file sees every event so far.
        out.flush().map_err(err)?;
    }
    out.flush().map_err(err)
}

//! A recording in progress: the pure [`Recorder`] in the receive task, and the WAV writer on
//! a blocking thread (`spawn_blocking`), so neither the receive task nor the pacing shards
//! ever wait on the disk. The writer writes `<path>.tmp`, renames it to `path` once
//! finalized, and only then reports the end: a reader never sees half a file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use super::{emit, MediaEvent, MediaEventKind, SessionId};
use crate::record::{samples_duration, RecordEnd, RecordOptions, Recorder, RECORD_RATE};

enum WriterMsg {
    Samples(Vec<i16>),
    Finish(RecordEnd),
}

/// Owned by the receive task.
pub(super) struct Recording {
    pub recorder: Recorder,
    writer: std_mpsc::Sender<WriterMsg>,
}

impl Recording {
    /// Starts the writer thread and the recorder.
    pub fn start(
        now: Instant,
        path: PathBuf,
        options: RecordOptions,
        session: SessionId,
        events: UnboundedSender<MediaEvent>,
    ) -> Recording {
        let (writer, rx) = std_mpsc::channel();
        // The blocking pool: file IO stays off the runtime's workers and the pacers.
        tokio::task::spawn_blocking(move || write_wav(&path, &rx, session, &events));
        Recording {
            recorder: Recorder::new(now, options),
            writer,
        }
    }

    /// Hands what is ready to the writer; true once the recording has ended (the writer
    /// then finishes the file and reports).
    pub fn pump(&mut self) -> bool {
        let samples = self.recorder.take_samples();
        // A writer that failed keeps reading until Finish; one that is gone (panicked)
        // cannot report anyway.
        if !samples.is_empty() {
            let _ = self.writer.send(WriterMsg::Samples(samples));
        }
        match self.recorder.ended() {
            Some(reason) => {
                let _ = self.writer.send(WriterMsg::Finish(reason));
                true
            }
            None => false,
        }
    }

    /// Ends it now ([`RecordEnd::Stopped`]) and hands everything to the writer.
    pub fn stop(mut self) {
        self.recorder.stop();
        self.pump();
    }
}

/// `<path>.tmp`, next to the final file so the rename stays on one file system.
pub(super) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".tmp");
    PathBuf::from(s)
}

/// The writer thread: exactly one `RecordFinished` or `RecordFailed` per recording.
fn write_wav(
    path: &Path,
    rx: &std_mpsc::Receiver<WriterMsg>,
    session: SessionId,
    events: &UnboundedSender<MediaEvent>,
) {
    let tmp = tmp_path(path);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RECORD_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut error: Option<String> = None;
    let mut writer = match hound::WavWriter::create(&tmp, spec) {
        Ok(w) => Some(w),
        Err(e) => {
            error = Some(format!("cannot create {}: {e}", tmp.display()));
            None
        }
    };
    let mut written: u64 = 0;
    let reason = loop {
        match rx.recv() {
            Ok(WriterMsg::Samples(samples)) => {
                let Some(w) = writer.as_mut() else { continue };
                let mut failed = None;
                for s in samples {
                    if let Err(e) = w.write_sample(s) {
                        failed = Some(e);
                        break;
                    }
                    written += 1;
                }
                if let Some(e) = failed {
                    error = Some(format!("cannot write {}: {e}", tmp.display()));
                    writer = None; // dropped: the file is removed below
                }
            }
            Ok(WriterMsg::Finish(reason)) => break reason,
            // The receive task is gone without a word (the engine stopped): keep what we have.
            Err(_) => break RecordEnd::Stopped,
        }
    };
    let done = match (writer, error) {
        (Some(w), None) => w
            .finalize()
            .map_err(|e| format!("cannot finish {}: {e}", tmp.display()))
            .and_then(|()| {
                std::fs::rename(&tmp, path).map_err(|e| {
                    format!("cannot rename {} to {}: {e}", tmp.display(), path.display())
                })
            }),
        (_, Some(e)) => Err(e),
        (None, None) => Err("no writer".to_owned()),
    };
    let kind = match done {
        Ok(()) => {
            let duration = samples_duration(written);
            debug!(session = session.0, path = %path.display(), ?duration, ?reason, "recording written");
            MediaEventKind::RecordFinished {
                path: path.to_owned(),
                duration,
                reason,
            }
        }
        Err(error) => {
            warn!(session = session.0, %error, "recording failed");
            // Whatever is left of it is useless; it may not exist at all.
            let _ = std::fs::remove_file(&tmp);
            MediaEventKind::RecordFailed {
                path: path.to_owned(),
                error,
            }
        }
    };
    emit(events, session, kind);
}

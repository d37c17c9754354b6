//! The library's error type (one `thiserror` enum, DESIGN.md principle 4).

use std::path::PathBuf;

/// Errors of the media engine and the prompt loader. SDP and RTP parsing have their own
/// error types ([`crate::sdp::SdpError`], [`crate::rtp::RtpError`]).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The WAV file could not be decoded.
    #[error("cannot decode WAV {path}: {source}")]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// The WAV file decodes but its format is not one we accept.
    #[error("unsupported audio in {path}: {reason}")]
    UnsupportedAudio { path: PathBuf, reason: String },
    /// The resampler refused the input.
    #[error("resampling {path} to 8 kHz failed: {reason}")]
    Resample { path: PathBuf, reason: String },
    /// A prompt name that is empty, absolute or climbs out of the prompt root.
    #[error("invalid prompt name {0:?}")]
    InvalidPromptName(String),
    /// Every even port of the configured RTP range is in use.
    #[error("no free RTP port in {start}..={end}")]
    PortsExhausted { start: u16, end: u16 },
    /// Socket set-up failed.
    #[error("socket error: {0}")]
    Socket(#[from] std::io::Error),
    /// `MediaEngine::start` was called outside a tokio runtime.
    #[error("the media engine needs a tokio runtime: {0}")]
    NoRuntime(String),
    /// No open session has this id.
    #[error("unknown media session {0}")]
    UnknownSession(u64),
    /// A session cannot be bridged to itself.
    #[error("cannot bridge media session {0} to itself")]
    BridgeToSelf(u64),
    /// The engine task is gone (the runtime shut down).
    #[error("the media engine task has stopped")]
    EngineStopped,
}

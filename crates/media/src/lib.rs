//! `ld-media`: the RTP media engine of Ligne Directe.
//!
//! Contract: G.711 and G.722 codecs ([`g711`], [`g722`], [`Codec`]), SDP offer/answer for one
//! audio stream ([`sdp`], RFC 3264/4566), prompts decoded, resampled (8 and 16 kHz) and
//! pre-encoded once and shared by every call ([`prompt`]), RTP packets ([`rtp`], RFC 3550),
//! minimal RTCP ([`rtcp`], RFC 3550 §6), and a pure pacing scheduler ([`pacer`]: no IO, no clock
//! reads, `now` is a parameter) of which the engine runs ONE per shard for all the shard's
//! streams. [`engine`] is the thin tokio edge: UDP sockets, one pacing thread per core, a
//! receive task per session with symmetric RTP (RFC 4961), RTCP, DTMF and dead-call detection. [`dtmf`]: one digit
//! stream from RFC 4733, SIP INFO and in-band tones. [`relay`]: the pure parts of the
//! caller <-> agent bridge (reorder buffer, sequence/timestamp rewriting). [`record`]: what a
//! message recording keeps and when it ends (the engine writes the WAV off the pacing path).
//! Nothing here panics on network or file input.
#![forbid(unsafe_code)]

pub mod bench;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod error;
pub mod g711;
pub mod g722;
pub mod idmap;
pub mod pacer;
pub mod prompt;
pub mod record;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;

pub use codec::Codec;
pub use dtmf::{parse_dtmf_relay, DtmfEvent, DtmfSource};
pub use engine::{
    default_shards, MediaEngine, MediaEvent, MediaEventKind, SessionHandle, SessionId,
};
pub use error::MediaError;
pub use pacer::{PlayId, StreamId};
pub use prompt::{load_wav, Prompt, PromptCache};
pub use record::{RecordEnd, RecordOptions};
pub use relay::{RelayPacket, RelaySource};

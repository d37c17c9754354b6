//! `ld-media`: the RTP media engine of Ligne Directe.
//!
//! Contract: G.711 codecs ([`g711`], [`Codec`]), SDP offer/answer for one audio stream
//! ([`sdp`], RFC 3264/4566), prompts decoded, resampled to 8 kHz and pre-encoded once and shared
//! by every call ([`prompt`]), RTP packets ([`rtp`], RFC 3550), and ONE pure pacing scheduler for
//! all outbound streams ([`pacer`]: no IO, no clock reads, `now` is a parameter). [`engine`] is the
//! thin tokio edge: UDP sockets, one pacing task for all sessions, a receive task per session
//! with symmetric RTP (RFC 4961), DTMF detection and dead-call detection. [`dtmf`]: one digit
//! stream from RFC 4733, SIP INFO and in-band tones. [`relay`]: the pure parts of the
//! caller <-> agent bridge (reorder buffer, sequence/timestamp rewriting). Nothing here panics
//! on network or file input.
#![forbid(unsafe_code)]

pub mod bench;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod error;
pub mod g711;
pub mod pacer;
pub mod prompt;
pub mod relay;
pub mod rtp;
pub mod sdp;

pub use codec::Codec;
pub use dtmf::{parse_dtmf_relay, DtmfEvent, DtmfSource};
pub use engine::{MediaEngine, MediaEvent, MediaEventKind, SessionHandle, SessionId};
pub use error::MediaError;
pub use pacer::{PlayId, StreamId};
pub use prompt::{load_wav, Prompt, PromptCache};
pub use relay::RelayPacket;

//! The SIP edge of acdd, on rsipstack (pinned exactly: its API moves between
//! minor versions).
//!
//! Contract: [`SipEdge::start`] binds UDP and TCP on the configured address,
//! answers what needs no call logic itself (OPTIONS, stray in-dialog requests
//! with 481, malformed requests with 400 or a logged drop, never a panic) and
//! hands every new INVITE to the daemon as an [`IncomingCall`]: the facts of the
//! call, the SDP offer, a [`CallLeg`] to answer with (183 with SDP, 200, a final
//! non-2xx, BYE) and a stream of [`LegEvent`]s (ACK, CANCEL, BYE, failure).
//! With a trunk configured it keeps acdd registered on the site PBX
//! ([`registration`]): digest auth, refresh before expiry, backoff after a
//! failure, a reachability probe that re-registers within seconds of a PBX
//! restart, and Expires: 0 on shutdown. No call logic lives here.

mod digest_names;
mod edge;
mod leg;
mod outbound;
pub mod registration;
mod sanity;

pub use edge::{EdgeConfig, IncomingCall, SipEdge, TrunkConfig};
pub use leg::{CallLeg, LegEvent};
pub use outbound::{Identity, OutboundEvent, OutboundLeg};
pub use registration::RegistrationStatus;

/// Errors of the SIP edge.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: Box<rsipstack::Error>,
    },
    #[error("bad SIP URI {uri:?}: {reason}")]
    BadUri { uri: String, reason: String },
    /// Boxed: rsipstack's error is large, and these travel through every
    /// call's hot path as `Result`s.
    #[error("SIP stack: {0}")]
    Stack(Box<rsipstack::Error>),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(Box::new(e))
    }
}

//! ACD: queues, agents, distribution strategies, ring timeouts, wrap-up, pauses, callbacks
//! that keep the caller's place, and the estimated wait announced to callers.
//!
//! Contract: [`Acd`] is a pure state machine (DESIGN.md principle 1). It does no IO, never reads
//! the clock (`now: Instant` is a parameter of every input) and draws no random numbers. It knows
//! nothing of SIP, media or the dialplan (principle 2): calls, agents and queues are opaque ids,
//! a desk phone is an opaque string handed back in [`AcdAction::Offer`].
//!
//! - inputs: `handle_*(now, …)`; each returns `Err` for an unknown id or an impossible request,
//!   and journals a note, but never panics and never loses a call;
//! - outputs: drain [`Acd::poll_action`] after every input, until `None`; every step of every
//!   call, offer, callback and agent is also emitted as [`AcdAction::Journal`] for the store;
//! - time: call [`Acd::handle_timeout`] at (or after) [`Acd::poll_timeout`];
//! - static agents start available and reachable without a journal line (there is no `now`
//!   before the first input); opening hours start open.
//!
//! Guarantees the tests hold it to: callers of one queue and one priority are bridged in arrival
//! order; an agent is never offered two calls at once, nor while ringing, on a call, in wrap-up,
//! paused, logged out or unreachable; every offer ends with exactly one journaled result; every
//! call ends bridged, abandoned, overflowed or turned into a callback whose outcome is journaled.
//!
//! The config shapes ([`AcdConfig`]) deserialize from the daemon's TOML file:
//!
//! ```toml
//! [[agents]]
//! id = "agent1"
//! name = "Agent 1"
//! phone = "sip:agent1@127.0.0.1:5060"
//! login = "static"              # default: logged in at start; "manual": via feature code or API
//!
//! [queues.accueil]
//! strategy = "sequential"       # round_robin, longest_idle, ring_all
//! members = ["agent1", "agent2", "agent3"]   # order matters for sequential
//! ring_timeout = "15s"
//! wrap_up = "10s"
//! max_wait = "10min"            # optional; needs `overflow`
//! overflow = "callback"         # voicemail, callback, closing_message or "sip:partner@…"/"tel:…"
//! no_agent_overflow = "voicemail"   # when no member is logged in (and reachable)
//! auto_pause_after = 3          # unanswered offers in a row before "absence de réponse"
//! announce_every = "45s"        # "0s": no periodic announcement
//! retry = "5s"                  # pause before ringing again agents already tried for a caller
//! default_talk = "5min"         # handling time assumed until 10 talks were observed
//! default_patience = "3min"     # patience assumed until abandons were observed
//! callback_retries = 2          # new attempts after a failed callback
//! callback_retry_delay = "5min"
//! ```
//!
//! A caller's life, as the engine drives it:
//!
//! ```
//! use ld_acd::*;
//! use std::time::{Duration, Instant};
//!
//! let mut config = AcdConfig::default();
//! config.agents.push(AgentConfig::new("agent1", "sip:agent1@pbx"));
//! config.queues.insert("accueil".into(), QueueConfig::new(&["agent1"]));
//! let mut acd = Acd::new(config).unwrap();
//! let (queue, t0) = (QueueId::from("accueil"), Instant::now());
//!
//! // Early media: what to announce before the caller joins the line.
//! let position = acd.position_for_new_caller(&queue, 0).unwrap();
//! let ewt = acd.estimate(&queue, position).unwrap();
//! assert!(ewt.is_bounded());
//!
//! acd.handle_enqueue(t0, CallId(1), &queue, 0, "+33123456789").unwrap();
//! let mut offer = None;
//! while let Some(action) = acd.poll_action() {
//!     if let AcdAction::Offer { offer: o, phone, .. } = action {
//!         assert_eq!(phone, "sip:agent1@pbx"); // the edge rings this phone
//!         offer = Some(o);
//!     }
//! }
//! // The ring timeout is the next deadline; the agent answers before it.
//! assert_eq!(acd.poll_timeout(), Some(t0 + Duration::from_secs(15)));
//! let t1 = t0 + Duration::from_secs(4);
//! acd.handle_offer_result(t1, offer.unwrap(), OfferResult::Answered).unwrap();
//! let actions: Vec<_> = std::iter::from_fn(|| acd.poll_action()).collect();
//! assert!(actions.iter().any(|a| matches!(a, AcdAction::Bridge { call: CallId(1), .. })));
//! assert_eq!(acd.agent_status(&AgentId::from("agent1")), Some(AgentStatus::OnCall));
//! ```

mod acd;
mod agents;
mod callbacks;
mod config;
mod dispatch;
mod error;
mod event;
pub mod ewt;

pub use acd::Acd;
pub use config::{
    parse_duration, AcdConfig, AgentConfig, LoginMode, OverflowTarget, QueueConfig, Strategy,
    MAX_DURATION,
};
pub use dispatch::AUTO_PAUSE_REASON;
pub use error::{AcdError, ConfigError};
pub use event::{
    AcdAction, AgentCommand, AgentStatus, CallbackOutcome, CancelReason, EndedBy, JournalEntry,
    JournalEvent, OfferOutcome, OfferResult, OverflowReason, StateCause,
};
pub use ewt::WaitEstimate;

use std::fmt;

/// A call, numbered by the caller of the Acd (the engine); unique for the Acd's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// An agent, as named by `id` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub String);

/// A queue, as named by its table key in the config (`[queues.accueil]` → `"accueil"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub String);

/// One ringing of one agent's phone for one caller (or callback); generated by the Acd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(pub u64);

/// A promised callback; generated by the Acd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}
impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offer#{}", self.0)
    }
}
impl fmt::Display for CallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "callback#{}", self.0)
    }
}
impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(s.to_string())
    }
}
impl From<&str> for QueueId {
    fn from(s: &str) -> Self {
        QueueId(s.to_string())
    }
}

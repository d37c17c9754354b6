//! One error enum for bad input, one for bad config (DESIGN.md principle 4).

use crate::{AgentId, CallId, CallbackId, OfferId, QueueId};

/// An input the Acd cannot apply. The state is left unchanged (and a note journaled), so the
/// caller may log it and go on: nothing is half-done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    #[error("call {0} is already known to the ACD")]
    DuplicateCall(CallId),
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown offer {0}")]
    UnknownOffer(OfferId),
    #[error("unknown callback {0}")]
    UnknownCallback(CallbackId),
    #[error("{0}")]
    InvalidState(String),
}

/// A config the Acd refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("an agent has an empty id")]
    EmptyAgentId,
    #[error("agent {0:?} is declared twice")]
    DuplicateAgent(String),
    #[error("queue {0:?} has no members")]
    NoMembers(String),
    #[error("queue {queue:?}: member {agent:?} is not a declared agent")]
    UnknownMember { queue: String, agent: String },
    #[error("queue {queue:?}: member {agent:?} is listed twice")]
    DuplicateMember { queue: String, agent: String },
    #[error("queue {queue:?}: {key} must be longer than zero")]
    ZeroDuration { queue: String, key: &'static str },
    #[error("queue {queue:?}: {key} is longer than a day")]
    TooLong { queue: String, key: &'static str },
    #[error("queue {0:?}: max_wait needs an overflow target")]
    MaxWaitWithoutOverflow(String),
    #[error("queue {0:?}: auto_pause_after must be at least 1")]
    ZeroAutoPause(String),
}

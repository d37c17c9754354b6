//! The Acd's vocabulary: what the edge tells it, what it asks the edge to do, and what it
//! journals. All plain data (principle 1): the daemon decides how to carry and store it.

use crate::config::OverflowTarget;
use crate::ewt::WaitEstimate;
use crate::{AgentId, CallId, CallbackId, OfferId, QueueId};
use std::time::{Duration, Instant};

/// How the agent leg of an offer ended, as the edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferResult {
    /// 200 OK from the agent's phone.
    Answered,
    /// 486/600: the agent is busy → next agent at once.
    Busy,
    /// 404: the phone is not known → next agent at once.
    NotFound,
    /// 480: not registered / temporarily unavailable → next agent at once.
    Unavailable,
    /// Any other failure status → next agent at once.
    Error(u16),
    /// The phone rang out (usually the Acd's own ring timeout, reported by it).
    NoAnswer,
}

/// Why the Acd withdrew an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Ring-all: another agent answered first.
    AnsweredElsewhere,
    /// The caller hung up, overflowed or asked for a callback while the phone rang.
    CallerLeft,
    /// The agent paused, logged out or became unreachable while their phone rang.
    AgentLeft,
}

/// The journaled end of an offer: exactly one per offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    Result(OfferResult),
    Cancelled(CancelReason),
}

/// Agent commands, from the desk phone's feature codes or the CTI API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    Login,
    Logout,
    /// Pause with a reason ("pause déjeuner", "formation"…), journaled.
    Pause(String),
    Resume,
    /// End the wrap-up early: the agent is ready for the next caller.
    EndWrapUp,
}

/// The state of an agent as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    LoggedOut,
    Available,
    Ringing,
    OnCall,
    WrapUp,
    Paused(String),
}

/// Why an agent's state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCause {
    Command,
    Offered,
    OfferEnded,
    Answered,
    CallEnded,
    WrapUpElapsed,
    /// The command asked during a call (pause, logout) took effect when it ended.
    Deferred,
    AutoPause,
    Unreachable,
}

/// How a callback attempt ended, as the edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The citizen answered and is now talking to the agent.
    Ok,
    /// No answer, busy, rejected…: retried per the queue's `callback_retries`.
    Failed,
}

/// Which side ended a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    Agent,
    Caller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowReason {
    MaxWait,
    NoAgent,
}

/// What the Acd asks the edge to do (or to store).
#[derive(Debug, Clone, PartialEq)]
pub enum AcdAction {
    /// Ring `phone` for `call`; report the outcome with `handle_offer_result(offer, …)`.
    Offer {
        offer: OfferId,
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        phone: String,
    },
    /// Ring `phone` to propose a callback to `number`; on answer the Acd asks to dial it.
    OfferCallback {
        offer: OfferId,
        callback: CallbackId,
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        phone: String,
        number: String,
    },
    /// Tear down the agent leg of this offer, whatever its state (CANCEL while ringing, BYE if
    /// it answered at the same moment). The offer is closed: no result is expected any more.
    CancelOffer { offer: OfferId },
    /// The agent answered: connect the caller's leg and the agent's leg.
    Bridge {
        call: CallId,
        agent: AgentId,
        offer: OfferId,
    },
    /// The agent accepted the callback: call the citizen and connect them to the agent's leg;
    /// report with `handle_callback_result`, then end the conversation with `handle_call_ended`
    /// (or `handle_agent_hangup`) on `call`. The end of the caller's original leg, if it is
    /// reported at all, goes to `handle_abandon`, which leaves the callback alone.
    DialCitizen {
        callback: CallbackId,
        call: CallId,
        agent: AgentId,
        number: String,
    },
    /// Take the caller out of the queue to `target`. For [`OverflowTarget::Callback`] the Acd
    /// has already turned the caller into a callback that keeps their place: tell them and hang up.
    Overflow {
        call: CallId,
        target: OverflowTarget,
    },
    /// Tell the waiting caller their position (1 = next) and the estimated wait.
    Announce {
        call: CallId,
        position: usize,
        ewt: WaitEstimate,
    },
    /// Store this.
    Journal(JournalEntry),
}

/// One journaled step, stamped with the `now` of the input that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub at: Instant,
    pub event: JournalEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JournalEvent {
    Arrived {
        call: CallId,
        queue: QueueId,
        priority: u8,
        caller: String,
        position: usize,
    },
    Offered {
        offer: OfferId,
        call: CallId,
        agent: AgentId,
        callback: Option<CallbackId>,
    },
    OfferEnded {
        offer: OfferId,
        call: CallId,
        agent: AgentId,
        outcome: OfferOutcome,
    },
    Answered {
        call: CallId,
        agent: AgentId,
        queue: QueueId,
        wait: Duration,
    },
    Abandoned {
        call: CallId,
        queue: QueueId,
        position: usize,
        wait: Duration,
    },
    CallEnded {
        call: CallId,
        agent: AgentId,
        talk: Duration,
        by: EndedBy,
    },
    /// The agent handed the caller over to `target`; a `CallEnded` follows.
    Transferred {
        call: CallId,
        agent: AgentId,
        target: String,
    },
    AgentState {
        agent: AgentId,
        from: AgentStatus,
        to: AgentStatus,
        cause: StateCause,
    },
    AgentReachable {
        agent: AgentId,
        reachable: bool,
    },
    CallbackPromised {
        callback: CallbackId,
        call: CallId,
        queue: QueueId,
        number: String,
        position: usize,
    },
    CallbackPlaced {
        callback: CallbackId,
        agent: AgentId,
        number: String,
        attempt: u32,
    },
    CallbackCompleted {
        callback: CallbackId,
        agent: AgentId,
        attempt: u32,
    },
    CallbackFailed {
        callback: CallbackId,
        attempt: u32,
        /// `Some(at)`: tried again no earlier than `at`; `None`: given up, retries exhausted.
        retry_at: Option<Instant>,
    },
    Overflowed {
        call: CallId,
        queue: QueueId,
        target: OverflowTarget,
        reason: OverflowReason,
        wait: Duration,
    },
    OpenChanged {
        open: bool,
    },
    /// An input that could not be applied, kept for the record (unknown id, late result…).
    Note {
        text: String,
    },
}

//! The IVR interpreter: one per call, a pure state machine driven by the engine.
//!
//! The engine feeds events (`handle_event`) and deadlines (`handle_timeout`), drains
//! actions (`poll_action`) and arms one timer (`poll_timeout`). No IO, no clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::diag::DialplanError;
use crate::model::{Dialplan, NodeId, NodeKind, PromptItem};

/// Nodes walked without waiting for anything before the call is given up: a plan the
/// checks let through must still never spin the daemon.
pub const MAX_STEPS: usize = 1_000;

/// What happened on the call, as seen by the interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvrEvent {
    /// The last `Play` is over (or was cut short).
    PlaybackFinished,
    /// The 200 OK was sent and confirmed: media now flows as a normal session.
    Answered,
    /// A DTMF digit (RFC 4733 or in-band); menus use it in later versions.
    Dtmf(char),
}

/// What the edge must do for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvrAction {
    /// Play these prompts in order, then report `PlaybackFinished`. `early`: before answer,
    /// send 183 + SDP and play as early media (RFC 3960).
    Play {
        prompts: Vec<PromptItem>,
        early: bool,
    },
    /// Send 200 OK; the interpreter waits for `IvrEvent::Answered`.
    Answer,
    /// End the call: before answer a final response with `status` (the edge defaults to 480),
    /// after answer a BYE (then `status` is always `None`).
    Hangup { status: Option<u16> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Playing {
        next: Option<NodeId>,
    },
    Answering {
        next: Option<NodeId>,
    },
    Pausing {
        until: Instant,
        next: Option<NodeId>,
    },
    Finished,
}

/// One call's walk through a [`Dialplan`].
#[derive(Debug)]
pub struct Ivr {
    plan: Arc<Dialplan>,
    state: State,
    current: Option<NodeId>,
    answered: bool,
    actions: VecDeque<IvrAction>,
    failure: Option<DialplanError>,
}

impl Ivr {
    /// Starts at the entry for `called_user` (else `default`); the first actions are ready
    /// to poll at once.
    pub fn new(now: Instant, plan: Arc<Dialplan>, called_user: &str) -> Result<Ivr, DialplanError> {
        let entry = plan
            .entry_for(called_user)
            .ok_or_else(|| DialplanError::NoEntry(called_user.to_owned()))?;
        let mut ivr = Ivr {
            plan,
            state: State::Finished,
            current: None,
            answered: false,
            actions: VecDeque::new(),
            failure: None,
        };
        ivr.run(now, Some(entry));
        Ok(ivr)
    }

    pub fn handle_event(&mut self, now: Instant, ev: IvrEvent) {
        match (ev, &self.state) {
            (IvrEvent::Answered, state) => {
                self.answered = true;
                if let State::Answering { next } = *state {
                    self.run(now, next);
                }
            }
            (IvrEvent::PlaybackFinished, State::Playing { next }) => {
                let next = *next;
                self.run(now, next);
            }
            // A late PlaybackFinished (after a timeout or hangup) or a digit no node waits
            // for: nothing to do.
            (IvrEvent::PlaybackFinished | IvrEvent::Dtmf(_), _) => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Pausing { until, next } = self.state {
            if now >= until {
                self.run(now, next);
            }
        }
    }

    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Pausing { until, .. } => Some(until),
            _ => None,
        }
    }

    /// True once the final `Hangup` was emitted (it may still be waiting in `poll_action`).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Why the interpreter gave up, if it did (the step guard); the daemon logs it.
    pub fn failure(&self) -> Option<&DialplanError> {
        self.failure.as_ref()
    }

    /// The node being executed, for logs and the CTI.
    pub fn current_node(&self) -> Option<NodeId> {
        self.current
    }

    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// Walks nodes from `from` until one waits for something (or the call ends).
    fn run(&mut self, now: Instant, from: Option<NodeId>) {
        let plan = Arc::clone(&self.plan);
        let mut cur = from;
        for _ in 0..MAX_STEPS {
            self.current = cur;
            // No `next`: the plan ends here, and so does the call.
            let Some(node) = cur.and_then(|id| plan.node(id)) else {
                self.finish(None);
                return;
            };
            match &node.kind {
                NodeKind::Play {
                    prompts,
                    early,
                    next,
                } => {
                    self.actions.push_back(IvrAction::Play {
                        prompts: prompts.clone(),
                        // Once answered there is a session: early media no longer applies.
                        early: *early && !self.answered,
                    });
                    self.state = State::Playing { next: *next };
                    return;
                }
                NodeKind::Answer { next } => {
                    if self.answered {
                        cur = *next;
                        continue;
                    }
                    self.actions.push_back(IvrAction::Answer);
                    self.state = State::Answering { next: *next };
                    return;
                }
                NodeKind::Pause { duration, next } => {
                    match now.checked_add(*duration) {
                        Some(until) => {
                            self.state = State::Pausing { until, next: *next };
                            return;
                        }
                        // An Instant that cannot be pushed further: skip the silence.
                        None => cur = *next,
                    }
                }
                NodeKind::Hangup { status } => {
                    self.finish(*status);
                    return;
                }
            }
        }
        self.failure = Some(DialplanError::StepLimit(MAX_STEPS));
        self.finish(None);
    }

    fn finish(&mut self, status: Option<u16>) {
        let status = if self.answered { None } else { status };
        self.actions.push_back(IvrAction::Hangup { status });
        self.state = State::Finished;
    }
}

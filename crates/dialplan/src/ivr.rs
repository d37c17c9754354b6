//! The IVR interpreter: one per call, a pure state machine driven by the engine.
//!
//! The engine feeds events (`handle_event`) and deadlines (`handle_timeout`), drains
//! actions (`poll_action`) and arms one timer (`poll_timeout`). No IO, no clock: the wall
//! time of the call's start is given once, later wall times are derived from `now`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::diag::DialplanError;
use crate::model::{Dialplan, NodeId, NodeKind, PromptItem, Question, TransferMethod};

/// Nodes walked without waiting for anything before the call is given up: a plan the
/// checks let through must still never spin the daemon.
pub const MAX_STEPS: usize = 1_000;

/// At most this many nodes are kept in a call's path.
pub const MAX_PATH: usize = 64;

/// What the queue did with a call handed to it by [`IvrAction::Enqueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueResult {
    /// An agent took the call: the IVR's part is over ([`Ivr::is_finished`], no `Hangup`).
    Connected,
    /// The queue gave the call back (overflow, closed, timeout): the plan goes on at the
    /// queue node's `next`, or hangs up.
    Returned,
}

/// What happened on the call, as seen by the interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvrEvent {
    /// The last `Play` is over. Not sent for a play stopped by [`IvrAction::StopPlayback`].
    PlaybackFinished,
    /// The 200 OK was sent and confirmed: media now flows as a normal session.
    Answered,
    /// A DTMF digit (RFC 4733 or in-band): `0`-`9`, `*`, `#` (others are ignored).
    Dtmf(char),
    /// Answer to [`IvrAction::Enqueue`].
    QueueResult(QueueResult),
    /// The recording asked by [`IvrAction::Record`] ended (caller silent, `#`, or `max`).
    RecordFinished,
    /// The transfer asked by [`IvrAction::Transfer`] failed (REFER refused, partner busy…).
    /// On success the edge ends the call; the IVR needs no event.
    TransferFailed,
    /// The agent the queue connected hung up first: the plan goes on at the queue node's
    /// `after`, if it has one (see [`Ivr::continues_after_agent`]).
    AgentHungUp,
}

/// What the edge must do for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvrAction {
    /// Play these prompts in order, then report `PlaybackFinished`. `early`: before answer,
    /// send 183 + SDP and play as early media (RFC 3960). Prompts are `File`, `Say` or
    /// `EstimatedWait`, never `ClosedMessage` (already expanded into `Say` fragments).
    Play {
        prompts: Vec<PromptItem>,
        early: bool,
    },
    /// Send 200 OK; the interpreter waits for `IvrEvent::Answered`.
    Answer,
    /// End the call: before answer a final response with `status` (the edge defaults to 480),
    /// after answer a BYE (then `status` is always `None`).
    Hangup { status: Option<u16> },
    /// Barge-in: a key was pressed during a menu's prompts; stop what plays now and do not
    /// report `PlaybackFinished` for it. The next action follows at once.
    StopPlayback,
    /// Hand the call to the ACD queue; the IVR waits for `IvrEvent::QueueResult`.
    Enqueue { queue: String },
    /// Transfer the call to `target` (`sip:`/`sips:`/`tel:` URI or a number); on failure
    /// report `IvrEvent::TransferFailed`.
    Transfer {
        target: String,
        method: TransferMethod,
    },
    /// Record the caller's message (answer first if needed), at most `max`; then report
    /// `IvrEvent::RecordFinished`.
    Record { max: Duration },
    /// Offer the caller a callback that keeps their place; the IVR's part is over
    /// ([`Ivr::is_finished`], no `Hangup`): the engine or the ACD carries on.
    OfferCallback,
}

/// Where a menu or consent question is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Playing the question; a key stops it.
    Prompt,
    /// Playing the invalid-choice prompt; a key stops it too.
    Invalid,
    /// Waiting for a key until the deadline.
    Waiting { until: Instant },
}

/// What follows a plain playback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterPlay {
    Goto(Option<NodeId>),
    Record { max: Duration, next: Option<NodeId> },
    OfferCallback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Playing(AfterPlay),
    Answering {
        next: Option<NodeId>,
    },
    Pausing {
        until: Instant,
        next: Option<NodeId>,
    },
    Question {
        node: NodeId,
        attempts: u32,
        phase: Phase,
    },
    Queued {
        next: Option<NodeId>,
        after: Option<NodeId>,
    },
    Transferring {
        next: Option<NodeId>,
    },
    Recording {
        next: Option<NodeId>,
    },
    /// The call was handed over (queue connected, callback offered): no `Hangup` from us,
    /// unless the agent hangs up first and the queue node has an `after`.
    HandedOver {
        after: Option<NodeId>,
    },
    Finished,
}

/// One call's walk through a [`Dialplan`].
#[derive(Debug)]
pub struct Ivr {
    plan: Arc<Dialplan>,
    state: State,
    current: Option<NodeId>,
    /// The nodes the call went through, for its record (bounded).
    path: Vec<NodeId>,
    answered: bool,
    actions: VecDeque<IvrAction>,
    failure: Option<DialplanError>,
    /// `start` (monotonic) is `wall` (civil time): hours are decided at
    /// `wall + (now - start)`.
    start: Instant,
    wall: Timestamp,
    /// The caller's number, normalized (`None`: anonymous or not a number).
    caller: Option<String>,
    variables: BTreeMap<String, String>,
}

impl Ivr {
    /// Starts at the entry for `called_user` (else `default`); the first actions are ready
    /// to poll at once. `wall` is the wall-clock time at `now`. The caller is unknown, so
    /// `list` nodes go to `nomatch`.
    pub fn new(
        now: Instant,
        wall: Timestamp,
        plan: Arc<Dialplan>,
        called_user: &str,
    ) -> Result<Ivr, DialplanError> {
        Self::with_caller(now, wall, plan, called_user, "")
    }

    /// [`Ivr::new`] with the caller's number (the From user: `"0612345678"`,
    /// `"+33612345678"`, or anything else for an anonymous caller), for `list` nodes.
    pub fn with_caller(
        now: Instant,
        wall: Timestamp,
        plan: Arc<Dialplan>,
        called_user: &str,
        caller: &str,
    ) -> Result<Ivr, DialplanError> {
        let entry = plan
            .entry_for(called_user)
            .ok_or_else(|| DialplanError::NoEntry(called_user.to_owned()))?;
        let mut ivr = Ivr {
            plan,
            state: State::Finished,
            current: None,
            path: Vec::new(),
            answered: false,
            actions: VecDeque::new(),
            failure: None,
            start: now,
            wall,
            caller: normalize_number(caller),
            variables: BTreeMap::new(),
        };
        ivr.run(now, Some(entry));
        Ok(ivr)
    }

    pub fn handle_event(&mut self, now: Instant, ev: IvrEvent) {
        match (ev, self.state.clone()) {
            (IvrEvent::Answered, state) => {
                self.answered = true;
                if let State::Answering { next } = state {
                    self.run(now, next);
                }
            }
            (IvrEvent::PlaybackFinished, State::Playing(after)) => match after {
                AfterPlay::Goto(next) => self.run(now, next),
                AfterPlay::Record { max, next } => {
                    self.actions.push_back(IvrAction::Record { max });
                    self.state = State::Recording { next };
                }
                AfterPlay::OfferCallback => self.offer_callback(),
            },
            (
                IvrEvent::PlaybackFinished,
                State::Question {
                    node,
                    attempts,
                    phase,
                },
            ) => match phase {
                Phase::Prompt => {
                    let timeout = self.question(node).map_or(Duration::ZERO, |q| q.timeout);
                    let until = now.checked_add(timeout).unwrap_or(now);
                    self.state = State::Question {
                        node,
                        attempts,
                        phase: Phase::Waiting { until },
                    };
                }
                Phase::Invalid => self.ask(now, node, attempts),
                Phase::Waiting { .. } => {}
            },
            (
                IvrEvent::Dtmf(key),
                State::Question {
                    node,
                    attempts,
                    phase,
                },
            ) => {
                if !(key.is_ascii_digit() || key == '*' || key == '#') {
                    return;
                }
                if matches!(phase, Phase::Prompt | Phase::Invalid) {
                    self.actions.push_back(IvrAction::StopPlayback);
                }
                self.key(now, node, attempts, key);
            }
            (IvrEvent::QueueResult(r), State::Queued { next, after }) => match r {
                QueueResult::Connected => self.state = State::HandedOver { after },
                QueueResult::Returned => self.run(now, next),
            },
            (IvrEvent::AgentHungUp, State::HandedOver { after: Some(after) }) => {
                self.run(now, Some(after))
            }
            (IvrEvent::TransferFailed, State::Transferring { next }) => self.run(now, next),
            (IvrEvent::RecordFinished, State::Recording { next }) => self.run(now, next),
            // A late event (after a timeout or hangup) or a digit no node waits for:
            // nothing to do.
            _ => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Pausing { until, next } if now >= until => self.run(now, next),
            State::Question {
                node,
                attempts,
                phase: Phase::Waiting { until },
            } if now >= until => self.failed_attempt(now, node, attempts, true),
            _ => {}
        }
    }

    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Pausing { until, .. }
            | State::Question {
                phase: Phase::Waiting { until },
                ..
            } => Some(until),
            _ => None,
        }
    }

    /// True once the final `Hangup` was emitted (it may still be waiting in `poll_action`),
    /// or once the call was handed over (`OfferCallback`, `QueueResult::Connected`).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished | State::HandedOver { .. })
    }

    /// Connected to an agent through a queue node with an `after`: when the agent hangs up
    /// first, the caller stays and [`IvrEvent::AgentHungUp`] runs that node.
    pub fn continues_after_agent(&self) -> bool {
        matches!(self.state, State::HandedOver { after: Some(_) })
    }

    /// Why the interpreter gave up, if it did (the step guard); the daemon logs it.
    pub fn failure(&self) -> Option<&DialplanError> {
        self.failure.as_ref()
    }

    /// The node being executed, for logs and the CTI.
    pub fn current_node(&self) -> Option<NodeId> {
        self.current
    }

    /// The names of the nodes the call went through, in order.
    pub fn path(&self) -> Vec<String> {
        self.path
            .iter()
            .filter_map(|id| self.plan.node(*id).map(|n| n.name.clone()))
            .collect()
    }

    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// Variables stored on the call by `set`, `consent` (`consent` = `yes`|`no`) and
    /// `survey` nodes (their `variable` = the key pressed, `"1"`..=`"9"`).
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// The caller's number as the `list` nodes see it (normalized), if any.
    pub fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }

    /// The wall-clock time at `now`.
    pub fn wall_at(&self, now: Instant) -> Timestamp {
        let delta = match now.checked_duration_since(self.start) {
            Some(d) => SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX),
            None => -SignedDuration::try_from(self.start.duration_since(now))
                .unwrap_or(SignedDuration::MAX),
        };
        self.wall.checked_add(delta).unwrap_or(self.wall)
    }

    fn question(&self, node: NodeId) -> Option<&Question> {
        match &self.plan.node(node)?.kind {
            NodeKind::Menu { question, .. }
            | NodeKind::Consent { question, .. }
            | NodeKind::Survey { question, .. } => Some(question),
            _ => None,
        }
    }

    /// Plays the question of a menu/consent/survey node (again).
    fn ask(&mut self, now: Instant, node: NodeId, attempts: u32) {
        let Some(q) = self.question(node).cloned() else {
            self.finish(None);
            return;
        };
        self.play(now, &q.prompts, q.early);
        self.state = State::Question {
            node,
            attempts,
            phase: Phase::Prompt,
        };
    }

    fn key(&mut self, now: Instant, node: NodeId, attempts: u32, key: char) {
        let plan = Arc::clone(&self.plan);
        match plan.node(node).map(|n| &n.kind) {
            Some(NodeKind::Menu { options, .. }) => {
                if let Some(target) = options.get(&key) {
                    self.run(now, Some(*target));
                    return;
                }
            }
            Some(NodeKind::Consent { yes, no, next, .. }) => {
                if key == *yes || key == *no {
                    let v = if key == *yes { "yes" } else { "no" };
                    self.variables.insert("consent".into(), v.into());
                    self.run(now, *next);
                    return;
                }
            }
            Some(NodeKind::Survey {
                scale,
                variable,
                thanks,
                next,
                ..
            }) => {
                if key
                    .to_digit(10)
                    .is_some_and(|d| (1..=u32::from(*scale)).contains(&d))
                {
                    self.variables.insert(variable.clone(), key.to_string());
                    if thanks.is_empty() {
                        self.run(now, *next);
                    } else {
                        self.play(now, thanks, false);
                        self.state = State::Playing(AfterPlay::Goto(*next));
                    }
                    return;
                }
            }
            _ => return,
        }
        self.failed_attempt(now, node, attempts, false);
    }

    /// A timeout or an invalid key: replay the question, or give up after `retries`.
    fn failed_attempt(&mut self, now: Instant, node: NodeId, attempts: u32, timeout: bool) {
        let plan = Arc::clone(&self.plan);
        let Some(q) = self.question(node).cloned() else {
            return;
        };
        let attempts = attempts + 1;
        if attempts <= q.retries {
            if !timeout && !q.invalid.is_empty() {
                self.play(now, &q.invalid, q.early);
                self.state = State::Question {
                    node,
                    attempts,
                    phase: Phase::Invalid,
                };
            } else {
                self.ask(now, node, attempts);
            }
            return;
        }
        match plan.node(node).map(|n| &n.kind) {
            Some(NodeKind::Menu {
                fallback,
                on_timeout,
                ..
            }) => {
                let to = if timeout {
                    on_timeout.or(*fallback)
                } else {
                    *fallback
                };
                self.run(now, to);
            }
            Some(NodeKind::Consent { next, .. }) => {
                // Silence is not consent.
                self.variables.insert("consent".into(), "no".into());
                self.run(now, *next);
            }
            // No mark is better than a made-up one: nothing is stored.
            Some(NodeKind::Survey { next, .. }) => self.run(now, *next),
            _ => self.finish(None),
        }
    }

    /// Emits a `Play`, expanding generated announcements at the call's wall time.
    fn play(&mut self, now: Instant, prompts: &[PromptItem], early: bool) {
        let wall = self.wall_at(now);
        let mut items = Vec::with_capacity(prompts.len());
        for p in prompts {
            match p {
                PromptItem::ClosedMessage { calendar } => {
                    if let Some(cal) = self.plan.calendar(calendar) {
                        items.extend(
                            crate::french::closed_message_parts(cal, wall)
                                .into_iter()
                                .map(PromptItem::Say),
                        );
                    }
                }
                other => items.push(other.clone()),
            }
        }
        self.actions.push_back(IvrAction::Play {
            prompts: items,
            // Once answered there is a session: early media no longer applies.
            early: early && !self.answered,
        });
    }

    fn offer_callback(&mut self) {
        self.actions.push_back(IvrAction::OfferCallback);
        self.state = State::HandedOver { after: None };
    }

    /// Walks nodes from `from` until one waits for something (or the call ends).
    fn run(&mut self, now: Instant, from: Option<NodeId>) {
        let plan = Arc::clone(&self.plan);
        let mut cur = from;
        for _ in 0..MAX_STEPS {
            self.current = cur;
            if let Some(id) = cur {
                // Consecutive repeats (a menu replayed) count once; the
                // bound keeps a looping call's record small.
                if self.path.last() != Some(&id) && self.path.len() < MAX_PATH {
                    self.path.push(id);
                }
            }
            // No `next`: the plan ends here, and so does the call.
            let Some(node) = cur.and_then(|id| plan.node(id)) else {
                self.finish(None);
                return;
            };
            let id = cur.unwrap_or(NodeId(0));
            match &node.kind {
                NodeKind::Play {
                    prompts,
                    early,
                    next,
                } => {
                    self.play(now, prompts, *early);
                    self.state = State::Playing(AfterPlay::Goto(*next));
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
                NodeKind::Hours {
                    calendar,
                    open,
                    closed,
                } => {
                    let is_open = plan
                        .calendar(calendar)
                        .is_some_and(|c| c.is_open(self.wall_at(now)));
                    cur = Some(if is_open { *open } else { *closed });
                }
                NodeKind::Menu { .. } | NodeKind::Consent { .. } | NodeKind::Survey { .. } => {
                    self.ask(now, id, 0);
                    return;
                }
                NodeKind::Queue { queue, next, after } => {
                    self.actions.push_back(IvrAction::Enqueue {
                        queue: queue.clone(),
                    });
                    self.state = State::Queued {
                        next: *next,
                        after: *after,
                    };
                    return;
                }
                NodeKind::Goto { next } => cur = Some(*next),
                NodeKind::Set { vars, next } => {
                    for (k, v) in vars {
                        self.variables.insert(k.clone(), v.clone());
                    }
                    cur = *next;
                }
                NodeKind::Transfer {
                    target,
                    method,
                    next,
                } => {
                    self.actions.push_back(IvrAction::Transfer {
                        target: target.clone(),
                        method: *method,
                    });
                    self.state = State::Transferring { next: *next };
                    return;
                }
                NodeKind::Voicemail { prompts, max, next } => {
                    // The recording needs an answered call: the prompts are never early.
                    self.play(now, prompts, false);
                    self.state = State::Playing(AfterPlay::Record {
                        max: *max,
                        next: *next,
                    });
                    return;
                }
                NodeKind::Callback { prompts } => {
                    if prompts.is_empty() {
                        self.offer_callback();
                    } else {
                        self.play(now, prompts, false);
                        self.state = State::Playing(AfterPlay::OfferCallback);
                    }
                    return;
                }
                NodeKind::List {
                    kind,
                    numbers,
                    on_match,
                    nomatch,
                } => {
                    let listed = self
                        .caller
                        .as_deref()
                        .is_some_and(|c| numbers.iter().any(|p| number_matches(p, c)));
                    let _ = kind; // same rule for both lists: `match` = the caller is listed
                    cur = Some(if listed { *on_match } else { *nomatch });
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

/// Normalizes a phone number to the international form: spaces, dots, dashes and
/// parentheses dropped; `00` becomes `+`; a French national number (`0` + 9 digits)
/// becomes `+33…`. `None` for anything that is not a number (anonymous callers).
pub fn normalize_number(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let (plus, digits) = match s.strip_prefix('+') {
        Some(d) => (true, d.to_owned()),
        None => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(if plus {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if digits.len() == 10 && digits.starts_with('0') {
        format!("+33{}", &digits[1..])
    } else {
        digits
    })
}

/// A list entry normalized like a number, keeping a final `*` (prefix match).
pub(crate) fn normalize_pattern(raw: &str) -> Option<String> {
    match raw.trim().strip_suffix('*') {
        // A prefix is not a full number: only the spelling of `00`/`+` is normalized.
        Some(prefix) => {
            let p = prefix.trim();
            let p = match p.strip_prefix("00") {
                Some(rest) => format!("+{rest}"),
                None => p.to_owned(),
            };
            let digits = p.strip_prefix('+').unwrap_or(&p);
            (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
                .then(|| format!("{p}*"))
        }
        None => normalize_number(raw),
    }
}

fn number_matches(pattern: &str, number: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => number.starts_with(prefix),
        None => pattern == number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize() {
        assert_eq!(
            normalize_number("06 12 34 56 78").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(
            normalize_number("0033612345678").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(
            normalize_number("+33 6 12 34 56 78").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(normalize_number("3939").as_deref(), Some("3939"));
        assert_eq!(normalize_number("anonymous"), None);
        assert_eq!(normalize_number(""), None);
        assert_eq!(normalize_pattern("+3389*").as_deref(), Some("+3389*"));
        assert_eq!(
            normalize_pattern("0612345678").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(normalize_pattern("*"), None);
        assert!(number_matches("+3389*", "+33891234567"));
        assert!(!number_matches("+3389*", "+33612345678"));
    }
}

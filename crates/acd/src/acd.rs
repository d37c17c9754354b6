//! The state of the Acd, its observers, and the inputs of a call's life. Distribution and
//! timers are in `dispatch.rs`, agent commands in `agents.rs`, callbacks and overflow in
//! `callbacks.rs`.

use crate::config::{AcdConfig, LoginMode, QueueConfig};
use crate::error::{AcdError, ConfigError};
use crate::event::{
    AcdAction, AgentStatus, CancelReason, EndedBy, JournalEntry, JournalEvent, OverflowReason,
    StateCause,
};
use crate::ewt::{self, ExpAverage, History, QueueState, WaitEstimate};
use crate::{AgentId, CallId, CallbackId, OfferId, QueueId};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The pure ACD state machine. See the crate docs for its contract.
#[derive(Debug)]
pub struct Acd {
    pub(crate) agents: Vec<Agent>,
    pub(crate) agent_index: HashMap<AgentId, usize>,
    pub(crate) queues: Vec<Queue>,
    pub(crate) queue_index: HashMap<QueueId, usize>,
    /// Open offers; a BTreeMap so that timeouts fire in a reproducible order.
    pub(crate) offers: BTreeMap<OfferId, Offer>,
    /// Which queue each waiting call (or callback) is in.
    pub(crate) queued: HashMap<CallId, usize>,
    /// Conversations (and callbacks being dialed), by call.
    pub(crate) active: BTreeMap<CallId, Active>,
    pub(crate) callbacks: HashMap<CallbackId, CallId>,
    pub(crate) next_offer: u64,
    pub(crate) next_callback: u64,
    pub(crate) next_seq: u64,
    pub(crate) open: bool,
    pub(crate) actions: VecDeque<AcdAction>,
    /// Recent predictions by state (see `estimate_at`); a `Cell` so `estimate` stays `&self`.
    pub(crate) estimates: EstimateCache,
}

type EstimateKey = (usize, usize, usize, u64, u64);
const ESTIMATE_CACHE: usize = 128;

#[derive(Default)]
pub(crate) struct EstimateCache(Cell<Vec<(EstimateKey, WaitEstimate)>>);

impl EstimateCache {
    fn take(&self) -> Vec<(EstimateKey, WaitEstimate)> {
        self.0.take()
    }
    fn set(&self, v: Vec<(EstimateKey, WaitEstimate)>) {
        self.0.set(v)
    }
}

impl std::fmt::Debug for EstimateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EstimateCache")
    }
}

#[derive(Debug)]
pub(crate) struct Agent {
    pub id: AgentId,
    pub phone: String,
    pub state: AgentState,
    pub reachable: bool,
    /// When the agent last became available after a call, a login or a pause (`None`: since
    /// start). A phone that rang unanswered does not reset it: that agent took no call.
    pub idle_since: Option<Instant>,
    pub unanswered: u32,
    /// A pause or logout asked during a call, applied when it ends.
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentState {
    LoggedOut,
    Available,
    Ringing(OfferId),
    OnCall(CallId),
    WrapUp { until: Instant },
    Paused(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    Pause(String),
    Logout,
}

impl AgentState {
    pub fn status(&self) -> AgentStatus {
        match self {
            AgentState::LoggedOut => AgentStatus::LoggedOut,
            AgentState::Available => AgentStatus::Available,
            AgentState::Ringing(_) => AgentStatus::Ringing,
            AgentState::OnCall(_) => AgentStatus::OnCall,
            AgentState::WrapUp { .. } => AgentStatus::WrapUp,
            AgentState::Paused(r) => AgentStatus::Paused(r.clone()),
        }
    }
}

impl Agent {
    /// May be offered a call now.
    pub fn offerable(&self) -> bool {
        self.reachable && self.state == AgentState::Available
    }
    /// Logged in and reachable (paused included): the queue is staffed.
    pub fn staffed(&self) -> bool {
        self.reachable && self.state != AgentState::LoggedOut
    }
    /// At work for the wait estimate: staffed and not paused.
    pub fn working(&self) -> bool {
        self.staffed() && !matches!(self.state, AgentState::Paused(_))
    }
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub id: QueueId,
    pub cfg: QueueConfig,
    /// Agent indexes in configured order.
    pub members: Vec<usize>,
    /// Waiting entries, best first: higher priority, then arrival (`seq`).
    pub entries: Vec<Entry>,
    /// Round-robin memory: the member index to start from next time.
    pub rr_next: usize,
    pub history: History,
    pub classic: ExpAverage,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub call: CallId,
    pub seq: u64,
    pub priority: u8,
    pub caller: String,
    pub arrived: Instant,
    pub kind: EntryKind,
    /// Open offers for this entry.
    pub offers: Vec<OfferId>,
    /// Agents already offered this entry in the current round.
    pub tried: Vec<usize>,
    /// When the current round ends and tried agents may be rung again.
    pub round_reset_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) enum EntryKind {
    Call {
        next_announce: Option<Instant>,
        max_wait_at: Option<Instant>,
    },
    Callback(CallbackInfo),
}

#[derive(Debug, Clone)]
pub(crate) struct CallbackInfo {
    pub id: CallbackId,
    pub number: String,
    /// Attempts placed so far.
    pub attempts: u32,
    /// A failed attempt is retried no earlier than this.
    pub not_before: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub call: CallId,
    pub queue: usize,
    pub agent: usize,
    pub deadline: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub agent: usize,
    pub queue: usize,
    /// `None` while a callback's citizen is being dialed.
    pub talk_since: Option<Instant>,
    /// For a callback: its entry, put back in line at its place if the attempt fails.
    pub callback: Option<Entry>,
}

impl Entry {
    pub fn key(&self) -> (std::cmp::Reverse<u8>, u64) {
        (std::cmp::Reverse(self.priority), self.seq)
    }
    pub fn callback(&self) -> Option<&CallbackInfo> {
        match &self.kind {
            EntryKind::Callback(cb) => Some(cb),
            EntryKind::Call { .. } => None,
        }
    }
}

impl Acd {
    /// Builds the Acd; static agents start available and reachable, manual ones logged out.
    /// Opening hours start open: the daemon closes with `handle_set_open` if its calendar says so.
    pub fn new(config: AcdConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut agents = Vec::new();
        let mut agent_index = HashMap::new();
        for a in &config.agents {
            agent_index.insert(AgentId(a.id.clone()), agents.len());
            agents.push(Agent {
                id: AgentId(a.id.clone()),
                phone: a.phone.clone(),
                state: match a.login {
                    LoginMode::Static => AgentState::Available,
                    LoginMode::Manual => AgentState::LoggedOut,
                },
                reachable: true,
                idle_since: None,
                unanswered: 0,
                pending: None,
            });
        }
        let mut queues = Vec::new();
        let mut queue_index = HashMap::new();
        for (name, q) in &config.queues {
            queue_index.insert(QueueId(name.clone()), queues.len());
            let members = q
                .members
                .iter()
                .filter_map(|m| agent_index.get(&AgentId(m.clone())).copied())
                .collect();
            queues.push(Queue {
                id: QueueId(name.clone()),
                history: History::new(q.default_talk, q.default_patience, q.wrap_up),
                classic: ExpAverage::default(),
                cfg: q.clone(),
                members,
                entries: Vec::new(),
                rr_next: 0,
            });
        }
        Ok(Acd {
            agents,
            agent_index,
            queues,
            queue_index,
            offers: BTreeMap::new(),
            queued: HashMap::new(),
            active: BTreeMap::new(),
            callbacks: HashMap::new(),
            next_offer: 1,
            next_callback: 1,
            next_seq: 0,
            open: true,
            actions: VecDeque::new(),
            estimates: EstimateCache::default(),
        })
    }

    /// The next thing to do, in order. Drain after every input.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    // ----- observers -----

    pub fn agent_status(&self, agent: &AgentId) -> Option<AgentStatus> {
        let ai = *self.agent_index.get(agent)?;
        Some(self.agents[ai].state.status())
    }

    pub fn agent_reachable(&self, agent: &AgentId) -> Option<bool> {
        let ai = *self.agent_index.get(agent)?;
        Some(self.agents[ai].reachable)
    }

    /// Entries waiting in the queue (callers and callbacks).
    pub fn queue_len(&self, queue: &QueueId) -> Option<usize> {
        let qi = *self.queue_index.get(queue)?;
        Some(self.queues[qi].entries.len())
    }

    /// 1-based place in line of a waiting call or callback.
    pub fn position(&self, call: CallId) -> Option<usize> {
        let qi = *self.queued.get(&call)?;
        self.queues[qi]
            .entries
            .iter()
            .position(|e| e.call == call)
            .map(|p| p + 1)
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The position a new caller of this priority would take (before `handle_enqueue`).
    pub fn position_for_new_caller(
        &self,
        queue: &QueueId,
        priority: u8,
    ) -> Result<usize, AcdError> {
        let qi = self.queue(queue)?;
        let ahead = self.queues[qi]
            .entries
            .iter()
            .take_while(|e| e.priority >= priority)
            .count();
        Ok(ahead + 1)
    }

    /// The state-based estimate for the caller at `position` (1 = next). For a new caller, pass
    /// [`Acd::position_for_new_caller`]: it is what early media announces before enqueueing.
    pub fn estimate(&self, queue: &QueueId, position: usize) -> Result<WaitEstimate, AcdError> {
        Ok(self.estimate_at(self.queue(queue)?, position))
    }

    /// The classic exponential average of answered callers' holds (`None` before the first).
    pub fn classic_estimate(&self, queue: &QueueId) -> Result<Option<WaitEstimate>, AcdError> {
        Ok(self.queues[self.queue(queue)?].classic.estimate())
    }

    /// Feeds history kept by the store (talks, and waits with whether they ended in an
    /// abandon), so that a restart does not fall back to the configured defaults.
    pub fn import_history(
        &mut self,
        queue: &QueueId,
        talks: &[Duration],
        waits: &[(Duration, bool)],
    ) -> Result<(), AcdError> {
        let qi = self.queue(queue)?;
        let q = &mut self.queues[qi];
        for t in talks {
            q.history.record_talk(*t);
        }
        for (w, abandoned) in waits {
            q.history.record_wait(*w, *abandoned);
        }
        Ok(())
    }

    pub(crate) fn estimate_at(&self, qi: usize, position: usize) -> WaitEstimate {
        let q = &self.queues[qi];
        let members = q.members.iter().map(|&ai| &self.agents[ai]);
        let staffed = members.clone().filter(|a| a.working()).count();
        let idle = members.filter(|a| a.offerable()).count();
        let state = QueueState {
            ahead: position.saturating_sub(1).min(ewt::MAX_AHEAD),
            staffed,
            idle,
            mu: q.history.mu(),
            theta: q.history.theta(),
        };
        // The prediction is a pure function of the state; the same state recurs for callers
        // announced between two changes, and computing it is the costly part of an announce.
        let key = (
            state.ahead,
            state.staffed,
            state.idle,
            state.mu.to_bits(),
            state.theta.to_bits(),
        );
        let mut cache = self.estimates.take();
        let found = cache.iter().find(|(k, _)| *k == key).map(|(_, e)| *e);
        let estimate = found.unwrap_or_else(|| {
            let e = ewt::predict(&state);
            if cache.len() >= ESTIMATE_CACHE {
                cache.clear();
            }
            cache.push((key, e));
            e
        });
        self.estimates.set(cache);
        estimate
    }

    pub(crate) fn queue(&self, queue: &QueueId) -> Result<usize, AcdError> {
        self.queue_index
            .get(queue)
            .copied()
            .ok_or_else(|| AcdError::UnknownQueue(queue.clone()))
    }

    // ----- journal and small helpers -----

    pub(crate) fn journal(&mut self, at: Instant, event: JournalEvent) {
        self.actions
            .push_back(AcdAction::Journal(JournalEntry { at, event }));
    }

    /// Journals why an input was refused, and hands the error back.
    pub(crate) fn refuse(&mut self, now: Instant, err: AcdError) -> AcdError {
        self.journal(
            now,
            JournalEvent::Note {
                text: format!("refused: {err}"),
            },
        );
        err
    }

    pub(crate) fn set_agent_state(
        &mut self,
        now: Instant,
        ai: usize,
        to: AgentState,
        cause: StateCause,
    ) {
        let agent = &mut self.agents[ai];
        let from = agent.state.status();
        if to == AgentState::Available && !matches!(agent.state, AgentState::Ringing(_)) {
            agent.idle_since = Some(now);
        }
        agent.state = to;
        let to = agent.state.status();
        let id = agent.id.clone();
        self.journal(
            now,
            JournalEvent::AgentState {
                agent: id,
                from,
                to,
                cause,
            },
        );
    }

    /// Inserts an entry at its place (priority, then arrival) and returns its 1-based position.
    pub(crate) fn insert_entry(&mut self, qi: usize, entry: Entry) -> usize {
        let key = entry.key();
        let entries = &mut self.queues[qi].entries;
        let pos = entries.partition_point(|e| e.key() < key);
        self.queued.insert(entry.call, qi);
        entries.insert(pos, entry);
        pos + 1
    }

    /// Finds a waiting entry: (queue, index).
    pub(crate) fn find_entry(&self, call: CallId) -> Option<(usize, usize)> {
        let qi = *self.queued.get(&call)?;
        let pos = self.queues[qi]
            .entries
            .iter()
            .position(|e| e.call == call)?;
        Some((qi, pos))
    }

    /// Takes an entry out of its queue, withdrawing its open offers first.
    pub(crate) fn remove_entry(&mut self, now: Instant, qi: usize, pos: usize) -> Entry {
        self.withdraw_offers(now, qi, pos, CancelReason::CallerLeft, None);
        let entry = self.queues[qi].entries.remove(pos);
        self.queued.remove(&entry.call);
        entry
    }

    // ----- call inputs -----

    /// A caller joins `queue`. `priority`: higher is served first (allowlisted callers);
    /// `caller`: their number, used for a callback when the queue overflows to one.
    pub fn handle_enqueue(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &QueueId,
        priority: u8,
        caller: &str,
    ) -> Result<(), AcdError> {
        let qi = self.queue(queue).map_err(|e| self.refuse(now, e))?;
        if self.queued.contains_key(&call) || self.active.contains_key(&call) {
            return Err(self.refuse(now, AcdError::DuplicateCall(call)));
        }
        let cfg = &self.queues[qi].cfg;
        let kind = EntryKind::Call {
            next_announce: (!cfg.announce_every.is_zero()).then(|| now + cfg.announce_every),
            max_wait_at: cfg.max_wait.map(|w| now + w),
        };
        let entry = self.new_entry(now, call, priority, caller.to_string(), kind);
        let position = self.insert_entry(qi, entry);
        self.journal(
            now,
            JournalEvent::Arrived {
                call,
                queue: queue.clone(),
                priority,
                caller: caller.to_string(),
                position,
            },
        );
        if !self.staffed(qi) {
            if let Some(target) = self.queues[qi].cfg.no_agent_overflow.clone() {
                self.overflow(now, call, target, OverflowReason::NoAgent);
            }
        }
        self.dispatch(now);
        Ok(())
    }

    pub(crate) fn new_entry(
        &mut self,
        now: Instant,
        call: CallId,
        priority: u8,
        caller: String,
        kind: EntryKind,
    ) -> Entry {
        self.next_seq += 1;
        Entry {
            call,
            seq: self.next_seq,
            priority,
            caller,
            arrived: now,
            kind,
            offers: Vec::new(),
            tried: Vec::new(),
            round_reset_at: None,
        }
    }

    pub(crate) fn new_callback_id(&mut self, call: CallId) -> CallbackId {
        let id = CallbackId(self.next_callback);
        self.next_callback += 1;
        self.callbacks.insert(id, call);
        id
    }

    /// The caller hung up while waiting: journaled with their position and wait.
    pub fn handle_abandon(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        if let Some((qi, pos)) = self.find_entry(call) {
            if self.queues[qi].entries[pos].callback().is_some() {
                // Hanging up after a callback was promised is what callers do: it stands.
                self.journal(
                    now,
                    JournalEvent::Note {
                        text: format!("{call} hung up after its callback was promised"),
                    },
                );
                return Ok(());
            }
            let entry = self.remove_entry(now, qi, pos);
            let wait = now.saturating_duration_since(entry.arrived);
            self.queues[qi].history.record_wait(wait, true);
            let queue = self.queues[qi].id.clone();
            self.journal(
                now,
                JournalEvent::Abandoned {
                    call,
                    queue,
                    position: pos + 1,
                    wait,
                },
            );
            self.dispatch(now);
            return Ok(());
        }
        match self.active.get(&call) {
            // The caller's original leg ending says nothing of the callback conversation,
            // which is ended with `handle_call_ended` / `handle_agent_hangup`.
            Some(a) if a.callback.is_some() => {
                self.journal(
                    now,
                    JournalEvent::Note {
                        text: format!("{call}: original leg ended during its callback"),
                    },
                );
                Ok(())
            }
            Some(_) => self.handle_call_ended(now, call),
            None => Err(self.refuse(now, AcdError::UnknownCall(call))),
        }
    }

    /// The caller's side of a conversation ended (or, if still waiting, they abandoned).
    pub fn handle_call_ended(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        if self.queued.contains_key(&call) {
            return self.handle_abandon(now, call);
        }
        self.end_conversation(now, call, EndedBy::Caller)
    }

    /// The agent hung up: the conversation ends, the agent enters wrap-up.
    pub fn handle_agent_hangup(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        self.end_conversation(now, call, EndedBy::Agent)
    }

    /// The agent transferred the caller to `target` (REFER from the phone, or the API): the
    /// conversation is over for the agent, who enters wrap-up; the journal keeps where it went.
    pub fn handle_transfer(
        &mut self,
        now: Instant,
        call: CallId,
        target: &str,
    ) -> Result<(), AcdError> {
        let talking = self
            .active
            .get(&call)
            .is_some_and(|a| a.talk_since.is_some());
        if !talking {
            return Err(self.refuse(now, AcdError::UnknownCall(call)));
        }
        let agent = self
            .active
            .get(&call)
            .map(|a| self.agents[a.agent].id.clone());
        if let Some(agent) = agent {
            self.journal(
                now,
                JournalEvent::Transferred {
                    call,
                    agent,
                    target: target.to_string(),
                },
            );
        }
        self.end_conversation(now, call, EndedBy::Agent)
    }

    fn end_conversation(
        &mut self,
        now: Instant,
        call: CallId,
        by: EndedBy,
    ) -> Result<(), AcdError> {
        let Some(active) = self.active.remove(&call) else {
            return Err(self.refuse(now, AcdError::UnknownCall(call)));
        };
        let Some(since) = active.talk_since else {
            // The line dropped while the citizen was being dialed: a failed attempt.
            self.fail_callback(now, active);
            self.dispatch(now);
            return Ok(());
        };
        let talk = now.saturating_duration_since(since);
        self.queues[active.queue].history.record_talk(talk);
        let agent = self.agents[active.agent].id.clone();
        self.journal(
            now,
            JournalEvent::CallEnded {
                call,
                agent,
                talk,
                by,
            },
        );
        if let Some(cb) = active.callback.as_ref().and_then(|e| e.callback()) {
            self.callbacks.remove(&cb.id);
        }
        self.after_call(now, active.agent, active.queue);
        self.dispatch(now);
        Ok(())
    }

    /// What an agent does once a conversation is over: a pause or logout they asked for
    /// meanwhile, else the queue's wrap-up.
    pub(crate) fn after_call(&mut self, now: Instant, ai: usize, qi: usize) {
        let wrap_up = self.queues[qi].cfg.wrap_up;
        match self.agents[ai].pending.take() {
            Some(Pending::Logout) => {
                self.set_agent_state(now, ai, AgentState::LoggedOut, StateCause::Deferred);
                self.overflow_unstaffed(now);
            }
            Some(Pending::Pause(r)) => {
                self.set_agent_state(now, ai, AgentState::Paused(r), StateCause::Deferred)
            }
            None if wrap_up.is_zero() => {
                self.set_agent_state(now, ai, AgentState::Available, StateCause::CallEnded)
            }
            None => self.set_agent_state(
                now,
                ai,
                AgentState::WrapUp {
                    until: now + wrap_up,
                },
                StateCause::CallEnded,
            ),
        }
    }
}

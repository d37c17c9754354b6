//! The ACD task: owns the pure [`ld_acd::Acd`], feeds it what calls, agent
//! legs and agents report, and carries out its actions (ring an agent's phone,
//! bridge, announce, call a citizen back, journal).
//!
//! One task for the whole ACD: the state machine is not shared, so there is
//! no lock; calls talk to it through a channel and hear back on their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ld_acd::{
    Acd, AcdAction, AgentCommand, AgentId, CallId, CallbackId, CallbackOutcome, JournalEvent,
    OfferId, OfferOutcome, OfferResult, OverflowTarget, QueueId, WaitEstimate,
};
use ld_media::{MediaEngine, SessionId};
use ld_sip::SipEdge;
use ld_store::{JournalEntry, StoreWriter};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::legs::{self, LegCmd, LegReport};

/// What a queued call hears from the ACD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToCall {
    /// An agent answered; the media is bridged.
    Connected { agent: String },
    /// The queue gives the call back to the plan (overflow).
    Returned,
    /// The caller was turned into a callback (overflow to callback): say so, hang up.
    CallbackPromised,
    /// Position (1 = next) and the announced bound in minutes (0 = none).
    Announce { position: usize, minutes: u32 },
    /// The agent hung up.
    AgentHungUp,
    /// The agent transferred the caller to `target`.
    AgentTransfer { target: String },
}

/// What the ACD task is told.
pub enum AcdIn {
    Enqueue {
        call: CallId,
        sip_call_id: String,
        queue: String,
        priority: u8,
        caller: String,
        session: SessionId,
        to_call: mpsc::UnboundedSender<ToCall>,
        reply: oneshot::Sender<bool>,
    },
    /// The caller left while waiting.
    Left {
        call: CallId,
    },
    /// The caller hung up a connected call.
    Ended {
        call: CallId,
    },
    /// "Call me back, keep my place" while waiting.
    RequestCallback {
        call: CallId,
        number: String,
        reply: oneshot::Sender<bool>,
    },
    /// A callback asked for before joining the queue (a menu choice).
    NewCallback {
        call: CallId,
        sip_call_id: String,
        queue: String,
        number: String,
        reply: oneshot::Sender<bool>,
    },
    /// The announced wait for a caller joining `queue` now.
    Estimate {
        queue: String,
        reply: oneshot::Sender<Option<WaitEstimate>>,
    },
    Agent {
        agent: String,
        command: AgentCommand,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Reachable {
        agent: String,
        reachable: bool,
    },
    /// A snapshot for the control API.
    Status {
        reply: oneshot::Sender<Status>,
    },
    /// Transfer the connected call with this SIP Call-ID (the control API).
    Transfer {
        sip_call_id: String,
        target: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Leg(LegReport),
    SetOpen(bool),
}

/// What the control API shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub agents: Vec<AgentView>,
    pub queues: Vec<QueueView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentView {
    pub id: String,
    /// logged_out, available, ringing, on_call, wrap_up, paused
    pub status: String,
    pub pause_reason: Option<String>,
    pub reachable: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueView {
    pub name: String,
    pub waiting: usize,
    /// The bound a caller joining now would hear ("moins de N minutes"); 0: none.
    pub estimated_wait_minutes: u32,
    pub estimated_wait_p50_seconds: Option<u64>,
    /// The classic exponential average of answered callers' waits, kept
    /// beside the model so the two can be compared.
    pub classic_wait_seconds: Option<u64>,
}

/// The handle calls use.
#[derive(Clone)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<AcdIn>,
    next_call: Arc<std::sync::atomic::AtomicU64>,
    queues: Arc<Vec<String>>,
}

impl AcdHandle {
    pub fn send(&self, msg: AcdIn) {
        if self.tx.send(msg).is_err() {
            warn!("the ACD task is gone");
        }
    }

    /// A fresh id for a call entering the ACD.
    pub fn new_call_id(&self) -> CallId {
        CallId(
            self.next_call
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }

    pub fn has_queue(&self, name: &str) -> bool {
        self.queues.iter().any(|q| q == name)
    }

    /// The first configured queue: the one whose wait is announced in early
    /// media when the plan does not say more.
    pub fn default_queue(&self) -> Option<&str> {
        self.queues.first().map(String::as_str)
    }

    /// Asks and waits for an answer (the ACD task answers at once).
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> AcdIn) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx));
        rx.await.ok()
    }
}

struct CallEntry {
    sip_call_id: String,
    session: Option<SessionId>,
    to_call: Option<mpsc::UnboundedSender<ToCall>>,
}

struct OfferEntry {
    call: CallId,
    to_leg: mpsc::UnboundedSender<LegCmd>,
    /// The agent leg's media session, once it answered.
    session: Option<SessionId>,
    callback: Option<CallbackId>,
}

struct Task {
    acd: Acd,
    edge: Arc<SipEdge>,
    media: MediaEngine,
    store: Arc<StoreWriter>,
    clock: Clock,
    tx: mpsc::UnboundedSender<AcdIn>,
    calls: HashMap<CallId, CallEntry>,
    offers: HashMap<OfferId, OfferEntry>,
    /// The offer whose leg is bridged with the call.
    bridged: HashMap<CallId, OfferId>,
    /// The citizen leg of a callback in progress.
    citizens: HashMap<CallbackId, mpsc::UnboundedSender<LegCmd>>,
    phones: HashMap<String, String>,
    /// Calls to forget once the journal steps their end caused are written
    /// (those steps need the call's SIP Call-ID).
    gone: Vec<CallId>,
    queue_names: Vec<String>,
}

/// Starts the ACD task; `None` when no queue is configured.
pub fn start(
    cfg: ld_acd::AcdConfig,
    edge: Arc<SipEdge>,
    media: MediaEngine,
    store: Arc<StoreWriter>,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<Option<(AcdHandle, tokio::task::JoinHandle<()>)>> {
    if cfg.queues.is_empty() {
        return Ok(None);
    }
    let phones = cfg
        .agents
        .iter()
        .map(|a| (a.id.clone(), a.phone.clone()))
        .collect();
    let queues: Vec<String> = cfg.queues.keys().cloned().collect();
    let acd = Acd::new(cfg).map_err(|e| anyhow::anyhow!("ACD configuration: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = AcdHandle {
        tx: tx.clone(),
        next_call: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        queues: Arc::new(queues),
    };
    let task = Task {
        acd,
        edge,
        media,
        store,
        clock,
        tx,
        calls: HashMap::new(),
        offers: HashMap::new(),
        bridged: HashMap::new(),
        citizens: HashMap::new(),
        phones,
        gone: Vec::new(),
        queue_names: handle.queues.as_ref().clone(),
    };
    let join = tokio::spawn(task.run(rx, stop));
    Ok(Some((handle, join)))
}

/// How often the agents' phones are checked for reachability.
const REACHABILITY_EVERY: Duration = Duration::from_secs(5);

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<AcdIn>, stop: CancellationToken) {
        let mut probe = tokio::time::interval(REACHABILITY_EVERY);
        loop {
            self.drain();
            for call in self.gone.drain(..) {
                self.calls.remove(&call);
            }
            let deadline = self.acd.poll_timeout();
            tokio::select! {
                _ = stop.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(Instant::now(), m),
                    None => break,
                },
                _ = sleep_until(deadline) => self.acd.handle_timeout(Instant::now()),
                _ = probe.tick() => self.probe_phones(),
            }
        }
        // Shutdown: every agent leg gets its BYE or CANCEL.
        for (_, o) in self.offers.drain() {
            let _ = o.to_leg.send(LegCmd::Hangup);
        }
        for (_, c) in self.citizens.drain() {
            let _ = c.send(LegCmd::Hangup);
        }
        self.drain();
    }

    fn handle(&mut self, now: Instant, msg: AcdIn) {
        match msg {
            AcdIn::Enqueue {
                call,
                sip_call_id,
                queue,
                priority,
                caller,
                session,
                to_call,
                reply,
            } => {
                let ok = self
                    .acd
                    .handle_enqueue(now, call, &QueueId::from(queue.as_str()), priority, &caller)
                    .is_ok();
                if ok {
                    self.calls.insert(
                        call,
                        CallEntry {
                            sip_call_id,
                            session: Some(session),
                            to_call: Some(to_call),
                        },
                    );
                }
                let _ = reply.send(ok);
            }
            AcdIn::Left { call } => {
                let _ = self.acd.handle_abandon(now, call);
                // A callback made from this call lives on in the ACD.
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session = None;
                    c.to_call = None;
                }
            }
            AcdIn::Ended { call } => {
                let _ = self.acd.handle_call_ended(now, call);
                if let Some(offer) = self.bridged.remove(&call) {
                    if let Some(o) = self.offers.remove(&offer) {
                        let _ = o.to_leg.send(LegCmd::Hangup);
                    }
                }
                self.gone.push(call);
            }
            AcdIn::RequestCallback {
                call,
                number,
                reply,
            } => {
                let ok = self.acd.handle_request_callback(now, call, &number).is_ok();
                let _ = reply.send(ok);
            }
            AcdIn::NewCallback {
                call,
                sip_call_id,
                queue,
                number,
                reply,
            } => {
                let ok = self
                    .acd
                    .handle_enqueue_callback(now, call, &QueueId::from(queue.as_str()), 0, &number)
                    .is_ok();
                if ok {
                    self.calls.insert(
                        call,
                        CallEntry {
                            sip_call_id,
                            session: None,
                            to_call: None,
                        },
                    );
                }
                let _ = reply.send(ok);
            }
            AcdIn::Estimate { queue, reply } => {
                let q = QueueId::from(queue.as_str());
                let est = self
                    .acd
                    .position_for_new_caller(&q, 0)
                    .ok()
                    .and_then(|pos| self.acd.estimate(&q, pos).ok());
                let _ = reply.send(est);
            }
            AcdIn::Agent {
                agent,
                command,
                reply,
            } => {
                let r = self
                    .acd
                    .handle_agent_command(now, &AgentId::from(agent.as_str()), command)
                    .map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
            AcdIn::Reachable { agent, reachable } => {
                let id = AgentId::from(agent.as_str());
                if self.acd.agent_reachable(&id) != Some(reachable) {
                    info!(%agent, reachable, "agent phone reachability changed");
                    let _ = self.acd.handle_agent_reachable(now, &id, reachable);
                }
            }
            AcdIn::SetOpen(open) => self.acd.handle_set_open(now, open),
            AcdIn::Status { reply } => {
                let _ = reply.send(self.status());
            }
            AcdIn::Transfer {
                sip_call_id,
                target,
                reply,
            } => {
                let _ = reply.send(self.transfer(now, &sip_call_id, &target));
            }
            AcdIn::Leg(report) => self.leg_report(now, report),
        }
    }

    fn leg_report(&mut self, now: Instant, report: LegReport) {
        match report {
            LegReport::Result {
                offer,
                result,
                session,
            } => {
                if let Some(o) = self.offers.get_mut(&offer) {
                    o.session = session;
                }
                if result != OfferResult::Answered {
                    self.offers.remove(&offer);
                }
                info!(%offer, ?result, "offer result");
                let _ = self.acd.handle_offer_result(now, offer, result);
            }
            LegReport::AgentHungUp { offer } => {
                let Some(o) = self.offers.remove(&offer) else {
                    return;
                };
                self.bridged.remove(&o.call);
                if let Some(cb) = o.callback {
                    if let Some(c) = self.citizens.remove(&cb) {
                        let _ = c.send(LegCmd::Hangup);
                    }
                }
                let _ = self.acd.handle_agent_hangup(now, o.call);
                if let Some(tx) = self.calls.get(&o.call).and_then(|c| c.to_call.clone()) {
                    let _ = tx.send(ToCall::AgentHungUp);
                }
                self.gone.push(o.call);
            }
            LegReport::AgentTransfer { offer, target } => {
                let Some(o) = self.offers.remove(&offer) else {
                    return;
                };
                self.bridged.remove(&o.call);
                let _ = self.acd.handle_transfer(now, o.call, &target);
                let target = crate::calls::dial_uri(&target, self.edge.pbx_domain());
                if let Some(tx) = self.calls.get(&o.call).and_then(|c| c.to_call.clone()) {
                    let _ = tx.send(ToCall::AgentTransfer { target });
                }
                self.gone.push(o.call);
            }
            LegReport::CitizenAnswered { callback } => {
                let _ = self
                    .acd
                    .handle_callback_result(now, callback, CallbackOutcome::Ok);
            }
            LegReport::CitizenFailed { callback, call } => {
                self.citizens.remove(&callback);
                let _ = self
                    .acd
                    .handle_callback_result(now, callback, CallbackOutcome::Failed);
                // The agent who accepted the callback is free again: hang up
                // their phone.
                self.hang_up_agent_of(call);
            }
            LegReport::CitizenHungUp { callback, call } => {
                self.citizens.remove(&callback);
                let _ = self.acd.handle_call_ended(now, call);
                self.hang_up_agent_of(call);
            }
        }
    }

    fn hang_up_agent_of(&mut self, call: CallId) {
        if let Some(offer) = self.bridged.remove(&call) {
            if let Some(o) = self.offers.remove(&offer) {
                let _ = o.to_leg.send(LegCmd::Hangup);
            }
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.acd.poll_action() {
            self.act(action);
        }
    }

    fn act(&mut self, action: AcdAction) {
        match action {
            AcdAction::Offer {
                offer,
                call,
                agent,
                phone,
                ..
            } => {
                info!(%offer, %call, %agent, %phone, "offer: ringing the agent");
                self.ring(offer, call, phone, None);
            }
            AcdAction::OfferCallback {
                offer,
                callback,
                call,
                agent,
                phone,
                number,
                ..
            } => {
                info!(%offer, %callback, %agent, %number, "offer: a callback to the agent");
                self.ring(offer, call, phone, Some(callback));
            }
            AcdAction::CancelOffer { offer } => {
                if let Some(o) = self.offers.remove(&offer) {
                    let _ = o.to_leg.send(LegCmd::Cancel);
                }
            }
            AcdAction::Bridge { call, agent, offer } => {
                let caller_session = self.calls.get(&call).and_then(|c| c.session);
                let Some(o) = self.offers.get(&offer) else {
                    return;
                };
                if let Some(s) = caller_session {
                    let _ = o.to_leg.send(LegCmd::Bridge(s));
                }
                self.bridged.insert(call, offer);
                if let Some(tx) = self.calls.get(&call).and_then(|c| c.to_call.clone()) {
                    let _ = tx.send(ToCall::Connected {
                        agent: agent.0.clone(),
                    });
                }
            }
            AcdAction::DialCitizen {
                callback,
                call,
                number,
                ..
            } => {
                let agent_session = self
                    .offers
                    .values()
                    .find(|o| o.callback == Some(callback))
                    .and_then(|o| o.session);
                if let Some((offer, _)) = self
                    .offers
                    .iter()
                    .find(|(_, o)| o.callback == Some(callback))
                {
                    self.bridged.insert(call, *offer);
                }
                let target = citizen_uri(&number, &self.edge);
                info!(%callback, %target, "calling the citizen back");
                let ctl = legs::spawn_citizen(
                    self.edge.clone(),
                    self.media.clone(),
                    callback,
                    call,
                    target,
                    agent_session,
                    self.tx.clone(),
                );
                self.citizens.insert(callback, ctl);
            }
            AcdAction::Overflow { call, target } => {
                // Voicemail and the closing message are the plan's to say:
                // the call goes back to the queue node's `next`.
                let msg = match target {
                    OverflowTarget::Callback => ToCall::CallbackPromised,
                    OverflowTarget::Partner(uri) => ToCall::AgentTransfer {
                        target: crate::calls::dial_uri(&uri, self.edge.pbx_domain()),
                    },
                    OverflowTarget::Voicemail | OverflowTarget::ClosingMessage => ToCall::Returned,
                };
                if let Some(tx) = self.calls.get(&call).and_then(|c| c.to_call.clone()) {
                    let _ = tx.send(msg);
                }
            }
            AcdAction::Announce {
                call,
                position,
                ewt,
            } => {
                if let Some(tx) = self.calls.get(&call).and_then(|c| c.to_call.clone()) {
                    let _ = tx.send(ToCall::Announce {
                        position,
                        minutes: ewt.announce_minutes,
                    });
                }
            }
            AcdAction::Journal(entry) => {
                let row = self.journal_row(entry);
                self.store.write_journal(row);
            }
        }
    }

    /// Rings an agent's phone for an offer (a caller's, or a callback's).
    fn ring(&mut self, offer: OfferId, call: CallId, phone: String, callback: Option<CallbackId>) {
        let to_leg = legs::spawn_agent(
            self.edge.clone(),
            self.media.clone(),
            offer,
            phone,
            self.tx.clone(),
        );
        self.offers.insert(
            offer,
            OfferEntry {
                call,
                to_leg,
                session: None,
                callback,
            },
        );
    }

    fn probe_phones(&self) {
        for (agent, phone) in &self.phones {
            let (edge, tx, agent, phone) = (
                self.edge.clone(),
                self.tx.clone(),
                agent.clone(),
                phone.clone(),
            );
            tokio::spawn(async move {
                let reachable = edge.probe(&phone).await;
                let _ = tx.send(AcdIn::Reachable { agent, reachable });
            });
        }
    }

    /// A transfer asked through the API: as if the agent's phone sent a
    /// REFER (the agent's leg ends, the caller goes to the partner).
    fn transfer(&mut self, now: Instant, sip_call_id: &str, target: &str) -> Result<(), String> {
        let call = self
            .calls
            .iter()
            .find(|(_, c)| c.sip_call_id == sip_call_id)
            .map(|(id, _)| *id)
            .ok_or_else(|| format!("no call {sip_call_id:?} in the ACD"))?;
        let offer = self
            .bridged
            .get(&call)
            .copied()
            .ok_or_else(|| format!("call {sip_call_id:?} is not with an agent"))?;
        if let Some(o) = self.offers.get(&offer) {
            let _ = o.to_leg.send(LegCmd::Hangup);
        }
        self.leg_report(
            now,
            LegReport::AgentTransfer {
                offer,
                target: target.to_string(),
            },
        );
        Ok(())
    }

    fn status(&self) -> Status {
        let mut agents: Vec<AgentView> = self
            .phones
            .keys()
            .map(|id| {
                let aid = AgentId::from(id.as_str());
                let status = self.acd.agent_status(&aid);
                let (name, reason) = match &status {
                    Some(ld_acd::AgentStatus::LoggedOut) | None => ("logged_out", None),
                    Some(ld_acd::AgentStatus::Available) => ("available", None),
                    Some(ld_acd::AgentStatus::Ringing) => ("ringing", None),
                    Some(ld_acd::AgentStatus::OnCall) => ("on_call", None),
                    Some(ld_acd::AgentStatus::WrapUp) => ("wrap_up", None),
                    Some(ld_acd::AgentStatus::Paused(r)) => ("paused", Some(r.clone())),
                };
                AgentView {
                    id: id.clone(),
                    status: name.into(),
                    pause_reason: reason,
                    reachable: self.acd.agent_reachable(&aid).unwrap_or(false),
                }
            })
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        let queues = self
            .queue_names
            .iter()
            .map(|name| {
                let q = QueueId::from(name.as_str());
                let est = self
                    .acd
                    .position_for_new_caller(&q, 0)
                    .ok()
                    .and_then(|pos| self.acd.estimate(&q, pos).ok());
                QueueView {
                    name: name.clone(),
                    waiting: self.acd.queue_len(&q).unwrap_or(0),
                    estimated_wait_minutes: est.map_or(0, |e| e.announce_minutes),
                    estimated_wait_p50_seconds: est
                        .filter(|e| e.announce_minutes > 0)
                        .map(|e| e.p50.as_secs()),
                    classic_wait_seconds: self
                        .acd
                        .classic_estimate(&q)
                        .ok()
                        .flatten()
                        .map(|e| e.p50.as_secs()),
                }
            })
            .collect();
        Status { agents, queues }
    }

    fn sip_call_id(&self, call: CallId) -> Option<String> {
        self.calls.get(&call).map(|c| c.sip_call_id.clone())
    }

    /// The store's form of a journal step.
    fn journal_row(&self, entry: ld_acd::JournalEntry) -> JournalEntry {
        let at = self.clock.wall(entry.at);
        let ms = |d: Duration| d.as_millis() as u64;
        let (event, call, agent, queue, detail) = match entry.event {
            JournalEvent::Arrived {
                call,
                queue,
                priority,
                caller,
                position,
            } => (
                "arrived",
                Some(call),
                None,
                Some(queue.0),
                json!({ "priority": priority, "caller": caller, "position": position }),
            ),
            JournalEvent::Offered {
                offer,
                call,
                agent,
                callback,
            } => (
                "offered",
                Some(call),
                Some(agent.0),
                None,
                json!({ "offer": offer.0, "callback": callback.map(|c| c.0) }),
            ),
            JournalEvent::OfferEnded {
                offer,
                call,
                agent,
                outcome,
            } => {
                let result = match outcome {
                    OfferOutcome::Result(r) => offer_result_name(&r),
                    OfferOutcome::Cancelled(reason) => {
                        format!("cancelled_{reason:?}").to_lowercase()
                    }
                };
                (
                    "offer_ended",
                    Some(call),
                    Some(agent.0),
                    None,
                    json!({ "offer": offer.0, "result": result }),
                )
            }
            JournalEvent::Answered {
                call,
                agent,
                queue,
                wait,
            } => (
                "answered",
                Some(call),
                Some(agent.0),
                Some(queue.0),
                json!({ "wait_ms": ms(wait) }),
            ),
            JournalEvent::Abandoned {
                call,
                queue,
                position,
                wait,
            } => (
                "abandoned",
                Some(call),
                None,
                Some(queue.0),
                json!({ "position": position, "wait_ms": ms(wait) }),
            ),
            JournalEvent::CallEnded {
                call,
                agent,
                talk,
                by,
            } => (
                "call_ended",
                Some(call),
                Some(agent.0),
                None,
                json!({ "talk_ms": ms(talk), "by": format!("{by:?}").to_lowercase() }),
            ),
            JournalEvent::Transferred {
                call,
                agent,
                target,
            } => (
                "transferred",
                Some(call),
                Some(agent.0),
                None,
                json!({ "target": target }),
            ),
            JournalEvent::AgentState {
                agent,
                from,
                to,
                cause,
            } => (
                "agent_state",
                None,
                Some(agent.0),
                None,
                json!({ "from": format!("{from:?}"), "to": format!("{to:?}"), "cause": format!("{cause:?}") }),
            ),
            JournalEvent::AgentReachable { agent, reachable } => (
                "agent_reachable",
                None,
                Some(agent.0),
                None,
                json!({ "reachable": reachable }),
            ),
            JournalEvent::CallbackPromised {
                callback,
                call,
                queue,
                number,
                position,
            } => (
                "callback_promised",
                Some(call),
                None,
                Some(queue.0),
                json!({ "callback": callback.0, "number": number, "position": position }),
            ),
            JournalEvent::CallbackPlaced {
                callback,
                agent,
                number,
                attempt,
            } => (
                "callback_placed",
                None,
                Some(agent.0),
                None,
                json!({ "callback": callback.0, "number": number, "attempt": attempt }),
            ),
            JournalEvent::CallbackCompleted {
                callback,
                agent,
                attempt,
            } => (
                "callback_completed",
                None,
                Some(agent.0),
                None,
                json!({ "callback": callback.0, "attempt": attempt }),
            ),
            other => {
                // The rarer steps keep their whole content as text.
                let name = journal_name(&other);
                (
                    name,
                    None,
                    None,
                    None,
                    json!({ "event": format!("{other:?}") }),
                )
            }
        };
        JournalEntry {
            at,
            event: event.to_string(),
            call_id: call.and_then(|c| self.sip_call_id(c)),
            agent,
            queue,
            detail,
        }
    }
}

fn journal_name(e: &JournalEvent) -> &'static str {
    match e {
        JournalEvent::CallbackFailed { .. } => "callback_failed",
        JournalEvent::Overflowed { .. } => "overflowed",
        JournalEvent::OpenChanged { .. } => "open_changed",
        JournalEvent::Note { .. } => "note",
        _ => "other",
    }
}

fn offer_result_name(r: &OfferResult) -> String {
    match r {
        OfferResult::Answered => "answered".into(),
        OfferResult::Busy => "busy".into(),
        OfferResult::NotFound => "not_found".into(),
        OfferResult::Unavailable => "unavailable".into(),
        OfferResult::Error(code) => format!("error_{code}"),
        OfferResult::NoAnswer => "no_answer".into(),
    }
}

/// The citizen's number as a SIP URI: through the PBX when there is a trunk.
fn citizen_uri(number: &str, edge: &SipEdge) -> String {
    crate::calls::dial_uri(number, edge.pbx_domain())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

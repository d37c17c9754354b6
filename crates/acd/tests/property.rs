//! Property test (seeded loop, over a million steps): 30 callers and 3 agents with random
//! answer / busy / no answer / abandon / pauses / unreachable phones / callbacks, under every
//! strategy. Checked at every step:
//! - FIFO within a priority: when a caller is bridged, no earlier caller of the same priority
//!   is still waiting;
//! - an agent is only rung from `Available` and reachable, and never has two open offers;
//! - every offer gets exactly one journaled outcome;
//! - no deadline is left in the past after `handle_timeout`;
//!
//! and at the end of each episode: every call ended bridged, abandoned, overflowed, or as a
//! callback completed or given up.

mod common;
use common::rng::Rng;
use ld_acd::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

const CALLERS: u64 = 30;
const STEPS: u64 = 1_000_000;

#[derive(Default)]
struct Model {
    /// Plain calls waiting: (priority, arrival order) per call.
    waiting: BTreeMap<CallId, (u8, u64)>,
    open_offers: BTreeMap<OfferId, AgentId>,
    closed_offers: Vec<OfferId>,
    outcomes: HashMap<OfferId, u32>,
    talking: BTreeMap<CallId, AgentId>,
    dialing: BTreeMap<CallbackId, CallId>,
    status: HashMap<AgentId, AgentStatus>,
    unreachable: HashSet<AgentId>,
    ended: HashSet<CallId>,
    callback_of: HashMap<CallbackId, CallId>,
    bridged_order: Vec<CallId>,
}

struct Sim {
    acd: Acd,
    now: Instant,
    rng: Rng,
    m: Model,
    steps: u64,
    agents: Vec<AgentId>,
}

impl Sim {
    fn drain(&mut self) {
        while let Some(a) = self.acd.poll_action() {
            self.observe(a);
        }
    }

    fn observe(&mut self, a: AcdAction) {
        let m = &mut self.m;
        match a {
            AcdAction::Offer { offer, agent, .. }
            | AcdAction::OfferCallback { offer, agent, .. } => {
                assert!(
                    !m.open_offers.values().any(|x| *x == agent),
                    "{agent} offered two calls at once"
                );
                m.open_offers.insert(offer, agent);
            }
            AcdAction::CancelOffer { offer } => {
                if m.open_offers.remove(&offer).is_some() {
                    m.closed_offers.push(offer);
                }
            }
            AcdAction::Bridge { call, agent, offer } => {
                m.open_offers.remove(&offer);
                m.talking.insert(call, agent);
            }
            AcdAction::DialCitizen { callback, call, .. } => {
                m.dialing.insert(callback, call);
            }
            AcdAction::Overflow { call, target } => {
                m.waiting.remove(&call);
                if target != OverflowTarget::Callback {
                    m.ended.insert(call);
                }
            }
            AcdAction::Announce { .. } => {}
            AcdAction::Journal(j) => self.journal(j.event),
        }
    }

    fn journal(&mut self, e: JournalEvent) {
        let m = &mut self.m;
        match e {
            JournalEvent::Offered { offer, .. } => {
                assert!(m.outcomes.insert(offer, 0).is_none());
            }
            JournalEvent::OfferEnded { offer, outcome, .. } => {
                let n = m
                    .outcomes
                    .get_mut(&offer)
                    .expect("outcome of an unknown offer");
                *n += 1;
                assert_eq!(*n, 1, "{offer} has two outcomes");
                let was_open = m.open_offers.remove(&offer).is_some();
                if was_open && outcome != OfferOutcome::Result(OfferResult::Answered) {
                    m.closed_offers.push(offer);
                }
            }
            JournalEvent::AgentState {
                agent, from, to, ..
            } => {
                if to == AgentStatus::Ringing {
                    assert_eq!(from, AgentStatus::Available, "{agent} rung from {from:?}");
                    assert!(
                        !m.unreachable.contains(&agent),
                        "{agent} rung while unreachable"
                    );
                }
                m.status.insert(agent, to);
            }
            JournalEvent::AgentReachable { agent, reachable } => {
                if reachable {
                    m.unreachable.remove(&agent);
                } else {
                    m.unreachable.insert(agent);
                }
            }
            JournalEvent::Answered { call, .. } => {
                let (prio, seq) = m.waiting.remove(&call).expect("bridged call was waiting");
                let earlier = m.waiting.iter().find(|(_, (p, s))| *p == prio && *s < seq);
                assert!(
                    earlier.is_none(),
                    "FIFO broken: {call} bridged before {earlier:?}"
                );
                m.bridged_order.push(call);
            }
            JournalEvent::Abandoned { call, .. } => {
                m.waiting.remove(&call);
                m.ended.insert(call);
            }
            JournalEvent::CallbackPromised { callback, call, .. } => {
                // A callback leaves the FIFO of callers: it may be held (closed, retry delay).
                m.waiting.remove(&call);
                m.callback_of.insert(callback, call);
            }
            JournalEvent::CallbackFailed {
                callback, retry_at, ..
            } => {
                m.dialing.remove(&callback);
                if retry_at.is_none() {
                    m.ended.insert(m.callback_of[&callback]);
                }
            }
            JournalEvent::CallbackCompleted {
                callback, agent, ..
            } => {
                m.talking.insert(m.callback_of[&callback], agent);
            }
            JournalEvent::CallEnded { call, .. } => {
                m.talking.remove(&call);
                m.ended.insert(call);
            }
            _ => {}
        }
    }

    fn step<T>(&mut self, r: Result<T, AcdError>) {
        self.steps += 1;
        let _ = r; // refusals are part of the game (late or unknown ids)
        self.drain();
    }

    fn tick(&mut self, max: Duration) {
        let target = self.now + max;
        match self.acd.poll_timeout() {
            Some(t) if t <= target => {
                self.now = self.now.max(t);
                self.acd.handle_timeout(self.now);
                self.step(Ok::<(), AcdError>(()));
                if let Some(next) = self.acd.poll_timeout() {
                    assert!(next > self.now, "deadline left in the past");
                }
            }
            _ => self.now = target,
        }
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.rng.range(0, v.len() as u64) as usize].clone())
    }

    fn random_event(&mut self, arrived: &mut u64, closing: bool) {
        let now = self.now;
        let roll = self.rng.f64();
        if roll < 0.12 && *arrived < CALLERS && !closing {
            *arrived += 1;
            let prio = if self.rng.bool(0.2) { 5 } else { 0 };
            let call = CallId(*arrived);
            self.m.waiting.insert(call, (prio, *arrived));
            let r = self
                .acd
                .handle_enqueue(now, call, &QueueId::from("q"), prio, "0600000000");
            self.step(r);
        } else if roll < 0.40 {
            let offers: Vec<OfferId> = self.m.open_offers.keys().copied().collect();
            if let Some(offer) = self.pick(&offers) {
                let result = match self.rng.range(0, 10) {
                    0..=4 => OfferResult::Answered,
                    5 | 6 => OfferResult::Busy,
                    7 => OfferResult::NotFound,
                    8 => OfferResult::Error(503),
                    _ => OfferResult::NoAnswer,
                };
                let r = self.acd.handle_offer_result(now, offer, result);
                self.step(r);
            } else {
                self.tick(Duration::from_secs(5));
            }
        } else if roll < 0.45 && !closing {
            let waiting: Vec<CallId> = self.m.waiting.keys().copied().collect();
            if let Some(call) = self.pick(&waiting) {
                let r = self.acd.handle_abandon(now, call);
                self.step(r);
            }
        } else if roll < 0.47 && !closing {
            let waiting: Vec<CallId> = self.m.waiting.keys().copied().collect();
            if let Some(call) = self.pick(&waiting) {
                let r = self.acd.handle_request_callback(now, call, "0611223344");
                self.step(r);
            }
        } else if roll < 0.62 {
            let talking: Vec<CallId> = self.m.talking.keys().copied().collect();
            if let Some(call) = self.pick(&talking) {
                let r = if self.rng.bool(0.5) {
                    self.acd.handle_call_ended(now, call)
                } else {
                    self.acd.handle_agent_hangup(now, call)
                };
                self.step(r);
            }
        } else if roll < 0.66 {
            let dialing: Vec<CallbackId> = self.m.dialing.keys().copied().collect();
            if let Some(cb) = self.pick(&dialing) {
                self.m.dialing.remove(&cb);
                let out = if closing || self.rng.bool(0.6) {
                    CallbackOutcome::Ok
                } else {
                    CallbackOutcome::Failed
                };
                let r = self.acd.handle_callback_result(now, cb, out);
                self.step(r);
            }
        } else if roll < 0.70 {
            let agents = self.agents.clone();
            let agent = self.pick(&agents).unwrap_or_else(|| AgentId::from("a1"));
            let cmd = match self.rng.range(0, 6) {
                _ if closing => AgentCommand::Resume,
                0 => AgentCommand::Pause("pause".into()),
                1 | 2 => AgentCommand::Resume,
                3 => AgentCommand::EndWrapUp,
                4 => AgentCommand::Logout,
                _ => AgentCommand::Login,
            };
            let r = self.acd.handle_agent_command(now, &agent, cmd);
            self.step(r);
            if closing {
                let r = self
                    .acd
                    .handle_agent_command(now, &agent, AgentCommand::Login);
                self.step(r);
                let r = self.acd.handle_agent_reachable(now, &agent, true);
                self.step(r);
            }
        } else if roll < 0.72 {
            let agents = self.agents.clone();
            let agent = self.pick(&agents).unwrap_or_else(|| AgentId::from("a1"));
            let reachable = closing || self.rng.bool(0.7);
            let r = self.acd.handle_agent_reachable(now, &agent, reachable);
            self.step(r);
        } else if roll < 0.73 {
            let open = closing || self.rng.bool(0.7);
            self.acd.handle_set_open(now, open);
            self.step(Ok::<(), AcdError>(()));
        } else if roll < 0.74 {
            // A result crossing our cancel: must be absorbed without a second outcome.
            let closed = self.m.closed_offers.clone();
            if let Some(offer) = self.pick(&closed) {
                let r = self
                    .acd
                    .handle_offer_result(now, offer, OfferResult::Answered);
                self.step(r);
            }
        } else {
            let max = Duration::from_millis(self.rng.range(100, 20_000));
            self.tick(max);
        }
    }
}

fn config(strategy: &str, rng: &mut Rng) -> AcdConfig {
    let wrap = ["0s", "10s"][rng.range(0, 2) as usize];
    let extra = match rng.range(0, 3) {
        0 => "max_wait = \"5min\"\noverflow = \"voicemail\"\n",
        1 => "max_wait = \"4min\"\noverflow = \"callback\"\nno_agent_overflow = \"voicemail\"\n",
        _ => "auto_pause_after = 3\n",
    };
    let text = format!(
        "[[agents]]\nid = \"a1\"\nname = \"1\"\nphone = \"p1\"\n\
         [[agents]]\nid = \"a2\"\nname = \"2\"\nphone = \"p2\"\n\
         [[agents]]\nid = \"a3\"\nname = \"3\"\nphone = \"p3\"\n\
         [queues.q]\nstrategy = \"{strategy}\"\nmembers = [\"a1\", \"a2\", \"a3\"]\n\
         ring_timeout = \"15s\"\nwrap_up = \"{wrap}\"\nannounce_every = \"2min\"\n\
         callback_retries = 1\ncallback_retry_delay = \"1min\"\n{extra}"
    );
    toml::from_str(&text).unwrap()
}

#[test]
fn fifo_no_double_offer_no_lost_call_one_outcome_per_offer() {
    let started = std::time::Instant::now();
    let mut rng = Rng::new(0x11_6e_d1_2e_c7_e0);
    let mut total = 0u64;
    let mut episodes = 0u64;
    let mut bridged = 0usize;
    let strategies = ["sequential", "round_robin", "longest_idle", "ring_all"];
    while total < STEPS {
        let strategy = strategies[(episodes % 4) as usize];
        let cfg = config(strategy, &mut rng);
        let seed = rng.next_u64();
        let mut sim = Sim {
            acd: Acd::new(cfg).unwrap(),
            now: Instant::now(),
            rng: Rng::new(seed),
            m: Model::default(),
            steps: 0,
            agents: ["a1", "a2", "a3"].map(AgentId::from).to_vec(),
        };
        let mut arrived = 0;
        // Random life until every caller arrived, then a closing phase where agents come back
        // and answer, bounded: it must empty the line.
        let mut guard = 0;
        while arrived < CALLERS || sim.rng.bool(0.8) {
            sim.random_event(&mut arrived, false);
            guard += 1;
            assert!(guard < 100_000, "episode does not progress");
        }
        let mut guard = 0;
        loop {
            // `ended` only ever holds calls 1..=arrived.
            if sim.m.ended.len() as u64 == arrived {
                break;
            }
            sim.random_event(&mut arrived, true);
            guard += 1;
            assert!(
                guard < 200_000,
                "[{strategy} seed {seed}] calls never ended: {:?}",
                (1..=arrived)
                    .filter(|c| !sim.m.ended.contains(&CallId(*c)))
                    .collect::<Vec<_>>()
            );
        }
        // Close the open offers' books: time passes, every ring times out or is answered.
        sim.tick(Duration::from_secs(3600));
        for (offer, n) in &sim.m.outcomes {
            let open = sim.m.open_offers.contains_key(offer);
            assert!(*n == 1 || open, "{offer} ended {n} times");
        }
        assert!(sim.m.waiting.is_empty());
        bridged += sim.m.bridged_order.len();
        total += sim.steps;
        episodes += 1;
    }
    println!(
        "property: {total} steps, {episodes} episodes, {bridged} callers bridged, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The target is < 30 s in debug (about 11 s measured on the dev machine); the bound here is
    // looser so that a loaded CI machine does not fail it, while a pathological slowdown does.
    assert!(started.elapsed() < Duration::from_secs(90), "far too slow");
}

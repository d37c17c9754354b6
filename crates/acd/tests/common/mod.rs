//! Virtual-time harness: drives an Acd like the engine would, stepping to its deadlines.
#![allow(dead_code)]

pub mod rng;

use ld_acd::*;
use std::time::{Duration, Instant};

pub const AGENTS3: &str = r#"
[[agents]]
id = "agent1"
name = "Agent 1"
phone = "sip:agent1@127.0.0.1:5060"
[[agents]]
id = "agent2"
name = "Agent 2"
phone = "sip:agent2@127.0.0.1:5060"
[[agents]]
id = "agent3"
name = "Agent 3"
phone = "sip:agent3@127.0.0.1:5060"
"#;

/// Three agents and one queue `accueil` with the given extra keys.
pub fn config(queue_keys: &str) -> AcdConfig {
    let text = format!(
        "{AGENTS3}\n[queues.accueil]\nmembers = [\"agent1\", \"agent2\", \"agent3\"]\n{queue_keys}\n"
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
}

pub fn q() -> QueueId {
    QueueId::from("accueil")
}
pub fn a(n: u32) -> AgentId {
    AgentId(format!("agent{n}"))
}
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub struct H {
    pub acd: Acd,
    pub t0: Instant,
    pub now: Instant,
    /// Non-journal actions not yet looked at.
    pub pending: Vec<AcdAction>,
    /// Every journal entry so far.
    pub journal: Vec<JournalEntry>,
}

impl H {
    pub fn new(queue_keys: &str) -> H {
        H::with(config(queue_keys))
    }

    pub fn with(cfg: AcdConfig) -> H {
        let t0 = Instant::now();
        H {
            acd: Acd::new(cfg).expect("valid config"),
            t0,
            now: t0,
            pending: Vec::new(),
            journal: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn drain(&mut self) {
        while let Some(a) = self.acd.poll_action() {
            match a {
                AcdAction::Journal(j) => self.journal.push(j),
                other => self.pending.push(other),
            }
        }
    }

    /// The non-journal actions since the last call.
    pub fn take(&mut self) -> Vec<AcdAction> {
        self.drain();
        std::mem::take(&mut self.pending)
    }

    /// Advances virtual time by `d`, firing every deadline on the way (bounded).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            match self.acd.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.acd.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    pub fn enqueue(&mut self, call: u64, priority: u8) {
        let now = self.now;
        self.acd
            .handle_enqueue(
                now,
                CallId(call),
                &q(),
                priority,
                &format!("+3361000{call:04}"),
            )
            .unwrap();
        self.drain();
    }

    pub fn result(&mut self, offer: OfferId, r: OfferResult) {
        let now = self.now;
        self.acd.handle_offer_result(now, offer, r).unwrap();
        self.drain();
    }

    pub fn cmd(&mut self, agent: u32, c: AgentCommand) {
        let now = self.now;
        self.acd.handle_agent_command(now, &a(agent), c).unwrap();
        self.drain();
    }

    pub fn status(&self, agent: u32) -> AgentStatus {
        self.acd.agent_status(&a(agent)).unwrap()
    }

    /// The offers among the pending actions (consumed): (offer, call, agent).
    pub fn offers(&mut self) -> Vec<(OfferId, CallId, AgentId)> {
        self.take()
            .into_iter()
            .filter_map(|a| match a {
                AcdAction::Offer {
                    offer, call, agent, ..
                } => Some((offer, call, agent)),
                AcdAction::OfferCallback {
                    offer, call, agent, ..
                } => Some((offer, call, agent)),
                _ => None,
            })
            .collect()
    }

    /// Expects exactly one new offer; returns it.
    pub fn one_offer(&mut self) -> (OfferId, CallId, AgentId) {
        let o = self.offers();
        assert_eq!(o.len(), 1, "expected one offer, got {o:?}");
        o[0].clone()
    }

    /// Journaled offer outcomes, in order: (agent, outcome).
    pub fn outcomes(&self) -> Vec<(String, OfferOutcome)> {
        self.journal
            .iter()
            .filter_map(|j| match &j.event {
                JournalEvent::OfferEnded { agent, outcome, .. } => {
                    Some((agent.0.clone(), *outcome))
                }
                _ => None,
            })
            .collect()
    }

    /// Calls bridged so far, in order: (call, agent).
    pub fn bridged(&self) -> Vec<(u64, String)> {
        self.journal
            .iter()
            .filter_map(|j| match &j.event {
                JournalEvent::Answered { call, agent, .. } => Some((call.0, agent.0.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn has(&self, pred: impl Fn(&JournalEvent) -> bool) -> bool {
        self.journal.iter().any(|j| pred(&j.event))
    }
}

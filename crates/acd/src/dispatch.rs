//! Distribution: who is rung for whom, offer results, and the timers.
//!
//! Why only the head of each queue is offered: callers must be served in arrival order (within a
//! priority). If the second caller rang one agent while the first rang another, whichever agent
//! picked up first would decide the order. So a queue rings agents for its first eligible entry
//! only; the next caller's turn starts when the first is bridged, leaves or becomes a held
//! callback. Ringing is seconds, talking minutes: the cost in throughput is small, the
//! order is guaranteed.

use crate::acd::{Acd, AgentState, EntryKind, Offer};
use crate::config::Strategy;
use crate::event::{
    AcdAction, CancelReason, JournalEvent, OfferOutcome, OfferResult, OverflowReason, StateCause,
};
use crate::{AcdError, OfferId};
use std::time::Instant;

/// The pause reason journaled and shown when an agent is paused for not answering.
pub const AUTO_PAUSE_REASON: &str = "absence de réponse";

impl Acd {
    /// Makes every offer that can be made now. Called after every input.
    pub(crate) fn dispatch(&mut self, now: Instant) {
        // Each pass makes at least one offer (an agent becomes ringing) or stops, so the loop
        // ends within (number of agents + 1) passes.
        loop {
            let mut heads: Vec<(std::cmp::Reverse<u8>, u64, usize)> = Vec::new();
            for (qi, q) in self.queues.iter().enumerate() {
                if let Some(e) = q.entries.iter().find(|e| self.eligible(e, now)) {
                    heads.push((e.key().0, e.key().1, qi));
                }
            }
            // Across queues sharing agents: the better entry (priority, then arrival) first.
            heads.sort_unstable();
            let mut progress = false;
            for (_, _, qi) in heads {
                progress |= self.serve_head(now, qi);
            }
            if !progress {
                break;
            }
        }
    }

    /// May this entry be offered now? Callbacks wait for opening hours and their retry time.
    fn eligible(&self, e: &crate::acd::Entry, now: Instant) -> bool {
        match &e.kind {
            EntryKind::Call { .. } => true,
            EntryKind::Callback(cb) => self.open && cb.not_before.is_none_or(|t| t <= now),
        }
    }

    /// Offers the head of queue `qi` to the agent(s) its strategy picks. True if it rang one.
    fn serve_head(&mut self, now: Instant, qi: usize) -> bool {
        let Some(pos) = self.queues[qi]
            .entries
            .iter()
            .position(|e| self.eligible(e, now))
        else {
            return false;
        };
        let strategy = self.queues[qi].cfg.strategy;
        let retry = self.queues[qi].cfg.retry;
        if strategy != Strategy::RingAll && !self.queues[qi].entries[pos].offers.is_empty() {
            return false; // one agent at a time
        }
        let mut candidates = self.candidates(qi, pos);
        if candidates.is_empty() {
            let q = &self.queues[qi];
            let e = &q.entries[pos];
            let round_over = e.offers.is_empty()
                && e.round_reset_at.is_none()
                && !e.tried.is_empty()
                && (e.tried.len() >= q.members.len()
                    || e.tried.iter().any(|&ai| self.agents[ai].offerable()));
            if !round_over {
                return false;
            }
            // Every member was tried (or every one free now was): start again from the first,
            // after a pause, so that a phone answering "busy" at once is not rung in a loop.
            let e = &mut self.queues[qi].entries[pos];
            if retry.is_zero() {
                e.tried.clear();
                candidates = self.candidates(qi, pos);
            } else {
                e.round_reset_at = Some(now + retry);
                return false;
            }
        }
        let picked: Vec<usize> = match strategy {
            Strategy::Sequential => candidates.first().copied().into_iter().collect(),
            Strategy::RingAll => candidates.clone(),
            Strategy::LongestIdle => candidates
                .iter()
                .copied()
                // `None` (available since start) sorts first: longest idle of all.
                .min_by_key(|&ai| self.agents[ai].idle_since)
                .into_iter()
                .collect(),
            Strategy::RoundRobin => {
                let q = &self.queues[qi];
                let n = q.members.len();
                let start = q.rr_next % n.max(1);
                (0..n)
                    .map(|i| q.members[(start + i) % n])
                    .find(|ai| candidates.contains(ai))
                    .into_iter()
                    .collect()
            }
        };
        if strategy == Strategy::RoundRobin {
            if let Some(&ai) = picked.first() {
                let q = &mut self.queues[qi];
                if let Some(m) = q.members.iter().position(|&x| x == ai) {
                    q.rr_next = m + 1;
                }
            }
        }
        let made = !picked.is_empty();
        for ai in picked {
            self.start_offer(now, qi, pos, ai);
        }
        made
    }

    /// Members that may be rung for the entry: free, reachable, not yet tried this round, in
    /// the configured member order.
    fn candidates(&self, qi: usize, pos: usize) -> Vec<usize> {
        let q = &self.queues[qi];
        let e = &q.entries[pos];
        q.members
            .iter()
            .copied()
            .filter(|ai| self.agents[*ai].offerable() && !e.tried.contains(ai))
            .collect()
    }

    fn start_offer(&mut self, now: Instant, qi: usize, pos: usize, ai: usize) {
        let offer = OfferId(self.next_offer);
        self.next_offer += 1;
        let q = &mut self.queues[qi];
        let deadline = now + q.cfg.ring_timeout;
        let queue = q.id.clone();
        let e = &mut q.entries[pos];
        e.offers.push(offer);
        e.tried.push(ai);
        let call = e.call;
        let callback = e.callback().map(|cb| (cb.id, cb.number.clone()));
        self.offers.insert(
            offer,
            Offer {
                call,
                queue: qi,
                agent: ai,
                deadline,
            },
        );
        self.set_agent_state(now, ai, AgentState::Ringing(offer), StateCause::Offered);
        let agent = self.agents[ai].id.clone();
        let phone = self.agents[ai].phone.clone();
        self.journal(
            now,
            JournalEvent::Offered {
                offer,
                call,
                agent: agent.clone(),
                callback: callback.as_ref().map(|c| c.0),
            },
        );
        self.actions.push_back(match callback {
            None => AcdAction::Offer {
                offer,
                call,
                queue,
                agent,
                phone,
            },
            Some((callback, number)) => AcdAction::OfferCallback {
                offer,
                callback,
                call,
                queue,
                agent,
                phone,
                number,
            },
        });
    }

    /// Closes an open offer: journals its one outcome and takes it off its entry. The agent's
    /// state is left to the caller, which knows what comes next.
    pub(crate) fn close_offer(
        &mut self,
        now: Instant,
        offer: OfferId,
        outcome: OfferOutcome,
    ) -> Option<Offer> {
        let o = self.offers.remove(&offer)?;
        if let Some((qi, pos)) = self.find_entry(o.call) {
            self.queues[qi].entries[pos].offers.retain(|x| *x != offer);
        }
        let agent = self.agents[o.agent].id.clone();
        self.journal(
            now,
            JournalEvent::OfferEnded {
                offer,
                call: o.call,
                agent,
                outcome,
            },
        );
        Some(o)
    }

    /// Cancels an open offer on the Acd's initiative; the agent is free again.
    pub(crate) fn cancel_offer(&mut self, now: Instant, offer: OfferId, reason: CancelReason) {
        if let Some(o) = self.close_offer(now, offer, OfferOutcome::Cancelled(reason)) {
            self.actions.push_back(AcdAction::CancelOffer { offer });
            if self.agents[o.agent].state == AgentState::Ringing(offer) {
                self.set_agent_state(now, o.agent, AgentState::Available, StateCause::OfferEnded);
            }
        }
    }

    /// Cancels every open offer of an entry but `keep`.
    pub(crate) fn withdraw_offers(
        &mut self,
        now: Instant,
        qi: usize,
        pos: usize,
        reason: CancelReason,
        keep: Option<OfferId>,
    ) {
        let offers = self.queues[qi].entries[pos].offers.clone();
        for offer in offers.into_iter().filter(|o| Some(*o) != keep) {
            self.cancel_offer(now, offer, reason);
        }
    }

    /// The edge reports how the agent leg of an offer ended.
    pub fn handle_offer_result(
        &mut self,
        now: Instant,
        offer: OfferId,
        result: OfferResult,
    ) -> Result<(), AcdError> {
        if !self.offers.contains_key(&offer) {
            if offer.0 > 0 && offer.0 < self.next_offer {
                // Ours, already closed (timed out or cancelled) when the result crossed our
                // cancel: its one outcome is journaled. An answer must still be hung up.
                self.journal(
                    now,
                    JournalEvent::Note {
                        text: format!("late result {result:?} for closed {offer}"),
                    },
                );
                if result == OfferResult::Answered {
                    self.actions.push_back(AcdAction::CancelOffer { offer });
                }
                return Ok(());
            }
            return Err(self.refuse(now, AcdError::UnknownOffer(offer)));
        }
        if result == OfferResult::Answered {
            self.answered(now, offer);
        } else {
            self.unanswered(now, offer, result);
        }
        self.dispatch(now);
        Ok(())
    }

    fn answered(&mut self, now: Instant, offer: OfferId) {
        let Some(o) = self.close_offer(now, offer, OfferOutcome::Result(OfferResult::Answered))
        else {
            return;
        };
        self.agents[o.agent].unanswered = 0;
        let Some((qi, pos)) = self.find_entry(o.call) else {
            // Cannot happen: an entry's offers are closed when it leaves. Free the agent anyway.
            self.actions.push_back(AcdAction::CancelOffer { offer });
            self.set_agent_state(now, o.agent, AgentState::Available, StateCause::OfferEnded);
            return;
        };
        self.withdraw_offers(now, qi, pos, CancelReason::AnsweredElsewhere, None);
        let mut entry = self.queues[qi].entries.remove(pos);
        self.queued.remove(&entry.call);
        let call = entry.call;
        let agent = self.agents[o.agent].id.clone();
        self.set_agent_state(now, o.agent, AgentState::OnCall(call), StateCause::Answered);
        match &mut entry.kind {
            EntryKind::Call { .. } => {
                let wait = now.saturating_duration_since(entry.arrived);
                let q = &mut self.queues[qi];
                q.history.record_wait(wait, false);
                q.classic.update(wait);
                let queue = q.id.clone();
                self.actions.push_back(AcdAction::Bridge {
                    call,
                    agent: agent.clone(),
                    offer,
                });
                self.journal(
                    now,
                    JournalEvent::Answered {
                        call,
                        agent,
                        queue,
                        wait,
                    },
                );
                self.active.insert(
                    call,
                    crate::acd::Active {
                        agent: o.agent,
                        queue: qi,
                        talk_since: Some(now),
                        callback: None,
                    },
                );
            }
            EntryKind::Callback(cb) => {
                cb.attempts += 1;
                let (id, number, attempt) = (cb.id, cb.number.clone(), cb.attempts);
                self.actions.push_back(AcdAction::DialCitizen {
                    callback: id,
                    call,
                    agent: agent.clone(),
                    number: number.clone(),
                });
                self.journal(
                    now,
                    JournalEvent::CallbackPlaced {
                        callback: id,
                        agent,
                        number,
                        attempt,
                    },
                );
                self.active.insert(
                    call,
                    crate::acd::Active {
                        agent: o.agent,
                        queue: qi,
                        talk_since: None,
                        callback: Some(entry),
                    },
                );
            }
        }
    }

    fn unanswered(&mut self, now: Instant, offer: OfferId, result: OfferResult) {
        let Some(o) = self.close_offer(now, offer, OfferOutcome::Result(result)) else {
            return;
        };
        let limit = self.queues[o.queue].cfg.auto_pause_after;
        let agent = &mut self.agents[o.agent];
        // Busy, unreachable or silent: in every case this agent did not take the call.
        agent.unanswered += 1;
        let auto_pause = limit.is_some_and(|n| agent.unanswered >= n);
        if agent.state != AgentState::Ringing(offer) {
            return;
        }
        if auto_pause {
            self.agents[o.agent].unanswered = 0;
            self.set_agent_state(
                now,
                o.agent,
                AgentState::Paused(AUTO_PAUSE_REASON.to_string()),
                StateCause::AutoPause,
            );
        } else {
            self.set_agent_state(now, o.agent, AgentState::Available, StateCause::OfferEnded);
        }
    }

    /// The earliest deadline the Acd waits for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Plain loops: this runs after every input, and iterator adaptors are slow in the debug
        // builds the tests use.
        let mut min: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                if min.is_none_or(|m| t < m) {
                    min = Some(t);
                }
            }
        };
        for o in self.offers.values() {
            consider(Some(o.deadline));
        }
        for a in &self.agents {
            if let AgentState::WrapUp { until } = a.state {
                consider(Some(until));
            }
        }
        for q in &self.queues {
            for e in &q.entries {
                consider(e.round_reset_at);
                match &e.kind {
                    EntryKind::Call {
                        next_announce,
                        max_wait_at,
                    } => {
                        consider(*next_announce);
                        consider(*max_wait_at);
                    }
                    // A held callback's retry time only matters while open.
                    EntryKind::Callback(cb) if self.open => consider(cb.not_before),
                    EntryKind::Callback(_) => {}
                }
            }
        }
        min
    }

    /// Fires every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Ring timeouts: withdraw the offer (the edge cancels the INVITE) and go on at once.
        let expired: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for offer in expired {
            self.actions.push_back(AcdAction::CancelOffer { offer });
            self.unanswered(now, offer, OfferResult::NoAnswer);
        }
        for ai in 0..self.agents.len() {
            if matches!(self.agents[ai].state, AgentState::WrapUp { until } if until <= now) {
                self.set_agent_state(now, ai, AgentState::Available, StateCause::WrapUpElapsed);
            }
        }
        let mut overflows = Vec::new();
        let mut announces = Vec::new();
        for (qi, q) in self.queues.iter_mut().enumerate() {
            let every = q.cfg.announce_every;
            for (pos, e) in q.entries.iter_mut().enumerate() {
                if e.round_reset_at.is_some_and(|t| t <= now) {
                    e.round_reset_at = None;
                    e.tried.clear();
                }
                match &mut e.kind {
                    EntryKind::Call {
                        next_announce,
                        max_wait_at,
                    } => {
                        if max_wait_at.is_some_and(|t| t <= now) {
                            *max_wait_at = None;
                            overflows.push((qi, e.call));
                        }
                        if let Some(t) = next_announce.filter(|t| *t <= now) {
                            // Never in a burst: after a long gap, one announcement then the rhythm.
                            let mut next = t + every;
                            if next <= now {
                                next = now + every;
                            }
                            *next_announce = Some(next);
                            announces.push((qi, pos + 1, e.call));
                        }
                    }
                    EntryKind::Callback(cb) => {
                        if self.open && cb.not_before.is_some_and(|t| t <= now) {
                            cb.not_before = None;
                        }
                    }
                }
            }
        }
        for (qi, position, call) in announces {
            let ewt = self.estimate_at(qi, position);
            self.actions.push_back(AcdAction::Announce {
                call,
                position,
                ewt,
            });
        }
        for (qi, call) in overflows {
            if let Some(target) = self.queues[qi].cfg.overflow.clone() {
                self.overflow(now, call, target, OverflowReason::MaxWait);
            }
        }
        self.dispatch(now);
    }
}

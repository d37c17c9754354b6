//! Callbacks that keep the caller's place, opening hours, and overflow.

use crate::acd::{Acd, Active, AgentState, CallbackInfo, EntryKind};
use crate::config::OverflowTarget;
use crate::event::{
    AcdAction, CallbackOutcome, CancelReason, JournalEvent, OverflowReason, StateCause,
};
use crate::{AcdError, CallId, CallbackId, QueueId};
use std::time::Instant;

impl Acd {
    /// A callback asked while closed or from outside the queue: joins the end of the line
    /// (for its priority) as a callback to `number`.
    pub fn handle_enqueue_callback(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &QueueId,
        priority: u8,
        number: &str,
    ) -> Result<CallbackId, AcdError> {
        let qi = self.queue(queue).map_err(|e| self.refuse(now, e))?;
        if self.queued.contains_key(&call) || self.active.contains_key(&call) {
            return Err(self.refuse(now, AcdError::DuplicateCall(call)));
        }
        if number.trim().is_empty() {
            return Err(self.refuse(now, AcdError::InvalidState("no number to call back".into())));
        }
        let id = self.new_callback_id(call);
        let info = CallbackInfo {
            id,
            number: number.to_string(),
            attempts: 0,
            not_before: None,
        };
        let entry = self.new_entry(
            now,
            call,
            priority,
            number.to_string(),
            EntryKind::Callback(info),
        );
        let position = self.insert_entry(qi, entry);
        let queue = queue.clone();
        self.journal(
            now,
            JournalEvent::Arrived {
                call,
                queue: queue.clone(),
                priority,
                caller: number.to_string(),
                position,
            },
        );
        self.journal(
            now,
            JournalEvent::CallbackPromised {
                callback: id,
                call,
                queue,
                number: number.to_string(),
                position,
            },
        );
        self.dispatch(now);
        Ok(id)
    }

    // ----- callbacks -----

    /// The waiting caller asks to be called back at `number`: their entry becomes a callback
    /// at the same place in line.
    pub fn handle_request_callback(
        &mut self,
        now: Instant,
        call: CallId,
        number: &str,
    ) -> Result<CallbackId, AcdError> {
        let Some((qi, pos)) = self.find_entry(call) else {
            return Err(self.refuse(now, AcdError::UnknownCall(call)));
        };
        if self.queues[qi].entries[pos].callback().is_some() {
            return Err(self.refuse(
                now,
                AcdError::InvalidState(format!("{call} is already a callback")),
            ));
        }
        if number.trim().is_empty() {
            return Err(self.refuse(now, AcdError::InvalidState("no number to call back".into())));
        }
        let id = self.make_callback(now, qi, pos, number.to_string());
        self.dispatch(now);
        Ok(id)
    }

    /// Turns a waiting call into a callback in place.
    pub(crate) fn make_callback(
        &mut self,
        now: Instant,
        qi: usize,
        pos: usize,
        number: String,
    ) -> CallbackId {
        self.withdraw_offers(now, qi, pos, CancelReason::CallerLeft, None);
        let call = self.queues[qi].entries[pos].call;
        let id = self.new_callback_id(call);
        let entry = &mut self.queues[qi].entries[pos];
        let wait = now.saturating_duration_since(entry.arrived);
        entry.kind = EntryKind::Callback(CallbackInfo {
            id,
            number: number.clone(),
            attempts: 0,
            not_before: None,
        });
        entry.tried.clear();
        entry.round_reset_at = None;
        // They stopped waiting without giving up: a censored patience.
        self.queues[qi].history.record_wait(wait, false);
        let queue = self.queues[qi].id.clone();
        self.journal(
            now,
            JournalEvent::CallbackPromised {
                callback: id,
                call,
                queue,
                number,
                position: pos + 1,
            },
        );
        id
    }

    /// How dialing the citizen went.
    pub fn handle_callback_result(
        &mut self,
        now: Instant,
        callback: CallbackId,
        outcome: CallbackOutcome,
    ) -> Result<(), AcdError> {
        let call = self.callbacks.get(&callback).copied();
        let dialing = call.filter(|c| {
            self.active
                .get(c)
                .is_some_and(|a| a.talk_since.is_none() && a.callback.is_some())
        });
        let Some(call) = dialing else {
            return Err(self.refuse(now, AcdError::UnknownCallback(callback)));
        };
        match outcome {
            CallbackOutcome::Ok => {
                let Some(active) = self.active.get_mut(&call) else {
                    return Err(self.refuse(now, AcdError::UnknownCallback(callback)));
                };
                active.talk_since = Some(now);
                let attempt = active
                    .callback
                    .as_ref()
                    .and_then(|e| e.callback())
                    .map_or(0, |cb| cb.attempts);
                let agent = self.agents[active.agent].id.clone();
                self.journal(
                    now,
                    JournalEvent::CallbackCompleted {
                        callback,
                        agent,
                        attempt,
                    },
                );
            }
            CallbackOutcome::Failed => {
                if let Some(active) = self.active.remove(&call) {
                    self.fail_callback(now, active);
                }
                self.dispatch(now);
            }
        }
        Ok(())
    }

    /// A callback attempt failed: the agent is free again and the callback goes back to its
    /// place in line after the retry delay, or is given up once the retries are spent.
    pub(crate) fn fail_callback(&mut self, now: Instant, active: Active) {
        self.set_agent_state(
            now,
            active.agent,
            AgentState::Available,
            StateCause::CallEnded,
        );
        let Some(mut entry) = active.callback else {
            return;
        };
        let cfg = &self.queues[active.queue].cfg;
        let (retries, delay) = (cfg.callback_retries, cfg.callback_retry_delay);
        let EntryKind::Callback(cb) = &mut entry.kind else {
            return;
        };
        let (id, attempt) = (cb.id, cb.attempts);
        if attempt <= retries {
            let at = now + delay;
            cb.not_before = Some(at);
            entry.offers.clear();
            entry.tried.clear();
            entry.round_reset_at = None;
            self.insert_entry(active.queue, entry);
            self.journal(
                now,
                JournalEvent::CallbackFailed {
                    callback: id,
                    attempt,
                    retry_at: Some(at),
                },
            );
        } else {
            self.callbacks.remove(&id);
            self.journal(
                now,
                JournalEvent::CallbackFailed {
                    callback: id,
                    attempt,
                    retry_at: None,
                },
            );
        }
    }

    /// Opening hours, from the dialplan's calendar: callbacks are only placed while open.
    pub fn handle_set_open(&mut self, now: Instant, open: bool) {
        if self.open != open {
            self.open = open;
            self.journal(now, JournalEvent::OpenChanged { open });
        }
        self.dispatch(now);
    }

    // ----- overflow -----

    /// A queue is staffed while one member is logged in and reachable (paused included: a
    /// pause is short, and dumping the line for a coffee would be worse than waiting).
    pub(crate) fn staffed(&self, qi: usize) -> bool {
        self.queues[qi]
            .members
            .iter()
            .any(|&ai| self.agents[ai].staffed())
    }

    /// Sends a waiting call to `target`. A callback target keeps the caller's place.
    pub(crate) fn overflow(
        &mut self,
        now: Instant,
        call: CallId,
        target: OverflowTarget,
        reason: OverflowReason,
    ) {
        let Some((qi, pos)) = self.find_entry(call) else {
            return;
        };
        let entry = &self.queues[qi].entries[pos];
        let wait = now.saturating_duration_since(entry.arrived);
        let mut target = target;
        if target == OverflowTarget::Callback && entry.caller.trim().is_empty() {
            // A withheld number cannot be called back: tell the caller rather than promise.
            self.journal(
                now,
                JournalEvent::Note {
                    text: format!(
                        "{call}: no caller number for a callback, closing message instead"
                    ),
                },
            );
            target = OverflowTarget::ClosingMessage;
        }
        let queue = self.queues[qi].id.clone();
        self.journal(
            now,
            JournalEvent::Overflowed {
                call,
                queue,
                target: target.clone(),
                reason,
                wait,
            },
        );
        self.actions.push_back(AcdAction::Overflow {
            call,
            target: target.clone(),
        });
        if target == OverflowTarget::Callback {
            let number = self.queues[qi].entries[pos].caller.clone();
            self.make_callback(now, qi, pos, number);
        } else {
            self.remove_entry(now, qi, pos);
            self.queues[qi].history.record_wait(wait, false);
        }
    }

    /// When the last member of a queue logs out or becomes unreachable, its waiting callers go
    /// to the no-agent target instead of waiting for nobody.
    pub(crate) fn overflow_unstaffed(&mut self, now: Instant) {
        for qi in 0..self.queues.len() {
            let Some(target) = self.queues[qi].cfg.no_agent_overflow.clone() else {
                continue;
            };
            if self.staffed(qi) {
                continue;
            }
            let calls: Vec<CallId> = self.queues[qi]
                .entries
                .iter()
                .filter(|e| e.callback().is_none())
                .map(|e| e.call)
                .collect();
            for call in calls {
                self.overflow(now, call, target.clone(), OverflowReason::NoAgent);
            }
        }
    }
}

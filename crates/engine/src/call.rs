//! The state machine of one inbound call leg.

use std::collections::VecDeque;
use std::time::Instant;

use ld_dialplan::{Ivr, IvrAction, IvrEvent, PromptItem};

/// What the SIP edge saw happen to the call's dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipIn {
    /// The ACK for our 2xx: the dialog is confirmed (RFC 3261 §13.3.1.4).
    Ack,
    /// The caller sent CANCEL before we answered; the edge already answered
    /// 487 to the INVITE (RFC 3261 §9.2).
    Cancel,
    /// The caller sent BYE (RFC 3261 §15.1.2).
    Bye,
    /// The dialog died without a BYE: no ACK for our 2xx within 64*T1
    /// (RFC 3261 §13.3.1.4), or a transport failure.
    Failed,
}

/// What the media edge reports about this call's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaIn {
    /// The playlist asked for by the last [`Action::Play`] ended.
    PlaybackFinished,
}

/// What the edge must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send 183 Session Progress carrying our SDP answer, so the caller hears
    /// early media before any answer (RFC 3261 §13.3.1.1, RFC 3960 §3).
    Progress,
    /// Play these prompts on the call's stream, replacing what plays.
    Play { prompts: Vec<PromptItem> },
    /// Send 200 OK with our SDP answer (RFC 3261 §13.3.1.4).
    Answer,
    /// Send this final non-2xx to the INVITE (RFC 3261 §13.3.1.3).
    Reject { status: u16 },
    /// Send BYE in the confirmed dialog (RFC 3261 §15.1.1).
    Bye,
    /// The call is over; write this record. Always the last action, always once.
    Finished(CallSummary),
}

/// How a call ended, as the record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// We answered it (whoever hung up afterwards).
    Answered,
    /// The caller left before any answer.
    Abandoned,
    /// We ended it before answer with a final non-2xx (closed, no entry…).
    Rejected,
    /// It broke: no ACK, transport failure.
    Failed,
    /// The daemon was shutting down.
    Shutdown,
}

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupSide {
    Caller,
    System,
    Unknown,
}

/// The facts of one finished call, in the engine's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    pub arrived_at: Instant,
    pub early_media_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    pub ended_at: Instant,
    pub outcome: Outcome,
    pub hangup_by: HangupSide,
    /// Our final response when the call was not answered.
    pub final_status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE received; only 100 Trying went out.
    Trying,
    /// 183 with SDP sent: early media may flow.
    Early,
    /// 200 sent, waiting for its ACK.
    Answering,
    /// ACK received: the dialog is confirmed.
    Answered,
    /// Finished was emitted; nothing more happens.
    Ended,
}

/// One inbound call: the IVR interpreter plus the SIP state of the leg.
pub struct Call {
    ivr: Ivr,
    state: State,
    actions: VecDeque<Action>,
    arrived_at: Instant,
    early_media_at: Option<Instant>,
    answered_at: Option<Instant>,
    /// A non-early play asked for before answer: answer first, then play it.
    play_after_answer: Option<Vec<PromptItem>>,
}

impl Call {
    /// A call that just arrived (its INVITE was accepted for processing).
    pub fn new(now: Instant, ivr: Ivr) -> Call {
        let mut call = Call {
            ivr,
            state: State::Trying,
            actions: VecDeque::new(),
            arrived_at: now,
            early_media_at: None,
            answered_at: None,
            play_after_answer: None,
        };
        call.drain_ivr(now);
        call
    }

    pub fn handle_sip(&mut self, now: Instant, input: SipIn) {
        if self.state == State::Ended {
            return;
        }
        match input {
            SipIn::Ack => {
                if self.state == State::Answering {
                    self.state = State::Answered;
                    if let Some(prompts) = self.play_after_answer.take() {
                        self.actions.push_back(Action::Play { prompts });
                    }
                    self.ivr.handle_event(now, IvrEvent::Answered);
                    self.drain_ivr(now);
                }
            }
            SipIn::Cancel => {
                // A CANCEL after our 2xx has no effect on the dialog
                // (RFC 3261 §9.2): the caller must send BYE instead.
                if matches!(self.state, State::Trying | State::Early) {
                    self.finish(now, Outcome::Abandoned, HangupSide::Caller, Some(487));
                }
            }
            SipIn::Bye => {
                let outcome = if self.answered_at.is_some() {
                    Outcome::Answered
                } else {
                    Outcome::Abandoned
                };
                self.finish(now, outcome, HangupSide::Caller, None);
            }
            SipIn::Failed => {
                let outcome = if self.state == State::Answered {
                    Outcome::Answered
                } else {
                    Outcome::Failed
                };
                self.finish(now, outcome, HangupSide::Unknown, None);
            }
        }
    }

    pub fn handle_media(&mut self, now: Instant, input: MediaIn) {
        if self.state == State::Ended {
            return;
        }
        match input {
            MediaIn::PlaybackFinished => {
                self.ivr.handle_event(now, IvrEvent::PlaybackFinished);
                self.drain_ivr(now);
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        if self.ivr.poll_timeout().is_some_and(|t| t <= now) {
            self.ivr.handle_timeout(now);
            self.drain_ivr(now);
        }
    }

    /// The daemon stops: end the call politely. Before answer, 503 tells the
    /// PBX that we cannot serve it now (RFC 3261 §21.5.4); after, a BYE.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        self.end_by_system(now, Outcome::Shutdown, Some(503));
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Ended {
            return None;
        }
        self.ivr.poll_timeout()
    }

    /// True once [`Action::Finished`] has been queued.
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    pub fn is_answered(&self) -> bool {
        self.answered_at.is_some()
    }

    fn drain_ivr(&mut self, now: Instant) {
        while self.state != State::Ended {
            let Some(action) = self.ivr.poll_action() else {
                break;
            };
            match action {
                IvrAction::Play { prompts, early } => self.play(now, prompts, early),
                IvrAction::Answer => self.answer(now),
                IvrAction::Hangup { status } => {
                    let outcome = if self.answered_at.is_some() {
                        Outcome::Answered
                    } else {
                        Outcome::Rejected
                    };
                    self.end_by_system(now, outcome, status.or(Some(480)));
                }
            }
        }
        // An interpreter that stops asking for anything while the call is up
        // would leave the caller in silence forever: end the call instead.
        if self.state != State::Ended && self.ivr.is_finished() {
            let outcome = if self.answered_at.is_some() {
                Outcome::Answered
            } else {
                Outcome::Rejected
            };
            self.end_by_system(now, outcome, Some(480));
        }
    }

    fn play(&mut self, now: Instant, prompts: Vec<PromptItem>, early: bool) {
        match self.state {
            State::Trying if early => {
                self.actions.push_back(Action::Progress);
                self.early_media_at = Some(now);
                self.state = State::Early;
                self.actions.push_back(Action::Play { prompts });
            }
            State::Early if early => self.actions.push_back(Action::Play { prompts }),
            State::Trying | State::Early => {
                // Media that needs an answered call: answer, then play once
                // the dialog is confirmed.
                self.play_after_answer = Some(prompts);
                self.answer(now);
            }
            State::Answering => self.play_after_answer = Some(prompts),
            State::Answered => self.actions.push_back(Action::Play { prompts }),
            State::Ended => {}
        }
    }

    fn answer(&mut self, now: Instant) {
        if matches!(self.state, State::Trying | State::Early) {
            self.actions.push_back(Action::Answer);
            self.answered_at = Some(now);
            self.state = State::Answering;
        }
    }

    fn end_by_system(&mut self, now: Instant, outcome: Outcome, status: Option<u16>) {
        match self.state {
            State::Trying | State::Early => {
                let status = status.unwrap_or(480);
                self.actions.push_back(Action::Reject { status });
                self.finish(now, outcome, HangupSide::System, Some(status));
            }
            State::Answering | State::Answered => {
                self.actions.push_back(Action::Bye);
                self.finish(now, outcome, HangupSide::System, None);
            }
            State::Ended => {}
        }
    }

    fn finish(
        &mut self,
        now: Instant,
        outcome: Outcome,
        hangup_by: HangupSide,
        final_status: Option<u16>,
    ) {
        self.state = State::Ended;
        let final_status = if self.answered_at.is_some() {
            None
        } else {
            final_status
        };
        self.actions.push_back(Action::Finished(CallSummary {
            arrived_at: self.arrived_at,
            early_media_at: self.early_media_at,
            answered_at: self.answered_at,
            ended_at: now,
            outcome,
            hangup_by,
            final_status,
        }));
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;

//! The state machine of one inbound call leg.

use std::collections::VecDeque;
use std::time::Instant;

use std::time::Duration;

use ld_dialplan::{Ivr, IvrAction, IvrEvent, PromptItem, QueueResult, TransferMethod};

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
    /// The caller pressed a key (RFC 4733, SIP INFO or in-band).
    Dtmf(char),
}

/// How a transfer asked by [`Action::Transfer`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferIn {
    /// The caller's side accepted our REFER (RFC 3515 §2.4.2): the call
    /// left us.
    Referred,
    /// We called the partner (a new INVITE) and bridged the caller to them.
    Connected,
    /// The partner could not be reached, or the REFER was refused.
    Failed,
    /// The partner hung up the bridged call.
    PartnerHungUp,
}

/// What the queue (the ACD, through the edge) says about a queued call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueIn {
    /// An agent answered and the media is bridged.
    Connected { agent: String },
    /// The queue gives the call back (overflow, closed, no such queue).
    Returned,
    /// Play this information now (position, estimated wait), then go back to
    /// the hold music.
    Announce { prompts: Vec<PromptItem> },
    /// The agent hung up the bridged call.
    AgentHungUp,
    /// The caller will be called back keeping their place: play these
    /// words, then hang up.
    CallbackPromised { prompts: Vec<PromptItem> },
    /// The agent transferred the call (REFER from their phone): call the
    /// partner and bridge the caller to them, with music meanwhile.
    AgentTransfer { target: String },
}

/// What the edge must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send 183 Session Progress carrying our SDP answer, so the caller hears
    /// early media before any answer (RFC 3261 §13.3.1.1, RFC 3960 §3).
    Progress,
    /// Play these prompts on the call's stream, replacing what plays.
    Play { prompts: Vec<PromptItem> },
    /// Stop what plays, without a `PlaybackFinished` to expect (barge-in).
    StopPlayback,
    /// Loop the hold music until told otherwise.
    PlayHold,
    /// Hand the (answered) call to this ACD queue. `priority`: higher is
    /// served first (the plan sets the variable `priority`, e.g. for
    /// allowlisted callers); 0 by default.
    Enqueue { queue: String, priority: u8 },
    /// The caller left while queued: take the call out of the queue.
    LeaveQueue,
    /// Transfer the call; report the outcome with `handle_transfer`.
    Transfer {
        target: String,
        method: TransferMethod,
    },
    /// Record the caller's message for at most `max`; report its end with
    /// `handle_media(MediaIn::PlaybackFinished)`-like `handle_record_finished`.
    Record { max: Duration },
    /// The caller accepted a callback: the ACD keeps their place.
    OfferCallback,
    /// The agent hung up first and the plan goes on with the caller (a post-call survey):
    /// stop relaying the agent's side into the caller's stream, so prompts play again.
    Unbridge,
    /// While waiting the caller asked to be called back, keeping their
    /// place: at the number they call from (`None`, key 2) or at the one
    /// they typed (key 3, then the number and #). Answer with
    /// `QueueIn::CallbackPromised` when the queue took it.
    RequestCallback { number: Option<String> },
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
    /// The call went to another number (transfer).
    Transferred,
    /// The caller will be called back, keeping their place.
    CallbackPromised,
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
    Agent,
    /// The number the call was transferred to.
    Partner,
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
    /// The queue the call went to, if any.
    pub queue: Option<String>,
    pub queued_at: Option<Instant>,
    /// The agent who took the call, and when the bridge started.
    pub agent: Option<String>,
    pub connected_at: Option<Instant>,
    /// The dialplan nodes the call went through.
    pub path: Vec<String>,
    /// What the plan recorded (consent…).
    pub variables: std::collections::BTreeMap<String, String>,
    /// The number the call was transferred to, if it was.
    pub transferred_to: Option<String>,
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
    /// Media or queueing asked for before answer: answer first, then do it.
    after_answer: Option<Action>,
    /// Queued since (kept for the record).
    queued_at: Option<Instant>,
    /// Waiting in the queue right now.
    waiting: bool,
    queue: Option<String>,
    /// An announcement plays over the hold music.
    announcing: bool,
    /// The agent who took the call (kept for the record after they hang up).
    agent: Option<String>,
    /// Handed to that agent right now (bridged, or being transferred by them): the IVR
    /// does not hear the caller's keys.
    talking: bool,
    connected_at: Option<Instant>,
    /// A callback was promised (the record says so).
    callback_promised: bool,
    /// The call ends once the words that play now are over.
    closing_after_play: bool,
    /// The target of the transfer in progress or done.
    transfer_target: Option<String>,
    /// Bridged to the transfer's partner (B2BUA).
    with_partner: bool,
    /// The callback number being typed while waiting.
    typed_number: Option<String>,
}

/// While waiting: be called back at the number you call from.
pub const CALLBACK_KEY: char = '2';
/// While waiting: be called back at a number you type, then #.
pub const CALLBACK_OTHER_NUMBER_KEY: char = '3';
/// "Tapez le numéro où vous rappeler, suivi de la touche dièse."
pub const CALLBACK_NUMBER_PROMPT: &str = "fr/rappel-numero";
const MIN_CALLBACK_DIGITS: usize = 4;
/// E.164 allows 15 digits.
const MAX_CALLBACK_DIGITS: usize = 15;

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
            after_answer: None,
            queued_at: None,
            waiting: false,
            queue: None,
            announcing: false,
            agent: None,
            talking: false,
            connected_at: None,
            callback_promised: false,
            closing_after_play: false,
            transfer_target: None,
            with_partner: false,
            typed_number: None,
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
                    if let Some(action) = self.after_answer.take() {
                        self.start(now, action);
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
                // Answered by the IVR but left the queue before any agent:
                // an abandon all the same (the queue journal has its position).
                let outcome = if self.waiting {
                    Outcome::Abandoned
                } else if self.with_partner {
                    Outcome::Transferred
                } else if self.answered_at.is_some() {
                    Outcome::Answered
                } else {
                    Outcome::Abandoned
                };
                if self.waiting {
                    self.actions.push_back(Action::LeaveQueue);
                }
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
            MediaIn::PlaybackFinished if self.closing_after_play => {
                // The confirmation was said: goodbye.
                self.end_by_system(now, Outcome::CallbackPromised, None);
            }
            MediaIn::PlaybackFinished if self.announcing => {
                // The information is over: back to the music.
                self.announcing = false;
                self.actions.push_back(Action::PlayHold);
            }
            MediaIn::PlaybackFinished => {
                if !self.waiting && !self.talking && !self.with_partner {
                    self.ivr.handle_event(now, IvrEvent::PlaybackFinished);
                    self.drain_ivr(now);
                }
            }
            MediaIn::Dtmf(digit) if self.waiting => self.waiting_key(digit),
            MediaIn::Dtmf(digit) => {
                if !self.waiting && !self.talking && !self.with_partner {
                    self.ivr.handle_event(now, IvrEvent::Dtmf(digit));
                    self.drain_ivr(now);
                }
            }
        }
    }

    /// A key pressed while waiting: the callback keys, or a number being
    /// typed for the callback.
    fn waiting_key(&mut self, digit: char) {
        match (self.typed_number.as_mut(), digit) {
            (Some(number), '#') => {
                let number = std::mem::take(number);
                self.typed_number = None;
                if number.len() >= MIN_CALLBACK_DIGITS {
                    self.actions.push_back(Action::RequestCallback {
                        number: Some(number),
                    });
                } else {
                    // Too short to be a phone number: ask again.
                    self.typed_number = Some(String::new());
                    self.announcing = true;
                    self.actions.push_back(Action::Play {
                        prompts: vec![PromptItem::File(CALLBACK_NUMBER_PROMPT.into())],
                    });
                }
            }
            // Star: never mind, back to the music.
            (Some(_), '*') => {
                self.typed_number = None;
                self.announcing = false;
                self.actions.push_back(Action::PlayHold);
            }
            (Some(number), d) if d.is_ascii_digit() && number.len() < MAX_CALLBACK_DIGITS => {
                number.push(d)
            }
            (Some(_), _) => {}
            (None, CALLBACK_KEY) => self
                .actions
                .push_back(Action::RequestCallback { number: None }),
            (None, CALLBACK_OTHER_NUMBER_KEY) => {
                self.typed_number = Some(String::new());
                // Played over the music like an announcement, then music.
                self.announcing = true;
                self.actions.push_back(Action::Play {
                    prompts: vec![PromptItem::File(CALLBACK_NUMBER_PROMPT.into())],
                });
            }
            (None, _) => {}
        }
    }

    /// What the queue decided.
    pub fn handle_queue(&mut self, now: Instant, input: QueueIn) {
        if self.state == State::Ended || (!self.waiting && !self.talking) {
            return;
        }
        match input {
            QueueIn::Connected { agent } if self.agent.is_none() => {
                self.waiting = false;
                self.agent = Some(agent);
                self.talking = true;
                self.connected_at = Some(now);
                self.announcing = false;
                // The relay replaces the hold music; the IVR's part is over.
                self.actions.push_back(Action::StopPlayback);
                self.ivr
                    .handle_event(now, IvrEvent::QueueResult(QueueResult::Connected));
            }
            QueueIn::Connected { .. } => {}
            QueueIn::Returned if self.agent.is_none() => {
                self.queued_at_returned();
                self.ivr
                    .handle_event(now, IvrEvent::QueueResult(QueueResult::Returned));
                self.drain_ivr(now);
            }
            QueueIn::Returned => {}
            QueueIn::Announce { prompts } if self.agent.is_none() => {
                self.announcing = true;
                self.actions.push_back(Action::Play { prompts });
            }
            QueueIn::Announce { .. } => {}
            QueueIn::AgentHungUp if self.talking => {
                self.talking = false;
                if self.ivr.continues_after_agent() {
                    // The caller stays for what the plan has after the agent (a survey).
                    self.actions.push_back(Action::Unbridge);
                    self.ivr.handle_event(now, IvrEvent::AgentHungUp);
                    self.drain_ivr(now);
                } else {
                    self.actions.push_back(Action::Bye);
                    self.finish(now, Outcome::Answered, HangupSide::Agent, None);
                }
            }
            QueueIn::AgentHungUp => {}
            QueueIn::CallbackPromised { prompts } if self.agent.is_none() => {
                self.waiting = false;
                self.announcing = false;
                self.callback_promised = true;
                self.closing_after_play = true;
                self.actions.push_back(Action::StopPlayback);
                if prompts.is_empty() {
                    self.end_by_system(now, Outcome::CallbackPromised, None);
                } else {
                    self.actions.push_back(Action::Play { prompts });
                }
            }
            QueueIn::CallbackPromised { .. } => {}
            QueueIn::AgentTransfer { target } if self.talking || self.waiting => {
                // Also the queue's overflow to a partner number while waiting.
                self.waiting = false;
                self.transfer_target = Some(target.clone());
                self.actions.push_back(Action::PlayHold);
                self.actions.push_back(Action::Transfer {
                    target,
                    method: TransferMethod::Invite,
                });
            }
            QueueIn::AgentTransfer { .. } => {}
        }
    }

    /// How the transfer asked by [`Action::Transfer`] went.
    pub fn handle_transfer(&mut self, now: Instant, input: TransferIn) {
        if self.state == State::Ended {
            return;
        }
        match input {
            TransferIn::Referred => {
                if matches!(self.state, State::Answering | State::Answered) {
                    self.actions.push_back(Action::Bye);
                }
                self.finish(now, Outcome::Transferred, HangupSide::System, None);
            }
            TransferIn::Connected => {
                self.with_partner = true;
                self.actions.push_back(Action::StopPlayback);
            }
            TransferIn::Failed => {
                self.transfer_target = None;
                self.ivr.handle_event(now, IvrEvent::TransferFailed);
                self.drain_ivr(now);
            }
            TransferIn::PartnerHungUp if self.with_partner => {
                self.actions.push_back(Action::Bye);
                self.finish(now, Outcome::Transferred, HangupSide::Partner, None);
            }
            TransferIn::PartnerHungUp => {}
        }
    }

    /// The recording asked by [`Action::Record`] ended.
    pub fn handle_record_finished(&mut self, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        self.ivr.handle_event(now, IvrEvent::RecordFinished);
        self.drain_ivr(now);
    }

    fn queued_at_returned(&mut self) {
        // The call is no longer waiting; `queue` stays for the record.
        self.waiting = false;
        self.announcing = false;
        self.actions.push_back(Action::StopPlayback);
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

    /// Waiting in a queue (not yet with an agent).
    pub fn is_queued(&self) -> bool {
        self.waiting && self.state != State::Ended
    }

    fn drain_ivr(&mut self, now: Instant) {
        while self.state != State::Ended {
            let Some(action) = self.ivr.poll_action() else {
                break;
            };
            match action {
                IvrAction::Play { prompts, early } => self.play(now, prompts, early),
                IvrAction::Answer => self.answer(now),
                IvrAction::StopPlayback => self.actions.push_back(Action::StopPlayback),
                IvrAction::Enqueue { queue } => {
                    let priority = self
                        .ivr
                        .variables()
                        .get("priority")
                        .and_then(|p| p.trim().parse().ok())
                        .unwrap_or(0);
                    self.needs_answer(now, Action::Enqueue { queue, priority })
                }
                IvrAction::Transfer { target, method } => {
                    self.transfer_target = Some(target.clone());
                    // Bridging (a new INVITE) relays answered media; a REFER
                    // goes inside a confirmed dialog (RFC 3515 §2.4.1).
                    self.needs_answer(now, Action::Transfer { target, method })
                }
                IvrAction::Record { max } => self.needs_answer(now, Action::Record { max }),
                IvrAction::OfferCallback => {
                    self.callback_promised = true;
                    self.actions.push_back(Action::OfferCallback);
                }
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
        // would leave the caller in silence forever: end the call instead —
        // unless the call went on to an agent or a callback.
        let handed_over =
            self.talking || self.waiting || self.after_answer.is_some() || self.with_partner;
        if self.state != State::Ended && self.ivr.is_finished() && !handed_over {
            let outcome = if self.callback_promised {
                Outcome::CallbackPromised
            } else if self.answered_at.is_some() {
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
            _ => self.needs_answer(now, Action::Play { prompts }),
        }
    }

    /// Does `action` now if the call is answered, else answers first and
    /// does it once the ACK confirms the dialog. Queueing happens answered:
    /// a PBX cancels an INVITE left unanswered too long (Timer C, RFC 3261
    /// §16.6 point 11), and the hold can last longer than that.
    fn needs_answer(&mut self, now: Instant, action: Action) {
        match self.state {
            State::Trying | State::Early => {
                self.after_answer = Some(action);
                self.answer(now);
            }
            State::Answering => self.after_answer = Some(action),
            State::Answered => self.start(now, action),
            State::Ended => {}
        }
    }

    /// Carries out an action that needs a confirmed dialog.
    fn start(&mut self, now: Instant, action: Action) {
        if let Action::Enqueue { queue, .. } = &action {
            self.queue = Some(queue.clone());
            self.queued_at = Some(now);
            self.waiting = true;
            self.actions.push_back(action);
            self.actions.push_back(Action::PlayHold);
            return;
        }
        self.actions.push_back(action);
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
                if self.waiting {
                    self.actions.push_back(Action::LeaveQueue);
                }
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
            queue: self.queue.clone(),
            queued_at: self.queued_at,
            agent: self.agent.clone(),
            connected_at: self.connected_at,
            path: self.ivr.path(),
            variables: self.ivr.variables().clone(),
            transferred_to: self.transfer_target.clone(),
        }));
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;

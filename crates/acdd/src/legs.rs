//! Outbound legs the ACD places: an agent's desk phone for an offer, a
//! citizen for a callback. Each runs in its own task with its own media
//! session, reports to the ACD task and takes its commands.

use std::sync::Arc;

use ld_acd::{CallId, CallbackId, OfferId, OfferResult};
use ld_media::{MediaEngine, SessionHandle, SessionId};
use ld_sip::{OutboundEvent, OutboundLeg, SipEdge};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::queueing::AcdIn;

/// What the ACD tells a leg.
#[derive(Debug)]
pub enum LegCmd {
    /// Withdraw the offer: CANCEL while ringing, BYE if it just answered.
    Cancel,
    /// Relay media between this leg and that session (the caller's).
    Bridge(SessionId),
    /// End the call (BYE), or CANCEL if still ringing.
    Hangup,
}

/// What a leg tells the ACD.
#[derive(Debug)]
pub enum LegReport {
    /// The agent's phone answered or refused; `session` is its media
    /// session when it answered.
    Result {
        offer: OfferId,
        result: OfferResult,
        session: Option<SessionId>,
    },
    /// The agent hung up after answering.
    AgentHungUp {
        offer: OfferId,
    },
    /// The agent transferred the caller (REFER); their leg is over.
    AgentTransfer {
        offer: OfferId,
        target: String,
    },
    CitizenAnswered {
        callback: CallbackId,
    },
    CitizenFailed {
        callback: CallbackId,
        call: CallId,
    },
    CitizenHungUp {
        callback: CallbackId,
        call: CallId,
    },
}

/// RFC 3261 §21: what a final response says about the agent's phone.
pub fn offer_result(status: u16) -> OfferResult {
    match status {
        486 | 600 => OfferResult::Busy,
        404 | 604 => OfferResult::NotFound,
        480 => OfferResult::Unavailable,
        // Our own CANCEL after the ring timeout, or the PBX's timer.
        487 | 408 => OfferResult::NoAnswer,
        other => OfferResult::Error(other),
    }
}

/// Opens a media session and INVITEs `target` with our offer.
fn place(
    edge: &SipEdge,
    media: &MediaEngine,
    target: &str,
) -> Result<(SessionHandle, OutboundLeg), String> {
    let session = media.open_session().map_err(|e| e.to_string())?;
    let sdp = ld_media::sdp::offer(edge.media_ip(), session.local_port(), session_version(), 1);
    let leg = edge.dial(target, sdp).map_err(|e| e.to_string())?;
    Ok((session, leg))
}

fn session_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Takes the far end's SDP answer: where to send, which codec.
fn apply_answer(session: &SessionHandle, sdp: &[u8]) -> bool {
    match ld_media::sdp::negotiate(sdp) {
        Ok(n) => {
            session.set_telephone_event(n.telephone_event);
            if let Some(remote) = n.remote_rtp {
                session.set_remote(remote, n.codec, n.payload_type);
            }
            true
        }
        Err(e) => {
            warn!(error = %e, "unusable SDP answer");
            false
        }
    }
}

/// Rings an agent's phone for `offer`.
pub fn spawn_agent(
    edge: Arc<SipEdge>,
    media: MediaEngine,
    offer: OfferId,
    phone: String,
    acd: mpsc::UnboundedSender<AcdIn>,
) -> mpsc::UnboundedSender<LegCmd> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let report = |r: LegReport| {
            let _ = acd.send(AcdIn::Leg(r));
        };
        let (session, mut leg) = match place(&edge, &media, &phone) {
            Ok(x) => x,
            Err(e) => {
                warn!(%offer, %phone, error = %e, "cannot ring the agent");
                report(LegReport::Result {
                    offer,
                    result: OfferResult::Error(500),
                    session: None,
                });
                return;
            }
        };
        let mut answered = false;
        let mut withdrawn = false;
        loop {
            tokio::select! {
                ev = leg.next_event() => match ev {
                    Some(OutboundEvent::Progress { .. }) => {}
                    Some(OutboundEvent::Answered { sdp }) => {
                        answered = true;
                        if withdrawn {
                            // Answered just as we cancelled (RFC 3261 §9.1: the
                            // 2xx wins): hang up at once.
                            let _ = leg.bye().await;
                            break;
                        }
                        let result = if apply_answer(&session, &sdp) {
                            OfferResult::Answered
                        } else {
                            let _ = leg.bye().await;
                            OfferResult::Error(488)
                        };
                        let ok = result == OfferResult::Answered;
                        report(LegReport::Result { offer, result, session: ok.then(|| session.id()) });
                        if !ok {
                            break;
                        }
                    }
                    Some(OutboundEvent::Rejected { status }) => {
                        if !withdrawn {
                            report(LegReport::Result { offer, result: offer_result(status), session: None });
                        }
                        break;
                    }
                    Some(OutboundEvent::Refer { target }) if answered && !withdrawn => {
                        // Blind transfer: we take the caller over (B2BUA),
                        // so the agent's part ends here (RFC 3515 §2.4.5).
                        info!(%offer, %target, "the agent transfers the call");
                        media.unbridge(session.id());
                        report(LegReport::AgentTransfer { offer, target });
                        let _ = leg.notify_refer(200).await;
                        let _ = leg.bye().await;
                        break;
                    }
                    Some(OutboundEvent::Refer { .. }) => {}
                    Some(OutboundEvent::HungUp) | None => {
                        if answered && !withdrawn {
                            report(LegReport::AgentHungUp { offer });
                        } else if !answered && !withdrawn {
                            report(LegReport::Result { offer, result: OfferResult::Error(500), session: None });
                        }
                        break;
                    }
                },
                cmd = rx.recv(), if !withdrawn => match cmd {
                    Some(LegCmd::Bridge(other)) => {
                        if let Err(e) = media.bridge(other, session.id()) {
                            warn!(%offer, error = %e, "bridge failed");
                        } else {
                            info!(%offer, "caller and agent bridged");
                        }
                    }
                    Some(LegCmd::Cancel) | Some(LegCmd::Hangup) | None => {
                        withdrawn = true;
                        if answered {
                            let _ = leg.bye().await;
                            break;
                        }
                        // Wait for the 487 (or a racing 200) on the next turn.
                        if let Err(e) = leg.cancel().await {
                            debug!(%offer, error = %e, "CANCEL failed");
                            break;
                        }
                    }
                },
            }
        }
        media.unbridge(session.id());
        session.close();
    });
    tx
}

/// How a call placed by [`spawn_bridged`] went.
#[derive(Debug)]
pub enum Bridged {
    /// Answered (and bridged, when there was a session to bridge with).
    Answered,
    Failed {
        status: u16,
    },
    /// Hung up after answering.
    HungUp,
}

/// Calls `target` and, once answered, relays media between it and `other`.
/// Used for callbacks (the citizen, bridged to the agent) and transfers (the
/// partner, bridged to the caller). Ends on the far end's BYE or a command.
fn spawn_bridged(
    edge: Arc<SipEdge>,
    media: MediaEngine,
    target: String,
    other: Option<SessionId>,
    report: impl Fn(Bridged) + Send + 'static,
) -> mpsc::UnboundedSender<LegCmd> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (session, mut leg) = match place(&edge, &media, &target) {
            Ok(x) => x,
            Err(e) => {
                warn!(%target, error = %e, "cannot place the call");
                report(Bridged::Failed { status: 500 });
                return;
            }
        };
        let mut answered = false;
        loop {
            tokio::select! {
                ev = leg.next_event() => match ev {
                    Some(OutboundEvent::Progress { .. }) | Some(OutboundEvent::Refer { .. }) => {}
                    Some(OutboundEvent::Answered { sdp }) => {
                        answered = true;
                        let bridged = other.is_none_or(|o| media.bridge(o, session.id()).is_ok());
                        if apply_answer(&session, &sdp) && bridged {
                            info!(%target, "answered and bridged");
                            report(Bridged::Answered);
                        } else {
                            let _ = leg.bye().await;
                            report(Bridged::Failed { status: 488 });
                            break;
                        }
                    }
                    Some(OutboundEvent::Rejected { status }) => {
                        info!(%target, status, "not answered");
                        report(Bridged::Failed { status });
                        break;
                    }
                    Some(OutboundEvent::HungUp) | None => {
                        report(if answered { Bridged::HungUp } else { Bridged::Failed { status: 500 } });
                        break;
                    }
                },
                cmd = rx.recv() => match cmd {
                    Some(LegCmd::Bridge(o)) => {
                        let _ = media.bridge(o, session.id());
                    }
                    Some(LegCmd::Cancel) | Some(LegCmd::Hangup) | None => {
                        if answered {
                            let _ = leg.bye().await;
                        } else {
                            let _ = leg.cancel().await;
                        }
                        break;
                    }
                },
            }
        }
        media.unbridge(session.id());
        session.close();
    });
    tx
}

/// Calls a citizen back and bridges them with the agent's leg.
pub fn spawn_citizen(
    edge: Arc<SipEdge>,
    media: MediaEngine,
    callback: CallbackId,
    call: CallId,
    target: String,
    agent_session: Option<SessionId>,
    acd: mpsc::UnboundedSender<AcdIn>,
) -> mpsc::UnboundedSender<LegCmd> {
    spawn_bridged(edge, media, target, agent_session, move |ev| {
        let r = match ev {
            Bridged::Answered => LegReport::CitizenAnswered { callback },
            Bridged::Failed { .. } => LegReport::CitizenFailed { callback, call },
            Bridged::HungUp => LegReport::CitizenHungUp { callback, call },
        };
        let _ = acd.send(AcdIn::Leg(r));
    })
}

/// Calls a transfer's partner and bridges them with `caller` once they
/// answer (the caller's call task owns the leg and hears its events).
pub fn spawn_partner(
    edge: Arc<SipEdge>,
    media: MediaEngine,
    target: String,
    caller: SessionId,
    events: mpsc::UnboundedSender<Bridged>,
) -> mpsc::UnboundedSender<LegCmd> {
    spawn_bridged(edge, media, target, Some(caller), move |ev| {
        let _ = events.send(ev);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_responses_map_to_offer_results() {
        assert_eq!(offer_result(486), OfferResult::Busy);
        assert_eq!(offer_result(600), OfferResult::Busy);
        assert_eq!(offer_result(404), OfferResult::NotFound);
        assert_eq!(offer_result(480), OfferResult::Unavailable);
        assert_eq!(offer_result(487), OfferResult::NoAnswer);
        assert_eq!(offer_result(503), OfferResult::Error(503));
    }
}

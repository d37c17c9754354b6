//! Outbound legs: acdd calling an agent's desk phone (or a citizen back),
//! through the site PBX when a trunk is configured.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{StatusCodeKind, Uri};
use rsipstack::transport::SipAddr;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::SipError;

/// Who acdd is when it places a call.
#[derive(Clone)]
pub struct Identity {
    /// The user part of From and Contact (the trunk's username).
    pub user: String,
    /// The host of From: the PBX's domain when registered, else our address.
    pub domain: String,
    /// The address of our Contact.
    pub contact: SocketAddr,
    /// Digest credentials, answering a 401/407 from the PBX (RFC 3261 §22.2).
    pub credential: Option<Credential>,
    /// Where to send the INVITE (the PBX as outbound proxy), or `None` to
    /// follow the Request-URI.
    pub outbound_proxy: Option<SocketAddr>,
}

/// What happened to an outbound leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundEvent {
    /// A provisional response (180 Ringing, 183 with or without SDP).
    Progress { status: u16, sdp: Option<Vec<u8>> },
    /// 2xx: the far end answered with this SDP answer.
    Answered { sdp: Vec<u8> },
    /// A final non-2xx (486 busy, 404 not found, 480, 487 after our CANCEL…),
    /// or 408/503-like failures of our own (timeout, transport).
    Rejected { status: u16 },
    /// The confirmed call ended from the far side (BYE).
    HungUp,
    /// The far end asks us to transfer the call (REFER, RFC 3515); it was
    /// answered 202 Accepted. Report the outcome with `notify_refer`.
    Refer { target: String },
}

/// One outbound INVITE dialog.
pub struct OutboundLeg {
    dialog: InviteDialog,
    /// Our SDP offer, answered again to a session refresh.
    offer: Vec<u8>,
    layer: Arc<DialogLayer>,
    states: DialogStateReceiver,
    invite: Option<JoinHandle<InviteAsyncResult>>,
    answered: bool,
    finished: bool,
}

/// Places the call: INVITE `target` with our SDP offer.
pub(crate) fn dial(
    layer: &Arc<DialogLayer>,
    me: &Identity,
    target: &str,
    offer: Vec<u8>,
) -> Result<OutboundLeg, SipError> {
    let callee = Uri::try_from(target).map_err(|e| SipError::BadUri {
        uri: target.to_string(),
        reason: e.to_string(),
    })?;
    let caller = Uri::try_from(format!("sip:{}@{}", me.user, me.domain).as_str()).map_err(|e| {
        SipError::BadUri {
            uri: me.domain.clone(),
            reason: e.to_string(),
        }
    })?;
    let contact = Uri {
        scheme: Some(rsipstack::sip::Scheme::Sip),
        auth: Some(rsipstack::sip::Auth {
            user: me.user.clone(),
            password: None,
        }),
        host_with_port: me.contact.into(),
        ..Default::default()
    };
    let offer_copy = offer.clone();
    let opt = InviteOption {
        caller,
        callee,
        contact,
        destination: me.outbound_proxy.map(SipAddr::from),
        content_type: Some("application/sdp".into()),
        offer: Some(offer),
        credential: me.credential.clone(),
        ..Default::default()
    };
    let (state_tx, states) = layer.new_dialog_state_channel();
    let (dialog, invite) = layer.do_invite_async(opt, state_tx)?;
    Ok(OutboundLeg {
        dialog,
        offer: offer_copy,
        layer: layer.clone(),
        states,
        invite: Some(invite),
        answered: false,
        finished: false,
    })
}

impl OutboundLeg {
    /// The next event; `None` once nothing more can happen.
    pub async fn next_event(&mut self) -> Option<OutboundEvent> {
        if self.finished {
            return None;
        }
        loop {
            tokio::select! {
                state = self.states.recv() => {
                    let Some(state) = state else {
                        self.finished = true;
                        return None;
                    };
                    debug!(%state, "outbound dialog state");
                    match state {
                        DialogState::Early(_, resp) => {
                            let sdp = (!resp.body().is_empty()).then(|| resp.body().clone());
                            return Some(OutboundEvent::Progress {
                                status: u16::from(resp.status_code.clone()),
                                sdp,
                            });
                        }
                        DialogState::Refer(_, req, handle) => {
                            let target = req
                                .headers
                                .iter()
                                .find(|h| h.name().eq_ignore_ascii_case("refer-to"))
                                .map(|h| refer_target(h.value()));
                            match target {
                                Some(t) if !t.is_empty() => {
                                    // RFC 3515 §2.4.2: accepted, the result
                                    // comes in a NOTIFY.
                                    let _ = handle.reply(rsipstack::sip::StatusCode::Accepted).await;
                                    return Some(OutboundEvent::Refer { target: t });
                                }
                                _ => {
                                    let _ = handle.reply(rsipstack::sip::StatusCode::BadRequest).await;
                                }
                            }
                        }
                        DialogState::Options(_, _, handle) | DialogState::Info(_, _, handle) => {
                            let _ = handle.reply(rsipstack::sip::StatusCode::OK).await;
                        }
                        DialogState::Updated(_, _, handle) => {
                            // A session refresh: our media did not change
                            // (RFC 3264 §8), our offer stands.
                            let _ = handle
                                .respond(
                                    rsipstack::sip::StatusCode::OK,
                                    Some(vec![rsipstack::sip::Header::ContentType("application/sdp".into())]),
                                    Some(self.offer.clone()),
                                )
                                .await;
                        }
                        DialogState::Message(_, _, handle) | DialogState::Notify(_, _, handle) => {
                            let _ = handle.reply(rsipstack::sip::StatusCode::OK).await;
                        }
                        DialogState::Terminated(_, reason) if self.answered => {
                            self.finished = true;
                            // A BYE from the phone, or the dialog dying
                            // (no answer to a refresh, transport): either
                            // way the agent is gone.
                            debug!(?reason, "outbound leg ended");
                            return Some(OutboundEvent::HungUp);
                        }
                        _ => continue,
                    }
                }
                done = wait_invite(&mut self.invite) => {
                    self.invite = None;
                    match done {
                        Ok((_, Some(resp))) if resp.status_code.kind() == StatusCodeKind::Successful => {
                            self.answered = true;
                            return Some(OutboundEvent::Answered { sdp: resp.body().clone() });
                        }
                        Ok((_, Some(resp))) => {
                            self.finished = true;
                            return Some(OutboundEvent::Rejected { status: u16::from(resp.status_code.clone()) });
                        }
                        // No final response at all: Timer B (RFC 3261
                        // §17.1.1.2) or a transport error, reported as 408.
                        Ok((_, None)) | Err(_) => {
                            self.finished = true;
                            return Some(OutboundEvent::Rejected { status: 408 });
                        }
                    }
                }
            }
        }
    }

    /// CANCEL while ringing (RFC 3261 §9.1); the INVITE then ends with 487.
    pub async fn cancel(&self) -> Result<(), SipError> {
        Ok(self.dialog.cancel().await?)
    }

    /// The outcome of a REFER we accepted, as the implicit subscription's
    /// final NOTIFY (RFC 3515 §2.4.5: a sipfrag of the new call's status).
    pub async fn notify_refer(&self, status: u16) -> Result<(), SipError> {
        self.dialog
            .notify_refer(
                rsipstack::sip::StatusCode::from(status),
                "terminated;reason=noresource",
            )
            .await?;
        Ok(())
    }

    /// BYE once answered (RFC 3261 §15.1.1).
    pub async fn bye(&self) -> Result<(), SipError> {
        Ok(self.dialog.bye().await?)
    }

    pub fn is_answered(&self) -> bool {
        self.answered
    }
}

async fn wait_invite(
    invite: &mut Option<JoinHandle<InviteAsyncResult>>,
) -> Result<
    (
        rsipstack::dialog::DialogId,
        Option<rsipstack::sip::Response>,
    ),
    (),
> {
    match invite {
        Some(h) => match h.await {
            Ok(r) => r.map_err(|_| ()),
            Err(_) => Err(()),
        },
        None => std::future::pending().await,
    }
}

impl Drop for OutboundLeg {
    fn drop(&mut self) {
        self.layer.remove_dialog(&self.dialog.id());
    }
}

/// The URI of a Refer-To value: `<sip:x@y;transport=udp?Replaces=…>` or a
/// bare URI; header parameters after `?` are dropped (no attended transfer).
pub fn refer_target(value: &str) -> String {
    let v = value.trim();
    let inner = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    inner.split('?').next().unwrap_or(inner).trim().to_string()
}

/// The host to put in From when we have no trunk.
pub(crate) fn domain_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::refer_target;

    #[test]
    fn refer_to_values() {
        assert_eq!(
            refer_target("<sip:agent5@127.0.0.1>"),
            "sip:agent5@127.0.0.1"
        );
        assert_eq!(
            refer_target("\"Partner\" <sip:+33123@pbx;user=phone?Replaces=abc>;x=y"),
            "sip:+33123@pbx;user=phone"
        );
        assert_eq!(refer_target("sip:a@b;method=INVITE"), "sip:a@b");
        assert_eq!(refer_target(""), "");
    }
}

//! One inbound call leg: what the daemon can do with it and what it hears.

use std::sync::Arc;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use tracing::debug;

use crate::SipError;

/// What happened to the leg, from the caller's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// The ACK of our 2xx arrived (RFC 3261 §13.3.1.4).
    Ack,
    /// The caller cancelled; rsipstack answered 200 to the CANCEL and 487 to
    /// the INVITE (RFC 3261 §9.2).
    Cancel,
    /// The caller hung up with BYE, answered 200 (RFC 3261 §15.1.2).
    Bye,
    /// The dialog died otherwise (no ACK within 64*T1, transport error).
    Failed(String),
    /// A key sent in a SIP INFO (application/dtmf-relay or application/dtmf).
    Dtmf(char),
}

/// The daemon's handle on one inbound INVITE dialog.
pub struct CallLeg {
    pub(crate) dialog: InviteDialog,
    pub(crate) layer: Arc<DialogLayer>,
    pub(crate) states: DialogStateReceiver,
    /// Our SDP answer, offered again to a refreshing re-INVITE.
    pub(crate) local_sdp: Option<String>,
}

fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

impl CallLeg {
    /// 183 Session Progress with our SDP answer: early media may flow from
    /// now on (RFC 3261 §13.3.1.1, RFC 3960 §3 "gateway model").
    pub fn progress(&mut self, sdp: String) -> Result<(), SipError> {
        self.local_sdp = Some(sdp.clone());
        Ok(self.dialog.ringing(sdp_headers(), Some(sdp.into_bytes()))?)
    }

    /// 200 OK with the SDP answer (the same one as in the 183: RFC 3264 §5
    /// — once given, an answer stands until a new offer).
    pub fn answer(&mut self, sdp: String) -> Result<(), SipError> {
        self.local_sdp = Some(sdp.clone());
        Ok(self.dialog.accept(sdp_headers(), Some(sdp.into_bytes()))?)
    }

    /// A final non-2xx to the INVITE (RFC 3261 §13.3.1.3).
    pub fn reject(&self, status: u16) -> Result<(), SipError> {
        Ok(self.dialog.reject(Some(StatusCode::from(status)), None)?)
    }

    /// Blind transfer: REFER the caller's side to `target` (RFC 3515 §2.4.1).
    /// True when it was accepted (2xx, usually 202).
    pub async fn refer(&self, target: &str) -> Result<bool, SipError> {
        let uri = rsipstack::sip::Uri::try_from(target).map_err(|e| SipError::BadUri {
            uri: target.to_string(),
            reason: e.to_string(),
        })?;
        let resp = self
            .dialog
            .refer(
                rsipstack::sip::ReferTo::from(format!("<{uri}>")),
                None,
                None,
            )
            .await?;
        Ok(
            resp.is_some_and(|r| {
                r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful
            }),
        )
    }

    /// BYE in the confirmed dialog, following its route set (RFC 3261 §15.1.1).
    pub async fn bye(&self) -> Result<(), SipError> {
        Ok(self.dialog.bye().await?)
    }

    /// The next thing that happened to the leg; `None` once the stack
    /// dropped the dialog.
    pub async fn next_event(&mut self) -> Option<LegEvent> {
        loop {
            let state = self.states.recv().await?;
            debug!(%state, "dialog state");
            match state {
                DialogState::Confirmed(..) => return Some(LegEvent::Ack),
                DialogState::Terminated(_, reason) => {
                    return Some(match reason {
                        TerminatedReason::UacCancel => LegEvent::Cancel,
                        TerminatedReason::UacBye => LegEvent::Bye,
                        other => LegEvent::Failed(format!("{other:?}")),
                    })
                }
                DialogState::Info(_, req, handle) => {
                    // RFC 6086: INFO carries its package in Content-Type;
                    // DTMF relay is the one a PBX sends.
                    let ctype = req
                        .headers
                        .iter()
                        .find(|h| h.name().eq_ignore_ascii_case("content-type"))
                        .map(|h| h.value().to_string())
                        .unwrap_or_default();
                    match dtmf_relay_digit(&ctype, req.body()) {
                        Some(digit) => {
                            let _ = handle.reply(StatusCode::OK).await;
                            return Some(LegEvent::Dtmf(digit));
                        }
                        None => {
                            // RFC 6086 §4.2.2: an INFO package we do not know.
                            let _ = handle.reply(StatusCode::UnsupportedMediaType).await;
                        }
                    }
                }
                DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                }
                DialogState::Updated(_, req, handle) => {
                    // A session refresh (RFC 4028) or a re-INVITE: the media
                    // does not change on our side, so our answer stands
                    // (RFC 3264 §8: same version when nothing changed).
                    match (&self.local_sdp, req.method) {
                        (Some(sdp), rsipstack::sip::Method::Invite) => {
                            let _ = handle
                                .respond(
                                    StatusCode::OK,
                                    sdp_headers(),
                                    Some(sdp.clone().into_bytes()),
                                )
                                .await;
                        }
                        _ => {
                            let _ = handle.reply(StatusCode::OK).await;
                        }
                    }
                }
                DialogState::Refer(_, _, handle) | DialogState::Message(_, _, handle) => {
                    // Transfers initiated by the caller's side are not ours
                    // to follow (RFC 3515 §2.4.2 lets us decline).
                    let _ = handle.reply(StatusCode::Decline).await;
                }
                // Our own transitions (Early, WaitAck) and the return to
                // Confirmed after an in-dialog request.
                _ => continue,
            }
        }
    }
}

/// The digit of an INFO body: `application/dtmf-relay` ("Signal=5") or
/// `application/dtmf` ("5").
fn dtmf_relay_digit(content_type: &str, body: &[u8]) -> Option<char> {
    let ctype = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let raw = match ctype.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| v.trim().to_string())
        })?,
        "application/dtmf" => text.trim().to_string(),
        _ => return None,
    };
    let mut chars = raw.chars();
    let c = chars.next()?.to_ascii_uppercase();
    // Some phones send the event code (10 = *, 11 = #) instead of the key.
    let c = match raw.as_str() {
        "10" => '*',
        "11" => '#',
        _ if chars.next().is_none() => c,
        _ => return None,
    };
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

impl Drop for CallLeg {
    fn drop(&mut self) {
        // rsipstack keeps dialogs until told (DESIGN.md): forget it, or the
        // dialog table grows with every call.
        self.layer.remove_dialog(&self.dialog.id());
    }
}

#[cfg(test)]
mod tests {
    use super::dtmf_relay_digit;

    #[test]
    fn info_bodies() {
        assert_eq!(
            dtmf_relay_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            dtmf_relay_digit("application/dtmf-relay", b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(
            dtmf_relay_digit("Application/DTMF; charset=x", b"7"),
            Some('7')
        );
        assert_eq!(dtmf_relay_digit("application/dtmf", b"11"), Some('#'));
        assert_eq!(dtmf_relay_digit("application/dtmf", b"55"), None);
        assert_eq!(dtmf_relay_digit("text/plain", b"Signal=5"), None);
        assert_eq!(
            dtmf_relay_digit("application/dtmf-relay", b"\xff\xfe"),
            None
        );
        assert_eq!(
            dtmf_relay_digit("application/dtmf-relay", b"Signal=X"),
            None
        );
    }
}

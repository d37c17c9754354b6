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
}

/// The daemon's handle on one inbound INVITE dialog.
pub struct CallLeg {
    pub(crate) dialog: InviteDialog,
    pub(crate) layer: Arc<DialogLayer>,
    pub(crate) states: DialogStateReceiver,
}

fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

impl CallLeg {
    /// 183 Session Progress with our SDP answer: early media may flow from
    /// now on (RFC 3261 §13.3.1.1, RFC 3960 §3 "gateway model").
    pub fn progress(&self, sdp: String) -> Result<(), SipError> {
        Ok(self.dialog.ringing(sdp_headers(), Some(sdp.into_bytes()))?)
    }

    /// 200 OK with the SDP answer (the same one as in the 183: RFC 3264 §5
    /// — once given, an answer stands until a new offer).
    pub fn answer(&self, sdp: String) -> Result<(), SipError> {
        Ok(self.dialog.accept(sdp_headers(), Some(sdp.into_bytes()))?)
    }

    /// A final non-2xx to the INVITE (RFC 3261 §13.3.1.3).
    pub fn reject(&self, status: u16) -> Result<(), SipError> {
        Ok(self.dialog.reject(Some(StatusCode::from(status)), None)?)
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
                // Our own transitions (Early, WaitAck) and in-dialog
                // requests this skeleton does not act on yet.
                _ => continue,
            }
        }
    }
}

impl Drop for CallLeg {
    fn drop(&mut self) {
        // rsipstack keeps dialogs until told (DESIGN.md): forget it, or the
        // dialog table grows with every call.
        self.layer.remove_dialog(&self.dialog.id());
    }
}

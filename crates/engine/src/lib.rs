//! One call's life, as a pure state machine.
//!
//! Contract: the SIP/media edge feeds a [`Call`] with what happened
//! (`handle_sip`, `handle_media`, `handle_timeout`, `handle_shutdown`, each with
//! `now`) and drains what to do with `poll_action()`; `poll_timeout()` gives the
//! next deadline. The call never does IO and never reads the clock. It joins
//! the IVR interpreter (crate `ld-dialplan`) with the SIP call state (RFC 3261
//! §13.3.1: provisional with SDP, final response, BYE), and it ends with exactly
//! one [`Action::Finished`] carrying the call's summary, whatever happened, so
//! that every call gets its record (DESIGN.md principle 5).

mod call;

pub use call::{
    Action, Call, CallSummary, HangupSide, MediaIn, Outcome, QueueIn, SipIn, TransferIn,
    CALLBACK_KEY, CALLBACK_NUMBER_PROMPT, CALLBACK_OTHER_NUMBER_KEY,
};

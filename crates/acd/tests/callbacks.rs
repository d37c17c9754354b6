//! Overflow (max wait, no agent), callbacks that keep their place, opening hours, retries,
//! periodic announcements.

mod common;
use common::*;
use ld_acd::*;

/// agent1 only, busy with call 100: everyone else waits.
fn one_busy_agent(keys: &str) -> H {
    let mut h = H::new(keys);
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    h.enqueue(100, 0);
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Answered);
    h.take();
    h
}

/// Ends the conversation `call` and skips the wrap-up.
fn free_agent1(h: &mut H, call: u64) {
    h.acd.handle_call_ended(h.now, CallId(call)).unwrap();
    h.drain();
    if h.status(1) == AgentStatus::WrapUp {
        h.cmd(1, AgentCommand::EndWrapUp);
    }
}

#[test]
fn max_wait_overflows_to_voicemail() {
    let mut h = one_busy_agent("max_wait = \"2min\"\noverflow = \"voicemail\"");
    h.enqueue(1, 0);
    h.advance(secs(119));
    assert!(h
        .take()
        .iter()
        .all(|x| !matches!(x, AcdAction::Overflow { .. })));
    h.advance(secs(1));
    let acts = h.take();
    assert!(acts.contains(&AcdAction::Overflow {
        call: CallId(1),
        target: OverflowTarget::Voicemail
    }));
    assert_eq!(h.acd.queue_len(&q()), Some(0));
    assert!(h.has(|e| matches!(e, JournalEvent::Overflowed { reason: OverflowReason::MaxWait, wait, .. } if *wait == secs(120))));
}

#[test]
fn max_wait_overflow_to_a_partner_withdraws_the_ringing_offer() {
    let mut h = H::new(
        "max_wait = \"20s\"\noverflow = \"sip:partenaire@example.org\"\nring_timeout = \"30s\"",
    );
    h.enqueue(1, 0);
    let (o, _, _) = h.one_offer();
    h.advance(secs(20));
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer { offer: o }));
    assert!(acts.contains(&AcdAction::Overflow {
        call: CallId(1),
        target: OverflowTarget::Partner("sip:partenaire@example.org".into())
    }));
    assert_eq!(h.status(1), AgentStatus::Available);
}

#[test]
fn no_agent_overflow_at_arrival_and_when_the_last_agent_leaves() {
    let mut h = H::new("no_agent_overflow = \"closing_message\"");
    h.cmd(1, AgentCommand::Logout);
    h.cmd(2, AgentCommand::Logout);
    h.enqueue(1, 0);
    let (o, _, _) = h.one_offer();
    h.enqueue(2, 0);
    // Paused still counts as staffed: a coffee must not empty the line.
    h.cmd(3, AgentCommand::Pause("café".into()));
    assert_eq!(h.acd.queue_len(&q()), Some(2));
    assert!(h.take().contains(&AcdAction::CancelOffer { offer: o }));
    h.cmd(3, AgentCommand::Logout);
    let acts = h.take();
    let overflowed: Vec<_> = acts
        .iter()
        .filter_map(|x| match x {
            AcdAction::Overflow { call, target } => Some((call.0, target.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        overflowed,
        vec![
            (1, OverflowTarget::ClosingMessage),
            (2, OverflowTarget::ClosingMessage)
        ]
    );
    h.enqueue(3, 0);
    assert!(h.take().contains(&AcdAction::Overflow {
        call: CallId(3),
        target: OverflowTarget::ClosingMessage
    }));
    assert_eq!(h.acd.queue_len(&q()), Some(0));
}

#[test]
fn callback_keeps_its_place_and_is_offered_in_turn() {
    let mut h = one_busy_agent("wrap_up = \"0s\"");
    for call in 1..=4 {
        h.enqueue(call, 0);
    }
    let now = h.now;
    let cb = h
        .acd
        .handle_request_callback(now, CallId(3), "0612345678")
        .unwrap();
    h.drain();
    assert_eq!(h.acd.position(CallId(3)), Some(3), "same place in line");
    assert!(h.has(|e| matches!(e, JournalEvent::CallbackPromised { position: 3, .. })));
    // The caller hangs up after the confirmation: the callback stands.
    h.acd.handle_abandon(h.now, CallId(3)).unwrap();
    assert_eq!(h.acd.position(CallId(3)), Some(3));

    let mut served = Vec::new();
    free_agent1(&mut h, 100);
    for _ in 0..2 {
        let (o, call, _) = h.one_offer();
        served.push(call.0);
        h.result(o, OfferResult::Answered);
        free_agent1(&mut h, call.0);
    }
    assert_eq!(served, [1, 2]);
    // Call 3's turn: the agent is offered the callback first.
    let acts = h.take();
    let offer = acts
        .iter()
        .find_map(|x| match x {
            AcdAction::OfferCallback {
                offer,
                callback,
                number,
                ..
            } => {
                assert_eq!((*callback, number.as_str()), (cb, "0612345678"));
                Some(*offer)
            }
            _ => None,
        })
        .expect("callback offered in turn");
    h.result(offer, OfferResult::Answered);
    assert_eq!(
        h.take(),
        vec![AcdAction::DialCitizen {
            callback: cb,
            call: CallId(3),
            agent: a(1),
            number: "0612345678".into()
        }]
    );
    // Call 4 waits while the citizen is dialed and then talks.
    h.acd
        .handle_callback_result(h.now, cb, CallbackOutcome::Ok)
        .unwrap();
    h.advance(secs(90));
    assert!(h.offers().is_empty());
    free_agent1(&mut h, 3);
    assert_eq!(h.one_offer().1, CallId(4));
    assert!(h.has(|e| matches!(e, JournalEvent::CallbackCompleted { attempt: 1, .. })));
    assert!(h.has(
        |e| matches!(e, JournalEvent::CallEnded { call: CallId(3), talk, .. } if *talk == secs(90))
    ));
}

#[test]
fn callbacks_wait_while_closed_and_others_go_past() {
    let mut h = one_busy_agent("wrap_up = \"0s\"");
    let now = h.now;
    let cb = h
        .acd
        .handle_enqueue_callback(now, CallId(1), &q(), 0, "0611111111")
        .unwrap();
    h.enqueue(2, 0);
    h.acd.handle_set_open(h.now, false);
    free_agent1(&mut h, 100);
    let (o, call, _) = h.one_offer();
    assert_eq!(call, CallId(2), "the held callback does not block the line");
    h.result(o, OfferResult::Answered);
    free_agent1(&mut h, 2);
    h.advance(secs(3600));
    assert!(h.offers().is_empty(), "no callback while closed");
    h.acd.handle_set_open(h.now, true);
    let acts = h.take();
    assert!(acts
        .iter()
        .any(|x| matches!(x, AcdAction::OfferCallback { callback, .. } if *callback == cb)));
    assert!(h.has(|e| matches!(e, JournalEvent::OpenChanged { open: true })));
}

#[test]
fn failed_callbacks_are_retried_then_given_up() {
    let mut h = H::new("callback_retries = 1\ncallback_retry_delay = \"10min\"\nwrap_up = \"0s\"");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    let now = h.now;
    let cb = h
        .acd
        .handle_enqueue_callback(now, CallId(1), &q(), 0, "0611111111")
        .unwrap();
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Answered);
    h.take();
    h.acd
        .handle_callback_result(h.now, cb, CallbackOutcome::Failed)
        .unwrap();
    h.drain();
    assert_eq!(h.status(1), AgentStatus::Available);
    assert_eq!(h.acd.position(CallId(1)), Some(1), "back in line");
    // A caller arriving meanwhile is served; the callback waits for its retry time.
    h.enqueue(2, 0);
    let (o, call, _) = h.one_offer();
    assert_eq!(call, CallId(2));
    h.result(o, OfferResult::Answered);
    free_agent1(&mut h, 2);
    h.advance(secs(599));
    assert!(h.offers().is_empty());
    h.advance(secs(1));
    let (o, call, _) = h.one_offer();
    assert_eq!(call, CallId(1));
    h.result(o, OfferResult::Answered);
    h.acd
        .handle_callback_result(h.now, cb, CallbackOutcome::Failed)
        .unwrap();
    h.drain();
    let failures: Vec<_> = h
        .journal
        .iter()
        .filter_map(|j| match &j.event {
            JournalEvent::CallbackFailed {
                attempt, retry_at, ..
            } => Some((*attempt, retry_at.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(failures, [(1, true), (2, false)]);
    assert_eq!(h.acd.queue_len(&q()), Some(0));
    assert!(h
        .acd
        .handle_callback_result(h.now, cb, CallbackOutcome::Ok)
        .is_err());
}

#[test]
fn max_wait_to_callback_keeps_the_place_with_the_callers_number() {
    let mut h =
        one_busy_agent("max_wait = \"1min\"\noverflow = \"callback\"\nannounce_every = \"0s\"");
    h.enqueue(1, 0);
    h.advance(secs(30));
    h.enqueue(2, 0);
    h.advance(secs(30));
    let acts = h.take();
    assert!(acts.contains(&AcdAction::Overflow {
        call: CallId(1),
        target: OverflowTarget::Callback
    }));
    assert_eq!(h.acd.position(CallId(1)), Some(1));
    assert!(h.has(|e| matches!(e, JournalEvent::CallbackPromised { number, position: 1, .. } if number == "+33610000001")));
    free_agent1(&mut h, 100);
    assert!(h.take().iter().any(|x| matches!(
        x,
        AcdAction::OfferCallback {
            call: CallId(1),
            ..
        }
    )));
}

#[test]
fn waiting_callers_hear_position_and_estimate_periodically() {
    let mut h =
        one_busy_agent("announce_every = \"45s\"\ndefault_talk = \"4min\"\nwrap_up = \"0s\"");
    h.enqueue(1, 0);
    h.enqueue(2, 0);
    h.advance(secs(45));
    let announces: Vec<_> = h
        .take()
        .into_iter()
        .filter_map(|x| match x {
            AcdAction::Announce {
                call,
                position,
                ewt,
            } => Some((call.0, position, ewt)),
            _ => None,
        })
        .collect();
    assert_eq!(announces.len(), 2);
    assert_eq!((announces[0].0, announces[0].1), (1, 1));
    assert_eq!((announces[1].0, announces[1].1), (2, 2));
    assert!(announces[0].2.p90 < announces[1].2.p90);
    assert!(announces[1].2.announce_minutes >= announces[0].2.announce_minutes);
    // Estimate for a new caller before enqueue (early media) matches position 3.
    let pos = h.acd.position_for_new_caller(&q(), 0).unwrap();
    assert_eq!(pos, 3);
    let e = h.acd.estimate(&q(), pos).unwrap();
    assert!(e.p90 > announces[1].2.p90 && e.is_bounded());
    h.advance(secs(45));
    assert_eq!(
        h.take()
            .iter()
            .filter(|x| matches!(x, AcdAction::Announce { .. }))
            .count(),
        2
    );
}

#[test]
fn abandon_is_journaled_with_position_and_wait() {
    let mut h = one_busy_agent("");
    h.enqueue(1, 0);
    h.enqueue(2, 0);
    h.advance(secs(42));
    h.acd.handle_abandon(h.now, CallId(2)).unwrap();
    h.drain();
    assert!(h.has(|e| matches!(e, JournalEvent::Abandoned { call: CallId(2), position: 2, wait, .. } if *wait == secs(42))));
    assert_eq!(h.acd.position(CallId(1)), Some(1));
}

#[test]
fn the_original_leg_hanging_up_does_not_touch_the_callback_being_dialed() {
    let mut h = H::new("");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Pause("x".into()));
    h.cmd(1, AgentCommand::Pause("x".into()));
    h.enqueue(1, 0);
    let cb = h
        .acd
        .handle_request_callback(h.now, CallId(1), "0699999999")
        .unwrap();
    h.cmd(1, AgentCommand::Resume);
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Answered);
    h.acd.handle_abandon(h.now, CallId(1)).unwrap();
    assert_eq!(h.status(1), AgentStatus::OnCall);
    h.acd
        .handle_callback_result(h.now, cb, CallbackOutcome::Ok)
        .unwrap();
    h.advance(secs(20));
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap();
    h.drain();
    assert_eq!(h.status(1), AgentStatus::WrapUp);
    assert!(h.has(
        |e| matches!(e, JournalEvent::CallEnded { call: CallId(1), talk, .. } if *talk == secs(20))
    ));
}

//! Agent states: wrap-up, pauses, auto-pause, login/logout, and their journal.

mod common;
use common::*;
use ld_acd::*;

/// Rings agent1 for call `call` and has them answer.
fn talk(h: &mut H, call: u64) {
    h.enqueue(call, 0);
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Answered);
}

#[test]
fn wrap_up_lasts_its_configured_length() {
    let mut h = H::new("wrap_up = \"10s\"");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    talk(&mut h, 1);
    h.advance(secs(60));
    h.acd.handle_agent_hangup(h.now, CallId(1)).unwrap();
    h.drain();
    assert_eq!(h.status(1), AgentStatus::WrapUp);
    assert!(h.has(|e| matches!(e, JournalEvent::CallEnded { talk, by: EndedBy::Agent, .. } if *talk == secs(60))));
    h.enqueue(2, 0);
    assert!(h.offers().is_empty(), "never offered in wrap-up");
    assert_eq!(h.acd.poll_timeout(), Some(h.now + secs(10)));
    h.advance(secs(9));
    assert!(h.offers().is_empty());
    h.advance(secs(1));
    assert_eq!(h.one_offer().1, CallId(2));
}

#[test]
fn wrap_up_can_be_ended_early() {
    let mut h = H::new("wrap_up = \"30s\"");
    talk(&mut h, 1);
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap();
    h.drain();
    h.advance(secs(3));
    h.cmd(1, AgentCommand::EndWrapUp);
    assert_eq!(h.status(1), AgentStatus::Available);
    assert!(h.has(|e| matches!(
        e,
        JournalEvent::AgentState {
            to: AgentStatus::Available,
            cause: StateCause::Command,
            ..
        }
    )));
    // The wrap-up deadline is gone with it.
    assert_eq!(h.acd.poll_timeout(), None);
}

#[test]
fn pause_and_resume_with_reason_journaled() {
    let mut h = H::new("");
    h.cmd(1, AgentCommand::Pause("pause déjeuner".into()));
    assert_eq!(h.status(1), AgentStatus::Paused("pause déjeuner".into()));
    h.enqueue(1, 0);
    assert_eq!(h.one_offer().2, a(2), "paused agent1 skipped");
    h.cmd(1, AgentCommand::Resume);
    assert_eq!(h.status(1), AgentStatus::Available);
    let changes: Vec<_> = h
        .journal
        .iter()
        .filter_map(|j| match &j.event {
            JournalEvent::AgentState {
                agent, to, cause, ..
            } if *agent == a(1) => Some((to.clone(), *cause)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                AgentStatus::Paused("pause déjeuner".into()),
                StateCause::Command
            ),
            (AgentStatus::Available, StateCause::Command),
        ]
    );
}

#[test]
fn pause_while_ringing_withdraws_the_offer_and_rings_the_next() {
    let mut h = H::new("");
    h.enqueue(1, 0);
    let (o, _, _) = h.one_offer();
    h.cmd(1, AgentCommand::Pause("urgence".into()));
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer { offer: o }));
    assert!(acts
        .iter()
        .any(|x| matches!(x, AcdAction::Offer { agent, .. } if *agent == a(2))));
    assert!(h.outcomes().contains(&(
        "agent1".into(),
        OfferOutcome::Cancelled(CancelReason::AgentLeft)
    )));
}

#[test]
fn pause_or_logout_during_a_call_takes_effect_when_it_ends() {
    let mut h = H::new("");
    talk(&mut h, 1);
    h.cmd(1, AgentCommand::Pause("formation".into()));
    assert_eq!(h.status(1), AgentStatus::OnCall);
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap();
    h.drain();
    assert_eq!(h.status(1), AgentStatus::Paused("formation".into()));
    h.cmd(1, AgentCommand::Resume);
    talk(&mut h, 2);
    h.cmd(1, AgentCommand::Logout);
    h.acd.handle_agent_hangup(h.now, CallId(2)).unwrap();
    h.drain();
    assert_eq!(h.status(1), AgentStatus::LoggedOut);
    assert!(h.has(|e| matches!(
        e,
        JournalEvent::AgentState {
            to: AgentStatus::LoggedOut,
            cause: StateCause::Deferred,
            ..
        }
    )));
}

#[test]
fn auto_pause_after_n_unanswered_in_a_row() {
    let mut h = H::new("auto_pause_after = 2\nring_timeout = \"10s\"\nwrap_up = \"0s\"");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    h.enqueue(1, 0);
    h.one_offer();
    h.advance(secs(10)); // 1st no answer
    assert_eq!(h.status(1), AgentStatus::Available);
    h.advance(secs(5)); // retry
    h.one_offer();
    h.advance(secs(10)); // 2nd no answer → paused
    assert_eq!(h.status(1), AgentStatus::Paused(AUTO_PAUSE_REASON.into()));
    assert!(h.has(|e| matches!(
        e,
        JournalEvent::AgentState {
            cause: StateCause::AutoPause,
            ..
        }
    )));
    h.advance(secs(60));
    assert!(h.offers().is_empty(), "a paused agent is not rung");
    // Resume forgives: one more miss does not pause again.
    h.cmd(1, AgentCommand::Resume);
    h.advance(secs(5)); // agent1 already missed this caller in this round: `retry` first
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Busy);
    assert_eq!(h.status(1), AgentStatus::Available);
}

#[test]
fn an_answer_resets_the_unanswered_count() {
    let mut h = H::new("auto_pause_after = 2\nwrap_up = \"0s\"");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    h.enqueue(1, 0);
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Busy);
    h.advance(secs(5));
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::Answered);
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap();
    h.enqueue(2, 0);
    let (o, _, _) = h.one_offer();
    h.result(o, OfferResult::NoAnswer);
    assert_eq!(
        h.status(1),
        AgentStatus::Available,
        "1 miss since the last answer"
    );
}

#[test]
fn manual_agents_start_logged_out_and_log_in() {
    let mut cfg = config("");
    cfg.agents[0].login = LoginMode::Manual;
    let mut h = H::with(cfg);
    assert_eq!(h.status(1), AgentStatus::LoggedOut);
    h.enqueue(1, 0);
    assert_eq!(h.one_offer().2, a(2));
    h.cmd(1, AgentCommand::Login);
    assert_eq!(h.status(1), AgentStatus::Available);
    let now = h.now;
    assert!(h
        .acd
        .handle_agent_command(now, &a(1), AgentCommand::Login)
        .is_err());
}

#[test]
fn transfer_is_journaled_and_ends_the_conversation() {
    let mut h = H::new("wrap_up = \"5s\"");
    talk(&mut h, 1);
    h.advance(secs(30));
    h.acd
        .handle_transfer(h.now, CallId(1), "sip:caf@partenaire.fr")
        .unwrap();
    h.drain();
    assert!(h.has(|e| matches!(e, JournalEvent::Transferred { target, .. } if target == "sip:caf@partenaire.fr")));
    assert!(h.has(|e| matches!(e, JournalEvent::CallEnded { talk, by: EndedBy::Agent, .. } if *talk == secs(30))));
    assert_eq!(h.status(1), AgentStatus::WrapUp);
    assert!(h.acd.handle_transfer(h.now, CallId(1), "sip:x@y").is_err());
}

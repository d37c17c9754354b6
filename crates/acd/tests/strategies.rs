//! Distribution strategies, ring timeouts, failures → next agent, priorities, FIFO.

mod common;
use common::*;
use ld_acd::*;

#[test]
fn sequential_no_answer_then_busy_then_answer() {
    // The scenario: agent1 does not answer, agent2 is busy, agent3 answers.
    let mut h = H::new("ring_timeout = \"15s\"");
    h.enqueue(1, 0);
    let (o1, call, ag) = h.one_offer();
    assert_eq!((call, ag.clone()), (CallId(1), a(1)));
    assert_eq!(h.status(1), AgentStatus::Ringing);
    h.advance(secs(14));
    assert!(h.take().is_empty(), "nothing before the ring timeout");
    h.advance(secs(1));
    let acts = h.take();
    assert!(
        acts.contains(&AcdAction::CancelOffer { offer: o1 }),
        "{acts:?}"
    );
    let next: Vec<_> = acts
        .iter()
        .filter_map(|x| match x {
            AcdAction::Offer { offer, agent, .. } => Some((*offer, agent.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1, a(2));
    h.result(next[0].0, OfferResult::Busy);
    // Busy → next agent at once, same instant.
    let (o3, _, ag3) = h.one_offer();
    assert_eq!(ag3, a(3));
    h.result(o3, OfferResult::Answered);
    let acts = h.take();
    assert!(acts.contains(&AcdAction::Bridge {
        call: CallId(1),
        agent: a(3),
        offer: o3
    }));
    assert_eq!(
        h.outcomes(),
        vec![
            ("agent1".into(), OfferOutcome::Result(OfferResult::NoAnswer)),
            ("agent2".into(), OfferOutcome::Result(OfferResult::Busy)),
            ("agent3".into(), OfferOutcome::Result(OfferResult::Answered)),
        ]
    );
    assert_eq!(h.status(3), AgentStatus::OnCall);
    assert_eq!(h.status(1), AgentStatus::Available);
    assert!(h.has(
        |e| matches!(e, JournalEvent::Answered { call: CallId(1), wait, .. } if *wait == secs(15))
    ));
}

#[test]
fn not_found_unavailable_and_errors_go_next_at_once() {
    let mut h = H::new("");
    h.enqueue(1, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
    h.result(o, OfferResult::NotFound);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(2));
    h.result(o, OfferResult::Unavailable);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(3));
    h.result(o, OfferResult::Error(503));
    // Everyone tried: the next round waits `retry` (default 5 s), then starts from agent1.
    assert!(h.offers().is_empty());
    h.advance(secs(4));
    assert!(h.offers().is_empty());
    h.advance(secs(1));
    let (_, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
    assert_eq!(h.elapsed(), secs(5));
}

#[test]
fn sequential_always_starts_from_the_first_member() {
    let mut h = H::new("wrap_up = \"0s\"");
    for call in 1..=3 {
        h.enqueue(call, 0);
        let (o, _, ag) = h.one_offer();
        assert_eq!(ag, a(1), "call {call}");
        h.result(o, OfferResult::Answered);
        h.acd.handle_call_ended(h.now, CallId(call)).unwrap();
        h.advance(secs(1));
    }
    assert_eq!(h.bridged().len(), 3);
}

#[test]
fn round_robin_continues_after_the_last_offered() {
    let mut h = H::new("strategy = \"round_robin\"\nwrap_up = \"0s\"");
    let mut got = Vec::new();
    for call in 1..=5 {
        h.enqueue(call, 0);
        let (o, _, ag) = h.one_offer();
        got.push(ag.0.clone());
        h.result(o, OfferResult::Answered);
        h.acd.handle_call_ended(h.now, CallId(call)).unwrap();
        h.advance(secs(1));
    }
    assert_eq!(got, ["agent1", "agent2", "agent3", "agent1", "agent2"]);
}

#[test]
fn round_robin_skips_busy_members_and_keeps_memory() {
    let mut h = H::new("strategy = \"round_robin\"\nwrap_up = \"0s\"");
    h.enqueue(1, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
    h.result(o, OfferResult::Answered); // agent1 on call
    h.cmd(2, AgentCommand::Pause("formation".into()));
    h.enqueue(2, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(3), "agent2 paused: skipped");
    h.result(o, OfferResult::Answered);
    h.cmd(2, AgentCommand::Resume);
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap();
    h.enqueue(3, 0);
    let (_, _, ag) = h.one_offer();
    assert_eq!(ag, a(1), "after agent3 comes agent1 again");
}

#[test]
fn longest_idle_picks_the_agent_free_for_longest() {
    let mut h = H::new("strategy = \"longest_idle\"\nwrap_up = \"0s\"");
    // All available since start: member order breaks the tie.
    h.enqueue(1, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
    h.result(o, OfferResult::Answered);
    h.enqueue(2, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(2));
    h.result(o, OfferResult::Answered);
    h.advance(secs(10));
    h.acd.handle_call_ended(h.now, CallId(2)).unwrap(); // agent2 free at t=10
    h.advance(secs(10));
    h.acd.handle_call_ended(h.now, CallId(1)).unwrap(); // agent1 free at t=20
    h.drain();
    // agent3 has been free since start, then agent2 (t=10), then agent1 (t=20).
    let mut order = Vec::new();
    for call in 3..=5 {
        h.enqueue(call, 0);
        let (o, _, ag) = h.one_offer();
        order.push(ag.0.clone());
        h.result(o, OfferResult::Answered);
    }
    assert_eq!(order, ["agent3", "agent2", "agent1"]);
}

#[test]
fn longest_idle_is_not_reset_by_an_unanswered_ring() {
    let mut h = H::new("strategy = \"longest_idle\"\nwrap_up = \"0s\"");
    h.advance(secs(1));
    h.enqueue(1, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
    h.result(o, OfferResult::NoAnswer);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(2));
    h.result(o, OfferResult::Answered);
    // agent1 did not take a call: still the longest idle for the next caller.
    h.enqueue(2, 0);
    let (_, _, ag) = h.one_offer();
    assert_eq!(ag, a(1));
}

#[test]
fn ring_all_first_answer_wins_others_cancelled() {
    let mut h = H::new("strategy = \"ring_all\"");
    h.enqueue(1, 0);
    let offers = h.offers();
    assert_eq!(offers.len(), 3);
    let agents: Vec<_> = offers.iter().map(|o| o.2.clone()).collect();
    assert_eq!(agents, [a(1), a(2), a(3)]);
    h.result(offers[1].0, OfferResult::Answered);
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer { offer: offers[0].0 }));
    assert!(acts.contains(&AcdAction::CancelOffer { offer: offers[2].0 }));
    assert!(acts
        .iter()
        .any(|x| matches!(x, AcdAction::Bridge { agent, .. } if *agent == a(2))));
    assert_eq!(h.status(1), AgentStatus::Available);
    assert_eq!(h.status(2), AgentStatus::OnCall);
    // An answer crossing our cancel is hung up, and not counted as a second result.
    h.result(offers[0].0, OfferResult::Answered);
    assert_eq!(
        h.take(),
        vec![AcdAction::CancelOffer { offer: offers[0].0 }]
    );
    assert_eq!(h.outcomes().len(), 3);
    // Next caller rings the two that are free.
    h.enqueue(2, 0);
    let agents: Vec<_> = h.offers().into_iter().map(|o| o.2).collect();
    assert_eq!(agents, [a(1), a(3)]);
}

#[test]
fn ring_all_times_out_every_phone() {
    let mut h = H::new("strategy = \"ring_all\"\nring_timeout = \"10s\"\nretry = \"3s\"");
    h.enqueue(1, 0);
    assert_eq!(h.offers().len(), 3);
    h.advance(secs(10));
    let cancels = h
        .take()
        .into_iter()
        .filter(|x| matches!(x, AcdAction::CancelOffer { .. }))
        .count();
    assert_eq!(cancels, 3);
    h.advance(secs(3));
    assert_eq!(h.offers().len(), 3, "second round after retry");
}

#[test]
fn an_agent_is_never_offered_two_calls_and_the_second_caller_waits_its_turn() {
    let mut h = H::new("");
    h.cmd(2, AgentCommand::Logout);
    h.cmd(3, AgentCommand::Logout);
    h.enqueue(1, 0);
    h.enqueue(2, 0);
    let (o, call, _) = h.one_offer();
    assert_eq!(call, CallId(1));
    h.advance(secs(15)); // no answer; only agent1 exists → retry after 5 s
    let acts = h.take();
    assert!(
        !acts.iter().any(|x| matches!(x, AcdAction::Offer { .. })),
        "{acts:?}"
    );
    assert!(acts.contains(&AcdAction::CancelOffer { offer: o }));
    h.advance(secs(5));
    let (o, call, _) = h.one_offer();
    assert_eq!(
        call,
        CallId(1),
        "the first caller keeps the head of the line"
    );
    h.result(o, OfferResult::Answered);
    assert!(h.offers().is_empty(), "agent1 on call: caller 2 waits");
    h.acd.handle_agent_hangup(h.now, CallId(1)).unwrap();
    h.advance(secs(10)); // wrap-up
    let (_, call, _) = h.one_offer();
    assert_eq!(call, CallId(2));
}

#[test]
fn priority_first_then_fifo() {
    let mut h = H::new("wrap_up = \"0s\"");
    for n in 1..=3 {
        h.cmd(n, AgentCommand::Pause("réunion".into()));
    }
    h.enqueue(1, 0);
    h.enqueue(2, 0);
    h.enqueue(3, 5); // allowlisted
    h.enqueue(4, 0);
    h.enqueue(5, 5);
    assert_eq!(h.acd.position(CallId(3)), Some(1));
    assert_eq!(h.acd.position(CallId(5)), Some(2));
    assert_eq!(h.acd.position(CallId(1)), Some(3));
    assert_eq!(h.acd.position_for_new_caller(&q(), 5).unwrap(), 3);
    assert_eq!(h.acd.position_for_new_caller(&q(), 0).unwrap(), 6);
    h.cmd(1, AgentCommand::Resume);
    for _ in 0..5 {
        let (o, call, _) = h.one_offer();
        h.result(o, OfferResult::Answered);
        h.acd.handle_call_ended(h.now, call).unwrap();
        h.drain();
    }
    let order: Vec<u64> = h.bridged().into_iter().map(|b| b.0).collect();
    assert_eq!(order, [3, 5, 1, 2, 4]);
}

#[test]
fn unreachable_agents_are_skipped_until_reachable() {
    let mut h = H::new("");
    h.acd.handle_agent_reachable(h.now, &a(1), false).unwrap();
    h.enqueue(1, 0);
    let (o, _, ag) = h.one_offer();
    assert_eq!(ag, a(2));
    // agent2's phone drops while ringing: offer withdrawn, next at once.
    h.acd.handle_agent_reachable(h.now, &a(2), false).unwrap();
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer { offer: o }));
    let next: Vec<_> = acts
        .iter()
        .filter_map(|x| match x {
            AcdAction::Offer { agent, .. } => Some(agent.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(next, [a(3)]);
    assert!(h.has(|e| matches!(
        e,
        JournalEvent::AgentReachable {
            reachable: false,
            ..
        }
    )));
}

#[test]
fn unknown_ids_are_errors_with_a_note() {
    let mut h = H::new("");
    let now = h.now;
    assert_eq!(
        h.acd
            .handle_enqueue(now, CallId(1), &QueueId::from("nope"), 0, ""),
        Err(AcdError::UnknownQueue(QueueId::from("nope")))
    );
    assert!(matches!(
        h.acd
            .handle_offer_result(now, OfferId(99), OfferResult::Answered),
        Err(AcdError::UnknownOffer(_))
    ));
    assert!(h.acd.handle_abandon(now, CallId(7)).is_err());
    assert!(h
        .acd
        .handle_agent_command(now, &AgentId::from("ghost"), AgentCommand::Login)
        .is_err());
    assert!(h
        .acd
        .handle_agent_command(now, &a(1), AgentCommand::Resume)
        .is_err());
    h.enqueue(1, 0);
    assert_eq!(
        h.acd.handle_enqueue(now, CallId(1), &q(), 0, ""),
        Err(AcdError::DuplicateCall(CallId(1)))
    );
    h.drain();
    let notes = h
        .journal
        .iter()
        .filter(|j| matches!(j.event, JournalEvent::Note { .. }))
        .count();
    assert_eq!(notes, 6);
}

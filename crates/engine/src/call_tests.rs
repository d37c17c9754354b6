use std::sync::Arc;
use std::time::{Duration, Instant};

use ld_dialplan::{parse, Ivr, PromptItem};

use super::*;

const SKELETON: &str = r#"
[entries]
default = "accueil"

[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue", { announce = "estimated_wait" }]
next = "decroche"

[nodes.decroche]
type = "answer"
next = "message"

[nodes.message]
type = "play"
prompts = ["fr/information"]
next = "fin"

[nodes.fin]
type = "hangup"
"#;

fn call(plan: &str, now: Instant) -> Call {
    let plan = Arc::new(parse("test.toml", plan).expect("valid plan"));
    Call::new(
        now,
        Ivr::new(now, jiff::Timestamp::UNIX_EPOCH, plan, "3939").expect("entry"),
    )
}

fn drain(call: &mut Call) -> Vec<Action> {
    std::iter::from_fn(|| call.poll_action()).collect()
}

#[test]
fn early_media_then_answer_then_message_then_bye() {
    let t0 = Instant::now();
    let mut c = call(SKELETON, t0);
    assert_eq!(
        drain(&mut c),
        vec![
            Action::Progress,
            Action::Play {
                prompts: vec![
                    PromptItem::File("fr/bienvenue".into()),
                    PromptItem::EstimatedWait
                ]
            }
        ]
    );
    let t1 = t0 + Duration::from_secs(8);
    c.handle_media(t1, MediaIn::PlaybackFinished);
    assert_eq!(drain(&mut c), vec![Action::Answer]);
    // Nothing plays before the ACK confirms the dialog.
    let t2 = t1 + Duration::from_millis(30);
    c.handle_sip(t2, SipIn::Ack);
    assert_eq!(
        drain(&mut c),
        vec![Action::Play {
            prompts: vec![PromptItem::File("fr/information".into())]
        }]
    );
    let t3 = t2 + Duration::from_secs(5);
    c.handle_media(t3, MediaIn::PlaybackFinished);
    let actions = drain(&mut c);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0], Action::Bye);
    let Action::Finished(summary) = &actions[1] else {
        panic!("expected Finished, got {actions:?}");
    };
    assert_eq!(summary.outcome, Outcome::Answered);
    assert_eq!(summary.hangup_by, HangupSide::System);
    assert_eq!(summary.early_media_at, Some(t0));
    assert_eq!(summary.answered_at, Some(t1));
    assert_eq!(summary.ended_at, t3);
    assert_eq!(summary.final_status, None);
    assert!(c.is_ended());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn caller_cancel_during_early_media_is_an_abandon() {
    let t0 = Instant::now();
    let mut c = call(SKELETON, t0);
    drain(&mut c);
    let t1 = t0 + Duration::from_secs(3);
    c.handle_sip(t1, SipIn::Cancel);
    let actions = drain(&mut c);
    let [Action::Finished(s)] = actions.as_slice() else {
        panic!("expected only Finished, got {actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Abandoned);
    assert_eq!(s.hangup_by, HangupSide::Caller);
    assert_eq!(s.answered_at, None);
    assert_eq!(s.final_status, Some(487));
    // Late events change nothing and never produce a second record.
    c.handle_sip(t1, SipIn::Bye);
    c.handle_media(t1, MediaIn::PlaybackFinished);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn caller_bye_after_answer_is_recorded_as_answered_by_caller() {
    let t0 = Instant::now();
    let mut c = call(SKELETON, t0);
    drain(&mut c);
    c.handle_media(t0 + Duration::from_secs(1), MediaIn::PlaybackFinished);
    c.handle_sip(t0 + Duration::from_secs(1), SipIn::Ack);
    drain(&mut c);
    c.handle_sip(t0 + Duration::from_secs(2), SipIn::Bye);
    let actions = drain(&mut c);
    let [Action::Finished(s)] = actions.as_slice() else {
        panic!("a caller BYE needs no BYE from us: {actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.hangup_by, HangupSide::Caller);
}

#[test]
fn missing_ack_fails_the_call() {
    let t0 = Instant::now();
    let mut c = call(SKELETON, t0);
    drain(&mut c);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    assert_eq!(drain(&mut c), vec![Action::Answer]);
    c.handle_sip(t0 + Duration::from_secs(32), SipIn::Failed);
    let actions = drain(&mut c);
    let [Action::Finished(s)] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Failed);
}

#[test]
fn closed_plan_rejects_with_its_status_after_early_media() {
    let plan = r#"
[entries]
default = "ferme"
[nodes.ferme]
type = "play"
early = true
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
status = 480
"#;
    let t0 = Instant::now();
    let mut c = call(plan, t0);
    assert_eq!(drain(&mut c).len(), 2);
    c.handle_media(t0 + Duration::from_secs(4), MediaIn::PlaybackFinished);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Reject { status: 480 });
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Rejected);
    assert_eq!(s.final_status, Some(480));
    assert_eq!(s.answered_at, None, "a closed service never answers");
}

#[test]
fn shutdown_before_answer_rejects_503_and_after_answer_sends_bye() {
    let t0 = Instant::now();
    let mut c = call(SKELETON, t0);
    drain(&mut c);
    c.handle_shutdown(t0);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Reject { status: 503 });
    assert!(matches!(&actions[1], Action::Finished(s) if s.outcome == Outcome::Shutdown));

    let mut c = call(SKELETON, t0);
    drain(&mut c);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    c.handle_sip(t0, SipIn::Ack);
    drain(&mut c);
    c.handle_shutdown(t0);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Bye);
    assert!(matches!(&actions[1], Action::Finished(s) if s.outcome == Outcome::Shutdown));
}

#[test]
fn non_early_play_before_answer_answers_first() {
    let plan = r#"
[entries]
default = "message"
[nodes.message]
type = "play"
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
"#;
    let t0 = Instant::now();
    let mut c = call(plan, t0);
    assert_eq!(drain(&mut c), vec![Action::Answer]);
    c.handle_sip(t0, SipIn::Ack);
    assert_eq!(
        drain(&mut c),
        vec![Action::Play {
            prompts: vec![PromptItem::File("fr/information".into())]
        }]
    );
}

#[test]
fn pause_node_waits_on_virtual_time() {
    let plan = r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "silence"
[nodes.silence]
type = "pause"
duration = "2s"
next = "fin"
[nodes.fin]
type = "hangup"
status = 486
"#;
    let t0 = Instant::now();
    let mut c = call(plan, t0);
    drain(&mut c);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    assert!(drain(&mut c).is_empty());
    let deadline = c.poll_timeout().expect("the pause sets a deadline");
    assert_eq!(deadline, t0 + Duration::from_secs(2));
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut c).is_empty(), "no early wake-up");
    c.handle_timeout(deadline);
    assert_eq!(drain(&mut c)[0], Action::Reject { status: 486 });
}

const QUEUED: &str = r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue", { announce = "estimated_wait" }]
next = "file"
[nodes.file]
type = "queue"
queue = "accueil"
next = "desole"
[nodes.desole]
type = "play"
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
"#;

/// Early media, then the queue: answered first, then enqueued with music.
fn queued_call(t0: Instant) -> Call {
    let mut c = call(QUEUED, t0);
    drain(&mut c);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    assert_eq!(
        drain(&mut c),
        vec![Action::Answer],
        "queueing happens answered"
    );
    c.handle_sip(t0, SipIn::Ack);
    assert_eq!(
        drain(&mut c),
        vec![
            Action::Enqueue {
                queue: "accueil".into(),
                priority: 0
            },
            Action::PlayHold
        ]
    );
    assert!(c.is_queued());
    c
}

#[test]
fn queued_call_hears_announcements_over_the_music_then_reaches_an_agent() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    let info = vec![PromptItem::EstimatedWait];
    c.handle_queue(
        t0,
        QueueIn::Announce {
            prompts: info.clone(),
        },
    );
    assert_eq!(drain(&mut c), vec![Action::Play { prompts: info }]);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    assert_eq!(drain(&mut c), vec![Action::PlayHold], "back to the music");
    // Other keys while waiting do nothing (the menu is over).
    c.handle_media(t0, MediaIn::Dtmf('1'));
    assert!(drain(&mut c).is_empty());

    let t1 = t0 + Duration::from_secs(40);
    c.handle_queue(
        t1,
        QueueIn::Connected {
            agent: "agent3".into(),
        },
    );
    assert_eq!(drain(&mut c), vec![Action::StopPlayback]);
    assert!(!c.is_queued());
    let t2 = t1 + Duration::from_secs(120);
    c.handle_queue(t2, QueueIn::AgentHungUp);
    let actions = drain(&mut c);
    assert_eq!(
        actions[0],
        Action::Bye,
        "the caller's leg ends with the agent's"
    );
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.agent.as_deref(), Some("agent3"));
    assert_eq!(s.queue.as_deref(), Some("accueil"));
    assert_eq!(s.connected_at, Some(t1));
    assert_eq!(s.path, vec!["accueil".to_string(), "file".to_string()]);
    assert_eq!(s.hangup_by, HangupSide::Agent);
    assert_eq!(s.outcome, Outcome::Answered);
}

#[test]
fn a_caller_leaving_the_queue_is_an_abandon_and_leaves_the_queue() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_sip(t0 + Duration::from_secs(30), SipIn::Bye);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::LeaveQueue);
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Abandoned);
    assert_eq!(s.hangup_by, HangupSide::Caller);
    assert_eq!(s.agent, None);
}

#[test]
fn a_returned_call_goes_on_with_the_plan() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_queue(t0, QueueIn::Returned);
    assert_eq!(
        drain(&mut c),
        vec![
            Action::StopPlayback,
            Action::Play {
                prompts: vec![PromptItem::File("fr/information".into())]
            }
        ]
    );
    c.handle_media(t0, MediaIn::PlaybackFinished);
    assert_eq!(drain(&mut c)[0], Action::Bye);
}

#[test]
fn menu_digits_route_the_call() {
    let plan = r#"
[entries]
default = "menu"
[nodes.menu]
type = "menu"
prompts = ["fr/bienvenue"]
options = { "1" = "un", "2" = "deux" }
[nodes.un]
type = "hangup"
status = 486
[nodes.deux]
type = "hangup"
status = 603
"#;
    let t0 = Instant::now();
    let mut c = call(plan, t0);
    // A menu needs an answered call.
    assert_eq!(drain(&mut c), vec![Action::Answer]);
    c.handle_sip(t0, SipIn::Ack);
    assert!(matches!(drain(&mut c).as_slice(), [Action::Play { .. }]));
    // Barge-in: the key stops the prompt and routes at once.
    c.handle_media(t0, MediaIn::Dtmf('2'));
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::StopPlayback, "{actions:?}");
    assert!(actions.contains(&Action::Bye), "{actions:?}");
}

#[test]
fn the_callback_key_while_waiting_promises_a_callback_then_says_goodbye() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_media(t0, MediaIn::Dtmf('2'));
    assert_eq!(
        drain(&mut c),
        vec![Action::RequestCallback { number: None }]
    );
    let words = vec![PromptItem::File("fr/rappel-confirme".into())];
    c.handle_queue(
        t0,
        QueueIn::CallbackPromised {
            prompts: words.clone(),
        },
    );
    assert_eq!(
        drain(&mut c),
        vec![Action::StopPlayback, Action::Play { prompts: words }]
    );
    c.handle_media(t0 + Duration::from_secs(5), MediaIn::PlaybackFinished);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Bye, "{actions:?}");
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::CallbackPromised);
    assert_eq!(s.hangup_by, HangupSide::System);
}

#[test]
fn the_plan_sets_the_priority_of_allowlisted_callers() {
    let plan = r#"
[entries]
default = "liste"
[nodes.liste]
type = "list"
allowlist = ["+33612345678"]
match = "prioritaire"
nomatch = "file"
[nodes.prioritaire]
type = "set"
set = { priority = "5" }
next = "file"
[nodes.file]
type = "queue"
queue = "accueil"
"#;
    let t0 = Instant::now();
    let parsed = Arc::new(parse("test.toml", plan).expect("valid plan"));
    let ivr = Ivr::with_caller(
        t0,
        jiff::Timestamp::UNIX_EPOCH,
        parsed.clone(),
        "3939",
        "+33612345678",
    )
    .expect("entry");
    let mut c = Call::new(t0, ivr);
    assert_eq!(drain(&mut c), vec![Action::Answer]);
    c.handle_sip(t0, SipIn::Ack);
    assert_eq!(
        drain(&mut c)[0],
        Action::Enqueue {
            queue: "accueil".into(),
            priority: 5
        }
    );
    // Anyone else: priority 0.
    let ivr = Ivr::with_caller(
        t0,
        jiff::Timestamp::UNIX_EPOCH,
        parsed,
        "3939",
        "+33100000000",
    )
    .expect("entry");
    let mut c = Call::new(t0, ivr);
    drain(&mut c);
    c.handle_sip(t0, SipIn::Ack);
    assert_eq!(
        drain(&mut c)[0],
        Action::Enqueue {
            queue: "accueil".into(),
            priority: 0
        }
    );
}

const TRANSFER: &str = r#"
[entries]
default = "transfert"
[nodes.transfert]
type = "transfer"
target = "sip:partenaire@127.0.0.1"
method = "invite"
next = "desole"
[nodes.desole]
type = "play"
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
"#;

#[test]
fn a_transfer_by_invite_bridges_then_ends_with_the_partner() {
    let t0 = Instant::now();
    let mut c = call(TRANSFER, t0);
    assert_eq!(drain(&mut c), vec![Action::Answer], "answered first");
    c.handle_sip(t0, SipIn::Ack);
    let actions = drain(&mut c);
    assert!(
        matches!(&actions[0], Action::Transfer { target, .. } if target == "sip:partenaire@127.0.0.1"),
        "{actions:?}"
    );
    c.handle_transfer(t0, TransferIn::Connected);
    assert_eq!(drain(&mut c), vec![Action::StopPlayback]);
    c.handle_transfer(t0 + Duration::from_secs(60), TransferIn::PartnerHungUp);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Bye);
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Transferred);
    assert_eq!(s.hangup_by, HangupSide::Partner);
    assert_eq!(
        s.transferred_to.as_deref(),
        Some("sip:partenaire@127.0.0.1")
    );
}

#[test]
fn a_failed_transfer_goes_on_with_the_plan() {
    let t0 = Instant::now();
    let mut c = call(TRANSFER, t0);
    drain(&mut c);
    c.handle_sip(t0, SipIn::Ack);
    drain(&mut c);
    c.handle_transfer(t0, TransferIn::Failed);
    assert_eq!(
        drain(&mut c),
        vec![Action::Play {
            prompts: vec![PromptItem::File("fr/information".into())]
        }]
    );
}

#[test]
fn an_agent_transfer_calls_the_partner_with_music_meanwhile() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_queue(
        t0,
        QueueIn::Connected {
            agent: "agent1".into(),
        },
    );
    drain(&mut c);
    c.handle_queue(
        t0,
        QueueIn::AgentTransfer {
            target: "sip:agent5@pbx".into(),
        },
    );
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::PlayHold);
    assert!(matches!(&actions[1], Action::Transfer { target, .. } if target == "sip:agent5@pbx"));
    c.handle_transfer(t0, TransferIn::Connected);
    assert_eq!(drain(&mut c), vec![Action::StopPlayback]);
    c.handle_sip(t0 + Duration::from_secs(30), SipIn::Bye);
    let actions = drain(&mut c);
    let [Action::Finished(s)] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Transferred);
    assert_eq!(s.agent.as_deref(), Some("agent1"), "who answered first");
    assert_eq!(s.transferred_to.as_deref(), Some("sip:agent5@pbx"));
    assert_eq!(s.hangup_by, HangupSide::Caller);
}

#[test]
fn an_overflow_to_a_partner_transfers_a_waiting_caller() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_queue(
        t0,
        QueueIn::AgentTransfer {
            target: "sip:partner@pbx".into(),
        },
    );
    let actions = drain(&mut c);
    assert!(
        matches!(&actions[1], Action::Transfer { .. }),
        "{actions:?}"
    );
    assert!(!c.is_queued());
    c.handle_transfer(t0, TransferIn::Connected);
    c.handle_transfer(t0, TransferIn::PartnerHungUp);
    let actions = drain(&mut c);
    let Some(Action::Finished(s)) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Transferred);
    assert_eq!(s.agent, None);
}

#[test]
fn a_callback_number_can_be_typed_while_waiting() {
    let t0 = Instant::now();
    let mut c = queued_call(t0);
    c.handle_media(t0, MediaIn::Dtmf('3'));
    assert_eq!(
        drain(&mut c),
        vec![Action::Play {
            prompts: vec![PromptItem::File("fr/rappel-numero".into())]
        }]
    );
    // Too short: asked again.
    for d in ['1', '2', '#'] {
        c.handle_media(t0, MediaIn::Dtmf(d));
    }
    assert!(matches!(drain(&mut c).as_slice(), [Action::Play { .. }]));
    for d in "0612345678#".chars() {
        c.handle_media(t0, MediaIn::Dtmf(d));
    }
    assert_eq!(
        drain(&mut c),
        vec![Action::RequestCallback {
            number: Some("0612345678".into())
        }]
    );
    // '*' gives up and goes back to the music.
    c.handle_media(t0, MediaIn::Dtmf('3'));
    drain(&mut c);
    c.handle_media(t0, MediaIn::Dtmf('0'));
    c.handle_media(t0, MediaIn::Dtmf('*'));
    assert_eq!(drain(&mut c), vec![Action::PlayHold]);
}

const AFTER_AGENT: &str = r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "file"
[nodes.file]
type = "queue"
queue = "accueil"
after = "enquete"
[nodes.enquete]
type = "survey"
prompts = ["fr/enquete"]
variable = "satisfaction"
thanks = ["fr/merci"]
next = "fin"
[nodes.fin]
type = "hangup"
"#;

/// Queued with the plan above, then taken by agent3 at `t1`.
fn connected_with_after(t0: Instant, t1: Instant) -> Call {
    let mut c = call(AFTER_AGENT, t0);
    drain(&mut c);
    c.handle_media(t0, MediaIn::PlaybackFinished);
    c.handle_sip(t0, SipIn::Ack);
    drain(&mut c);
    assert!(c.is_queued());
    c.handle_queue(
        t1,
        QueueIn::Connected {
            agent: "agent3".into(),
        },
    );
    assert_eq!(drain(&mut c), vec![Action::StopPlayback]);
    c
}

#[test]
fn after_the_agent_hangs_up_the_caller_answers_the_survey() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(30);
    let mut c = connected_with_after(t0, t1);
    // While talking, the caller's keys are for the agent, not the survey.
    c.handle_media(t1, MediaIn::Dtmf('1'));
    assert!(drain(&mut c).is_empty());
    let t2 = t1 + Duration::from_secs(200);
    c.handle_queue(t2, QueueIn::AgentHungUp);
    assert_eq!(
        drain(&mut c),
        vec![
            Action::Unbridge,
            Action::Play {
                prompts: vec![PromptItem::File("fr/enquete".into())]
            }
        ],
        "the caller stays and hears the survey"
    );
    c.handle_media(t2, MediaIn::Dtmf('4'));
    assert_eq!(
        drain(&mut c),
        vec![
            Action::StopPlayback,
            Action::Play {
                prompts: vec![PromptItem::File("fr/merci".into())]
            }
        ]
    );
    c.handle_media(t2, MediaIn::PlaybackFinished);
    let actions = drain(&mut c);
    assert_eq!(actions[0], Action::Bye);
    let Action::Finished(s) = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.agent.as_deref(), Some("agent3"));
    assert_eq!(s.connected_at, Some(t1));
    assert_eq!(
        s.variables.get("satisfaction").map(String::as_str),
        Some("4")
    );
    assert_eq!(s.hangup_by, HangupSide::System);
    assert_eq!(s.path, vec!["accueil", "file", "enquete", "fin"]);
}

#[test]
fn a_caller_hanging_up_first_never_reaches_the_survey() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(30);
    let mut c = connected_with_after(t0, t1);
    c.handle_sip(t1 + Duration::from_secs(60), SipIn::Bye);
    let actions = drain(&mut c);
    let Some(Action::Finished(s)) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (s.outcome, s.hangup_by),
        (Outcome::Answered, HangupSide::Caller)
    );
    assert_eq!(s.agent.as_deref(), Some("agent3"));
    assert!(s.variables.is_empty());
    // A late hang-up report of the agent changes nothing.
    c.handle_queue(t1 + Duration::from_secs(61), QueueIn::AgentHungUp);
    assert!(drain(&mut c).is_empty());
}

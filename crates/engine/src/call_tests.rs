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
    Call::new(now, Ivr::new(now, plan, "3939").expect("entry"))
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

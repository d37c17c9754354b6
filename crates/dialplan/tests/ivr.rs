//! The interpreter driven with virtual time: a base Instant plus Durations, stepping to
//! `poll_timeout`, with a bounded number of steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ld_dialplan::{parse, DialplanError, Ivr, IvrAction, IvrEvent, PromptItem, MAX_STEPS};

fn plan(text: &str) -> Arc<ld_dialplan::Dialplan> {
    Arc::new(parse("t.toml", text).unwrap_or_else(|d| panic!("{d}")))
}

/// Any wall time: these plans have no hours.
fn wall() -> jiff::Timestamp {
    jiff::Timestamp::UNIX_EPOCH
}

fn drain(ivr: &mut Ivr) -> Vec<IvrAction> {
    std::iter::from_fn(|| ivr.poll_action()).collect()
}

/// A well-behaved edge: plays take `play_len`, answers are confirmed at once. Returns the
/// actions with the virtual time they were issued at.
fn run_call(ivr: &mut Ivr, start: Instant, play_len: Duration) -> Vec<(Duration, IvrAction)> {
    let mut now = start;
    let mut log = Vec::new();
    for _ in 0..100 {
        let actions = drain(ivr);
        for a in &actions {
            log.push((now - start, a.clone()));
        }
        if ivr.is_finished() {
            return log;
        }
        match actions.last() {
            Some(IvrAction::Play { .. }) => {
                now += play_len;
                ivr.handle_event(now, IvrEvent::PlaybackFinished);
            }
            Some(IvrAction::Answer) => ivr.handle_event(now, IvrEvent::Answered),
            _ => {
                let t = ivr.poll_timeout().expect("waiting on nothing");
                assert!(t >= now, "timer in the past");
                now = t;
                ivr.handle_timeout(now);
            }
        }
    }
    panic!("call did not end in 100 steps: {log:?}");
}

const DEFAULT: &str = include_str!("../../../dialplans/default.toml");

#[test]
fn default_plan_early_media_then_answer_then_bye() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, wall(), plan(DEFAULT), "3939").expect("entry");
    let log = run_call(&mut ivr, t0, Duration::from_secs(3));
    let s = Duration::from_secs;
    assert_eq!(
        log,
        vec![
            (
                s(0),
                IvrAction::Play {
                    prompts: vec![
                        PromptItem::File("fr/bienvenue".into()),
                        PromptItem::EstimatedWait
                    ],
                    early: true
                }
            ),
            (s(3), IvrAction::Answer),
            (
                s(3),
                IvrAction::Play {
                    prompts: vec![PromptItem::File("fr/information".into())],
                    early: false
                }
            ),
            // After answer the status is meaningless (a BYE), so it is never set.
            (s(6), IvrAction::Hangup { status: None }),
        ]
    );
    assert!(ivr.poll_timeout().is_none());
}

#[test]
fn pause_arms_a_timer_and_ignores_early_timeouts() {
    let text = r#"[entries]
default = "p"
[nodes.p]
type = "pause"
duration = "1500ms"
next = "f"
[nodes.f]
type = "hangup"
status = 503
"#;
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, wall(), plan(text), "x").expect("entry");
    assert!(drain(&mut ivr).is_empty());
    let deadline = ivr.poll_timeout().expect("timer");
    assert_eq!(deadline - t0, Duration::from_millis(1500));
    // A spurious wake-up before the deadline changes nothing.
    ivr.handle_timeout(t0 + Duration::from_millis(1499));
    assert!(drain(&mut ivr).is_empty());
    assert!(!ivr.is_finished());
    // Events nobody waits for are ignored.
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('5'));
    assert_eq!(ivr.poll_timeout(), Some(deadline));
    ivr.handle_timeout(deadline);
    // Not answered: the configured status is the final response.
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Hangup { status: Some(503) }]
    );
    assert!(ivr.is_finished());
}

#[test]
fn answer_waits_for_confirmation_and_passes_through_once_answered() {
    let text = r#"[entries]
default = "a1"
[nodes.a1]
type = "answer"
next = "a2"
[nodes.a2]
type = "answer"
next = "m"
[nodes.m]
type = "play"
prompts = ["fr/x"]
"#;
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, wall(), plan(text), "x").expect("entry");
    assert_eq!(drain(&mut ivr), vec![IvrAction::Answer]);
    ivr.handle_event(t0, IvrEvent::PlaybackFinished); // not what it waits for
    assert!(drain(&mut ivr).is_empty());
    ivr.handle_event(t0, IvrEvent::Answered);
    // The second answer node goes on at once; the play has no `next`, so a BYE follows it.
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Play {
            prompts: vec![PromptItem::File("fr/x".into())],
            early: false
        }]
    );
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    assert_eq!(drain(&mut ivr), vec![IvrAction::Hangup { status: None }]);
    assert!(ivr.is_finished());
    assert!(ivr.failure().is_none());
}

#[test]
fn early_play_after_answer_is_played_as_normal_media() {
    // `b` is early for callers entering at `b`, but 3939 answers first.
    let text = r#"[entries]
default = "b"
"3939" = "ans"
[nodes.ans]
type = "answer"
next = "b"
[nodes.b]
type = "play"
early = true
prompts = ["fr/x"]
"#;
    let t0 = Instant::now();
    let p = plan(text);
    let mut ivr = Ivr::new(t0, wall(), p.clone(), "3939").expect("entry");
    let log = run_call(&mut ivr, t0, Duration::from_secs(1));
    assert!(
        log.iter()
            .any(|(_, a)| matches!(a, IvrAction::Play { early: false, .. })),
        "{log:?}"
    );
    let mut ivr = Ivr::new(t0, wall(), p, "0100").expect("entry");
    assert!(matches!(
        drain(&mut ivr)[..],
        [IvrAction::Play { early: true, .. }]
    ));
}

#[test]
fn no_entry_is_an_error() {
    let p = plan("[entries]\n\"3939\" = \"f\"\n[nodes.f]\ntype = \"hangup\"\n");
    let err = Ivr::new(Instant::now(), wall(), p.clone(), "1234").expect_err("no default");
    assert_eq!(err, DialplanError::NoEntry("1234".into()));
    assert!(Ivr::new(Instant::now(), wall(), p, "3939").is_ok());
}

#[test]
fn step_guard_hangs_up_a_spinning_plan() {
    // The checks refuse silent loops, so the guard is reached here with a legal plan: a
    // chain of more than MAX_STEPS answer nodes, all passed through once answered.
    let mut text = String::from("[entries]\ndefault = \"n0\"\n");
    let n = MAX_STEPS + 5;
    for i in 0..n {
        text.push_str(&format!(
            "[nodes.n{i}]\ntype = \"answer\"\nnext = \"n{}\"\n",
            i + 1
        ));
    }
    text.push_str(&format!("[nodes.n{n}]\ntype = \"hangup\"\n"));
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, wall(), plan(&text), "x").expect("entry");
    assert_eq!(drain(&mut ivr), vec![IvrAction::Answer]);
    ivr.handle_event(t0, IvrEvent::Answered);
    assert_eq!(drain(&mut ivr), vec![IvrAction::Hangup { status: None }]);
    assert!(ivr.is_finished());
    assert_eq!(ivr.failure(), Some(&DialplanError::StepLimit(MAX_STEPS)));
}

#[test]
fn a_chain_shorter_than_the_guard_completes() {
    let mut text = String::from("[entries]\ndefault = \"n0\"\n");
    let n = MAX_STEPS - 2;
    for i in 0..n {
        text.push_str(&format!(
            "[nodes.n{i}]\ntype = \"answer\"\nnext = \"n{}\"\n",
            i + 1
        ));
    }
    text.push_str(&format!("[nodes.n{n}]\ntype = \"hangup\"\n"));
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, wall(), plan(&text), "x").expect("entry");
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::Answered);
    assert_eq!(drain(&mut ivr), vec![IvrAction::Hangup { status: None }]);
    assert!(ivr.failure().is_none());
}

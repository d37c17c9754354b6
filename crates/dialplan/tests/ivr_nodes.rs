//! The new node kinds driven with virtual time: menus (routing, timeout replay then
//! fallback, invalid choice, barge-in), hours at fixed instants on the shipped plan,
//! lists, set/goto, consent, queue, transfer, voicemail, callback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ld_dialplan::{
    parse, parse_with, Dialplan, Ivr, IvrAction, IvrEvent, PromptItem, QueueResult, TransferMethod,
};

fn plan(text: &str) -> Arc<Dialplan> {
    Arc::new(parse("t.toml", text).unwrap_or_else(|d| panic!("{d}")))
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn drain(ivr: &mut Ivr) -> Vec<IvrAction> {
    std::iter::from_fn(|| ivr.poll_action()).collect()
}

fn say(t: &str) -> PromptItem {
    PromptItem::Say(t.into())
}

fn file(t: &str) -> PromptItem {
    PromptItem::File(t.into())
}

fn play(prompts: Vec<PromptItem>, early: bool) -> IvrAction {
    IvrAction::Play { prompts, early }
}

const MENU: &str = r#"
[entries]
default = "m"
[nodes.m]
type = "menu"
prompts = ["fr/menu"]
invalid = ["fr/invalide"]
options = { "1" = "un", "2" = "deux", "9" = "m" }
timeout = "5s"
retries = 2
fallback = "secours"
[nodes.un]
type = "play"
prompts = ["fr/un"]
[nodes.deux]
type = "play"
prompts = ["fr/deux"]
[nodes.secours]
type = "play"
prompts = ["fr/secours"]
"#;

#[test]
fn menu_routes_digits() {
    let t0 = Instant::now();
    let p = plan(MENU);
    for (key, target) in [('1', "fr/un"), ('2', "fr/deux")] {
        let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), p.clone(), "x").expect("entry");
        assert_eq!(drain(&mut ivr), vec![play(vec![file("fr/menu")], false)]);
        let t1 = t0 + Duration::from_secs(4);
        ivr.handle_event(t1, IvrEvent::PlaybackFinished);
        assert_eq!(ivr.poll_timeout(), Some(t1 + Duration::from_secs(5)));
        assert!(drain(&mut ivr).is_empty());
        ivr.handle_event(t1 + Duration::from_secs(1), IvrEvent::Dtmf(key));
        assert_eq!(drain(&mut ivr), vec![play(vec![file(target)], false)]);
        assert_eq!(ivr.poll_timeout(), None);
    }
}

#[test]
fn menu_timeout_replays_then_falls_back() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(MENU), "x").expect("entry");
    let mut now = t0;
    let mut log = Vec::new();
    for _ in 0..20 {
        let actions = drain(&mut ivr);
        log.extend(actions.iter().cloned().map(|a| (now - t0, a)));
        if actions.contains(&play(vec![file("fr/secours")], false)) {
            break;
        }
        if actions.is_empty() {
            // Waiting for a key: nobody presses one.
            now = ivr.poll_timeout().expect("a timer while waiting");
            ivr.handle_timeout(now);
        } else {
            now += Duration::from_secs(3);
            ivr.handle_event(now, IvrEvent::PlaybackFinished);
        }
    }
    let s = Duration::from_secs;
    // Played once, then replayed twice (retries = 2), each after 5 s of silence.
    assert_eq!(
        log,
        vec![
            (s(0), play(vec![file("fr/menu")], false)),
            (s(8), play(vec![file("fr/menu")], false)),
            (s(16), play(vec![file("fr/menu")], false)),
            (s(24), play(vec![file("fr/secours")], false)),
        ]
    );
}

#[test]
fn menu_invalid_choice_then_valid() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(MENU), "x").expect("entry");
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('7'));
    assert_eq!(
        drain(&mut ivr),
        vec![play(vec![file("fr/invalide")], false)]
    );
    assert_eq!(ivr.poll_timeout(), None, "no timer while the prompt plays");
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    assert_eq!(drain(&mut ivr), vec![play(vec![file("fr/menu")], false)]);
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('2'));
    assert_eq!(drain(&mut ivr), vec![play(vec![file("fr/deux")], false)]);
    // Three invalid keys exhaust the retries: fallback.
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(MENU), "x").expect("entry");
    drain(&mut ivr);
    for _ in 0..2 {
        ivr.handle_event(t0, IvrEvent::PlaybackFinished);
        ivr.handle_event(t0, IvrEvent::Dtmf('5'));
        assert_eq!(
            drain(&mut ivr),
            vec![play(vec![file("fr/invalide")], false)]
        );
        ivr.handle_event(t0, IvrEvent::PlaybackFinished);
        drain(&mut ivr);
    }
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('5'));
    assert_eq!(drain(&mut ivr), vec![play(vec![file("fr/secours")], false)]);
}

#[test]
fn menu_barge_in_stops_the_prompt() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(MENU), "x").expect("entry");
    drain(&mut ivr);
    // A key while the menu still plays: stop it, route at once.
    ivr.handle_event(t0 + Duration::from_secs(1), IvrEvent::Dtmf('1'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(vec![file("fr/un")], false)]
    );
    // "9" re-enters the menu itself, with fresh retries.
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(MENU), "x").expect("entry");
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::Dtmf('9'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(vec![file("fr/menu")], false)]
    );
    // Keys during the invalid-choice prompt barge in too; non-DTMF characters are ignored.
    ivr.handle_event(t0, IvrEvent::Dtmf('x'));
    assert!(drain(&mut ivr).is_empty());
    ivr.handle_event(t0, IvrEvent::Dtmf('4'));
    assert_eq!(
        drain(&mut ivr),
        vec![
            IvrAction::StopPlayback,
            play(vec![file("fr/invalide")], false)
        ]
    );
    ivr.handle_event(t0, IvrEvent::Dtmf('2'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(vec![file("fr/deux")], false)]
    );
}

const SHIPPED: &str = include_str!("../../../dialplans/ligne-directe.toml");

fn shipped() -> Arc<Dialplan> {
    let queues = vec!["accueil".to_string()];
    Arc::new(
        parse_with("ligne-directe.toml", SHIPPED, Some(&queues)).unwrap_or_else(|d| panic!("{d}")),
    )
}

/// Runs the shipped plan up to its first non-early action or its end, at `wall`.
fn shipped_call(wall: &str) -> Vec<IvrAction> {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts(wall), shipped(), "3939").expect("entry");
    let mut log = Vec::new();
    let mut now = t0;
    for _ in 0..10 {
        let actions = drain(&mut ivr);
        log.extend(actions.iter().cloned());
        match actions.last() {
            Some(IvrAction::Play { early: true, .. }) => {
                now += Duration::from_secs(4);
                ivr.handle_event(now, IvrEvent::PlaybackFinished);
            }
            _ => return log,
        }
    }
    panic!("too many steps: {log:?}");
}

const HOURS: &str = "Le service est ouvert du lundi au vendredi de 18 heures à 22 heures.";

#[test]
fn shipped_plan_open_monday_evening() {
    // Monday 4 May 2026, 19:00 CEST.
    let log = shipped_call("2026-05-04T17:00:00Z");
    assert_eq!(log[0], play(vec![file("fr/bienvenue")], true));
    assert_eq!(log[1], play(vec![PromptItem::EstimatedWait], true));
    match &log[2] {
        IvrAction::Play { prompts, early } => {
            assert!(!early, "the menu is answered");
            assert!(matches!(&prompts[0], PromptItem::Say(t) if t.contains("tapez 1")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.len(), 3);
}

#[test]
fn shipped_plan_closed_before_opening() {
    // Monday 4 May 2026, 17:59 CEST.
    let log = shipped_call("2026-05-04T15:59:00Z");
    assert_eq!(
        log,
        vec![
            play(vec![file("fr/bienvenue")], true),
            play(
                vec![
                    say(HOURS),
                    say("Il rouvrira aujourd'hui"),
                    // Wall time moved on during the welcome (4 s), still before 18:00.
                    say("à 18 heures.")
                ],
                true
            ),
            IvrAction::Hangup { status: Some(480) },
        ]
    );
}

#[test]
fn shipped_plan_closed_on_14_july_and_saturday() {
    // Tuesday 14 July 2026, 19:00 CEST: reopens on Wednesday 15.
    let log = shipped_call("2026-07-14T17:00:00Z");
    assert_eq!(
        log[1],
        play(
            vec![say(HOURS), say("Il rouvrira demain"), say("à 18 heures.")],
            true
        )
    );
    assert_eq!(log[2], IvrAction::Hangup { status: Some(480) });
    // Saturday 9 May 2026, 19:00: reopens Monday 11 May.
    let log = shipped_call("2026-05-09T17:00:00Z");
    assert_eq!(
        log[1],
        play(
            vec![
                say(HOURS),
                say("Il rouvrira lundi"),
                say("11"),
                say("mai"),
                say("à 18 heures.")
            ],
            true
        )
    );
    assert_eq!(log[2], IvrAction::Hangup { status: Some(480) });
}

#[test]
fn wall_time_follows_the_call() {
    // 17:59:58 at the start; the welcome lasts 4 s, so the hours node runs at 18:00:02.
    let log = shipped_call("2026-05-04T15:59:58Z");
    assert_eq!(log[1], play(vec![PromptItem::EstimatedWait], true));
}

#[test]
fn shipped_plan_consent_then_queue_then_callback() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts("2026-05-04T17:00:00Z"), shipped(), "x").expect("entry");
    for _ in 0..2 {
        drain(&mut ivr);
        ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    }
    drain(&mut ivr); // the menu
    ivr.handle_event(t0, IvrEvent::Answered);
    ivr.handle_event(t0, IvrEvent::Dtmf('1'));
    let a = drain(&mut ivr);
    assert_eq!(a[0], IvrAction::StopPlayback);
    assert!(
        matches!(&a[1], IvrAction::Play { prompts, .. } if matches!(&prompts[0], PromptItem::Say(t) if t.contains("Acceptez-vous")))
    );
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('1'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Enqueue {
            queue: "accueil".into()
        }]
    );
    assert_eq!(
        ivr.variables().get("consent").map(String::as_str),
        Some("yes")
    );
    assert!(!ivr.is_finished(), "waits for the queue");
    ivr.handle_event(t0, IvrEvent::QueueResult(QueueResult::Returned));
    let a = drain(&mut ivr);
    assert!(
        matches!(&a[0], IvrAction::Play { early: false, .. }),
        "{a:?}"
    );
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    assert_eq!(drain(&mut ivr), vec![IvrAction::OfferCallback]);
    assert!(ivr.is_finished());
}

#[test]
fn consent_no_and_silence() {
    let text = r#"
[entries]
default = "c"
[nodes.c]
type = "consent"
prompts = ["fr/question"]
yes = "1"
no = "2"
timeout = "3s"
retries = 0
next = "q"
[nodes.q]
type = "queue"
queue = "accueil"
"#;
    let t0 = Instant::now();
    let p = plan(text);
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), p.clone(), "x").expect("entry");
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    ivr.handle_event(t0, IvrEvent::Dtmf('2'));
    assert_eq!(
        ivr.variables().get("consent").map(String::as_str),
        Some("no")
    );
    // Silence: no consent.
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), p, "x").expect("entry");
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    let t = ivr.poll_timeout().expect("timer");
    assert_eq!(t, t0 + Duration::from_secs(3));
    ivr.handle_timeout(t);
    assert_eq!(
        ivr.variables().get("consent").map(String::as_str),
        Some("no")
    );
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Enqueue {
            queue: "accueil".into()
        }]
    );
    ivr.handle_event(t, IvrEvent::QueueResult(QueueResult::Connected));
    assert!(ivr.is_finished());
    assert!(
        drain(&mut ivr).is_empty(),
        "connected: no hangup from the IVR"
    );
}

const LISTS: &str = r#"
[entries]
default = "bloque"
[nodes.bloque]
type = "list"
blocklist = ["06 12 34 56 78", "+3389*"]
match = "refus"
nomatch = "marque"
[nodes.marque]
type = "set"
set = { parcours = "standard", langue = "fr" }
next = "saut"
[nodes.saut]
type = "goto"
next = "fin"
[nodes.refus]
type = "hangup"
status = 603
[nodes.fin]
type = "hangup"
"#;

#[test]
fn blocklist_set_and_goto() {
    let t0 = Instant::now();
    let p = plan(LISTS);
    let wall = ts("2026-01-01T00:00:00Z");
    for blocked in [
        "+33612345678",
        "0612345678",
        "+33891000000",
        "0033 6 12 34 56 78",
    ] {
        let mut ivr = Ivr::with_caller(t0, wall, p.clone(), "x", blocked).expect("entry");
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::Hangup { status: Some(603) }],
            "{blocked}"
        );
        assert!(ivr.variables().is_empty());
    }
    for free in ["+33612345679", "anonymous", ""] {
        let mut ivr = Ivr::with_caller(t0, wall, p.clone(), "x", free).expect("entry");
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::Hangup { status: None }],
            "{free}"
        );
        assert_eq!(
            ivr.variables().get("parcours").map(String::as_str),
            Some("standard")
        );
        assert_eq!(
            ivr.variables().get("langue").map(String::as_str),
            Some("fr")
        );
    }
}

#[test]
fn allowlist_matches_listed_callers() {
    let text = LISTS.replace("blocklist", "allowlist");
    let p = plan(&text);
    let t0 = Instant::now();
    let wall = ts("2026-01-01T00:00:00Z");
    let mut ivr = Ivr::with_caller(t0, wall, p.clone(), "x", "0612345678").expect("entry");
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Hangup { status: Some(603) }]
    );
    let mut ivr = Ivr::with_caller(t0, wall, p, "x", "0700000000").expect("entry");
    assert_eq!(drain(&mut ivr), vec![IvrAction::Hangup { status: None }]);
}

#[test]
fn transfer_voicemail_and_callback() {
    let text = r#"
[entries]
default = "t"
[nodes.t]
type = "transfer"
target = "sip:accueil@prefecture.example"
method = "invite"
next = "messagerie"
[nodes.messagerie]
type = "voicemail"
prompts = [{ say = "Laissez votre message après le bip." }]
max = "1min30s"
next = "rappel"
[nodes.rappel]
type = "callback"
"#;
    let t0 = Instant::now();
    let mut ivr = Ivr::new(t0, ts("2026-01-01T00:00:00Z"), plan(text), "x").expect("entry");
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Transfer {
            target: "sip:accueil@prefecture.example".into(),
            method: TransferMethod::Invite
        }]
    );
    ivr.handle_event(t0, IvrEvent::TransferFailed);
    assert_eq!(
        drain(&mut ivr),
        vec![play(
            vec![say("Laissez votre message après le bip.")],
            false
        )]
    );
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::Record {
            max: Duration::from_secs(90)
        }]
    );
    // A stray playback event while recording changes nothing.
    ivr.handle_event(t0, IvrEvent::PlaybackFinished);
    assert!(drain(&mut ivr).is_empty());
    ivr.handle_event(t0, IvrEvent::RecordFinished);
    assert_eq!(drain(&mut ivr), vec![IvrAction::OfferCallback]);
    assert!(ivr.is_finished());
}

//! The `survey` node: a satisfaction mark from 1 to `scale`, driven with virtual time
//! (barge-in, timeouts and replays, invalid keys, thanks), and its validation with exact
//! line:column positions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ld_dialplan::{parse, Dialplan, Ivr, IvrAction, IvrEvent, NodeKind, PromptItem};

fn plan(text: &str) -> Arc<Dialplan> {
    Arc::new(parse("t.toml", text).unwrap_or_else(|d| panic!("{d}")))
}

fn start(p: &Arc<Dialplan>, now: Instant) -> Ivr {
    let wall: Timestamp = "2026-03-02T18:30:00Z".parse().expect("timestamp");
    Ivr::new(now, wall, p.clone(), "3939").expect("entry")
}

fn drain(ivr: &mut Ivr) -> Vec<IvrAction> {
    std::iter::from_fn(|| ivr.poll_action()).collect()
}

fn play(names: &[&str]) -> IvrAction {
    IvrAction::Play {
        prompts: names
            .iter()
            .map(|n| PromptItem::File((*n).into()))
            .collect(),
        early: false,
    }
}

/// Steps virtual time to each deadline, at most `bound` times, collecting actions; stops
/// when there is no deadline left.
fn run_timeouts(ivr: &mut Ivr, now: &mut Instant, bound: usize) -> Vec<IvrAction> {
    let mut out = Vec::new();
    for _ in 0..bound {
        let Some(at) = ivr.poll_timeout() else { break };
        *now = at;
        ivr.handle_timeout(at);
        out.extend(drain(ivr));
    }
    out
}

const SURVEY: &str = r#"
[entries]
default = "enquete"

[nodes.enquete]
type = "survey"
prompts = ["fr/enquete"]
scale = 5
variable = "satisfaction"
timeout = "4s"
retries = 1
invalid = ["fr/invalide"]
thanks = ["fr/merci"]
next = "fin"

[nodes.fin]
type = "play"
prompts = ["fr/au-revoir"]
"#;

#[test]
fn a_key_during_the_question_stops_it_is_stored_and_thanked() {
    let t0 = Instant::now();
    let p = plan(SURVEY);
    let mut ivr = start(&p, t0);
    assert_eq!(drain(&mut ivr), vec![play(&["fr/enquete"])]);
    // No timer while the question plays.
    assert_eq!(ivr.poll_timeout(), None);
    let t1 = t0 + Duration::from_secs(2);
    ivr.handle_event(t1, IvrEvent::Dtmf('4'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(&["fr/merci"])]
    );
    assert_eq!(
        ivr.variables().get("satisfaction").map(String::as_str),
        Some("4")
    );
    // Keys during the thanks change nothing.
    ivr.handle_event(t1, IvrEvent::Dtmf('1'));
    assert!(drain(&mut ivr).is_empty());
    ivr.handle_event(t1 + Duration::from_secs(2), IvrEvent::PlaybackFinished);
    assert_eq!(drain(&mut ivr), vec![play(&["fr/au-revoir"])]);
    assert_eq!(
        ivr.variables().get("satisfaction").map(String::as_str),
        Some("4")
    );
    assert_eq!(ivr.path(), vec!["enquete", "fin"]);
}

#[test]
fn a_key_after_the_question_within_the_timeout() {
    let t0 = Instant::now();
    let p = plan(SURVEY);
    let mut ivr = start(&p, t0);
    drain(&mut ivr);
    let t1 = t0 + Duration::from_secs(6);
    ivr.handle_event(t1, IvrEvent::PlaybackFinished);
    assert_eq!(ivr.poll_timeout(), Some(t1 + Duration::from_secs(4)));
    ivr.handle_event(t1 + Duration::from_secs(3), IvrEvent::Dtmf('5'));
    // Nothing to stop: the question was over.
    assert_eq!(drain(&mut ivr), vec![play(&["fr/merci"])]);
    assert_eq!(ivr.poll_timeout(), None);
    assert_eq!(ivr.variables()["satisfaction"], "5");
}

#[test]
fn keys_outside_the_scale_are_invalid_then_the_question_again() {
    let t0 = Instant::now();
    let p = plan(SURVEY);
    for bad in ['6', '0', '9', '#', '*'] {
        let mut ivr = start(&p, t0);
        drain(&mut ivr);
        ivr.handle_event(t0, IvrEvent::PlaybackFinished);
        ivr.handle_event(t0 + Duration::from_secs(1), IvrEvent::Dtmf(bad));
        assert_eq!(drain(&mut ivr), vec![play(&["fr/invalide"])], "{bad}");
        ivr.handle_event(t0 + Duration::from_secs(2), IvrEvent::PlaybackFinished);
        assert_eq!(drain(&mut ivr), vec![play(&["fr/enquete"])], "{bad}");
        // Letters are not keys of a phone pad answer: ignored altogether.
        ivr.handle_event(t0 + Duration::from_secs(2), IvrEvent::Dtmf('A'));
        assert!(drain(&mut ivr).is_empty());
        ivr.handle_event(t0 + Duration::from_secs(3), IvrEvent::Dtmf('1'));
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::StopPlayback, play(&["fr/merci"])]
        );
        assert_eq!(ivr.variables()["satisfaction"], "1");
    }
    // Invalid keys until the retries are spent: nothing stored, on to `next`.
    let mut ivr = start(&p, t0);
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::Dtmf('7'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(&["fr/invalide"])]
    );
    ivr.handle_event(t0, IvrEvent::Dtmf('8'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, play(&["fr/au-revoir"])]
    );
    assert!(ivr.variables().is_empty());
}

#[test]
fn no_answer_replays_once_then_goes_on_without_a_mark() {
    let t0 = Instant::now();
    let p = plan(SURVEY);
    let mut ivr = start(&p, t0);
    let mut now = t0;
    assert_eq!(drain(&mut ivr), vec![play(&["fr/enquete"])]);
    now += Duration::from_secs(5);
    ivr.handle_event(now, IvrEvent::PlaybackFinished);
    let asked_at = now;
    let replay = run_timeouts(&mut ivr, &mut now, 10);
    assert_eq!(replay, vec![play(&["fr/enquete"])]);
    assert_eq!(now, asked_at + Duration::from_secs(4));
    now += Duration::from_secs(5);
    ivr.handle_event(now, IvrEvent::PlaybackFinished);
    let second = now;
    let rest = run_timeouts(&mut ivr, &mut now, 10);
    // No thanks without an answer: straight to `next`.
    assert_eq!(rest, vec![play(&["fr/au-revoir"])]);
    assert_eq!(now, second + Duration::from_secs(4));
    assert!(ivr.variables().is_empty());
    assert_eq!(ivr.poll_timeout(), None);
}

#[test]
fn defaults_scale_variable_timeout_retries_and_no_thanks() {
    let p = plan(
        r#"
[entries]
default = "s"
[nodes.s]
type = "survey"
prompts = [{ say = "Sur une échelle de 1 à 5, êtes-vous satisfait de cet appel ?" }]
next = "fin"
[nodes.fin]
type = "hangup"
"#,
    );
    let node = p.node(p.node_id("s").expect("node")).expect("node");
    let NodeKind::Survey {
        question,
        scale,
        variable,
        thanks,
        next,
    } = &node.kind
    else {
        panic!("{:?}", node.kind);
    };
    assert_eq!((*scale, variable.as_str()), (5, "survey"));
    assert_eq!(question.timeout, Duration::from_secs(5));
    assert_eq!(question.retries, 1);
    assert!(!question.early && question.invalid.is_empty() && thanks.is_empty());
    assert_eq!(*next, p.node_id("fin"));
    assert_eq!(p.survey_variables(), vec![("survey".to_owned(), 5)]);
    assert_eq!(
        p.say_texts(),
        vec!["Sur une échelle de 1 à 5, êtes-vous satisfait de cet appel ?".to_owned()]
    );

    // Without thanks, an answer goes straight on; `next` here ends the call with a BYE
    // (the question answered it).
    let t0 = Instant::now();
    let mut ivr = start(&p, t0);
    drain(&mut ivr);
    ivr.handle_event(t0, IvrEvent::Answered);
    ivr.handle_event(t0, IvrEvent::Dtmf('3'));
    assert_eq!(
        drain(&mut ivr),
        vec![IvrAction::StopPlayback, IvrAction::Hangup { status: None }]
    );
    assert_eq!(ivr.variables()["survey"], "3");
    assert!(ivr.is_finished());
}

#[test]
fn scale_bounds_the_keys() {
    let text = |scale: u8| {
        format!(
            "[entries]\ndefault = \"s\"\n[nodes.s]\ntype = \"survey\"\nprompts = [\"fr/q\"]\nscale = {scale}\nretries = 0\nnext = \"f\"\n[nodes.f]\ntype = \"play\"\nprompts = [\"fr/f\"]\n"
        )
    };
    let t0 = Instant::now();
    for (scale, key, stored) in [
        (9, '9', true),
        (1, '1', true),
        (1, '2', false),
        (3, '4', false),
    ] {
        let p = plan(&text(scale));
        let mut ivr = start(&p, t0);
        drain(&mut ivr);
        ivr.handle_event(t0, IvrEvent::Dtmf(key));
        assert_eq!(
            ivr.variables().get("survey").is_some(),
            stored,
            "scale {scale} key {key}"
        );
        // Stored or not (no retries left), the call goes on.
        assert_eq!(
            drain(&mut ivr),
            vec![IvrAction::StopPlayback, play(&["fr/f"])]
        );
    }
}

#[test]
fn prompts_of_every_list_are_listed() {
    let p = plan(SURVEY);
    assert_eq!(
        p.prompt_names(),
        vec!["fr/au-revoir", "fr/enquete", "fr/invalide", "fr/merci"]
    );
}

#[test]
fn survey_loop_back_is_not_a_silent_loop() {
    // The survey waits for the caller, so pointing back at it is allowed.
    plan(
        r#"
[entries]
default = "s"
[nodes.s]
type = "survey"
prompts = ["fr/q"]
next = "encore"
[nodes.encore]
type = "goto"
next = "s"
"#,
    );
}

fn errors(text: &str) -> Vec<String> {
    match parse("t.toml", text) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(d) => {
            d.0.iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect()
        }
    }
}

#[test]
fn every_survey_error_at_its_position_in_one_pass() {
    let got = errors(
        r#"[entries]
default = "s"
[nodes.s]
type = "survey"
prompts = ["fr/q"]
scale = 10
variable = "Satisfaction!"
timeout = "5 secondes"
retries = 11
invalid = []
thanks = "fr/merci"
early = true
options = { "1" = "s" }
next = "nulle_part"
[nodes.t]
type = "survey"
scale = "5"
next = "s"
[nodes.u]
type = "survey"
prompts = ["fr/q"]
scale = 0
[nodes.v]
type = "survey"
prompts = ["fr/q"]
retries = -1
"#,
    );
    let expected = [
        "6:9: scale 10 out of range 1..=9",
        "7:12: bad variable name \"Satisfaction!\"",
        "8:11: bad duration \"5 secondes\"",
        "9:11: retries 11 out of range 0..=10",
        "10:11: `invalid` must not be empty",
        "11:10: `thanks` must be an array, found string",
        "12:1: unknown key `early` in `survey` node `s`",
        "13:1: unknown key `options` in `survey` node `s`",
        "14:8: `next` points to undefined node `nulle_part`",
        "15:1: node `t` is missing required key `prompts`",
        "17:9: `scale` must be an integer, found string",
        "22:9: scale 0 out of range 1..=9",
        "26:11: retries -1 out of range 0..=10",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "got {g:?}, expected {e:?}\nall: {got:#?}");
    }
}

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../../docs/dialplan.md");
    let section = doc.split("### survey").nth(1).expect("a survey section");
    let block = section
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml example");
    let p = plan(&format!(
        "[entries]\ndefault = \"enquete\"\n{block}\n[nodes.fin]\ntype = \"hangup\"\n"
    ));
    assert_eq!(p.survey_variables(), vec![("satisfaction".to_owned(), 5)]);
}

//! The media engine against a real softphone (issue 3): baresip 1.0,
//! registered on the PBX, hears what acdd sends (measured in the audio it
//! decoded, written by its sndfile filter) and its keys, sent as RFC 4733
//! telephone-events as baresip does by default, drive acdd's menus. Then
//! baresip as an agent's desk phone, bridged to a queued caller.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use ligne_directe_e2e::acdd::{self, Acdd};
use ligne_directe_e2e::agents::{self, journal, CallerSpec, QueueSpec, RtpPeer};
use ligne_directe_e2e::audio::{alaw_decode, ulaw_decode, Packet};
use ligne_directe_e2e::baresip::{self, rms, tone_share, Answer, Baresip, Source};
use ligne_directe_e2e::kamailio::Kamailio;
use ligne_directe_e2e::{serial, state_dir, wait_for};

/// A 20 ms frame louder than this carries sound, not silence (as in the
/// other end-to-end tests).
const SPEECH_RMS: f64 = 300.0;

/// A frame is a given tone when that much of its energy is at its frequency.
const TONE_SHARE: f64 = 0.8;

/// The welcome in early media (183), the answer, then two menus: the first
/// wants 5 (3 is a decoy), the second # (5 there leads to `mauvais`, so a
/// key detected twice would show). No replay: any other key, or none, goes
/// to `echec` at once, so the path names exactly what acdd understood. The
/// first menu's prompt lasts 12 s, time enough to measure it before the
/// key cuts it (barge-in).
const MENU_PLAN: &str = r##"
[entries]
default = "accueil"

[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "decroche"

[nodes.decroche]
type = "answer"
next = "menu"

[nodes.menu]
type = "menu"
prompts = ["fr/bienvenue", "fr/information"]
options = { "5" = "second", "3" = "mauvais" }
timeout = "30s"
retries = 0
fallback = "echec"

[nodes.second]
type = "menu"
prompts = ["fr/rappel-touche"]
options = { "#" = "fin", "5" = "mauvais" }
timeout = "30s"
retries = 0
fallback = "echec"

[nodes.mauvais]
type = "play"
prompts = ["fr/code-inconnu"]
next = "fin"

[nodes.echec]
type = "play"
prompts = ["fr/code-inconnu"]
next = "fin"

[nodes.fin]
type = "hangup"
"##;

/// The end of acdd's log, for failure messages.
fn tail(acdd: &Acdd) -> String {
    let log = acdd.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// The last lines of baresip's log, for failure messages.
fn phone_tail(phone: &Baresip) -> String {
    let log = phone.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until `aor` is registered from baresip's own SIP port.
fn wait_phone_registered(pbx: &Kamailio, phone: &Baresip) {
    let aor = format!("agent{}", phone.n);
    let port = format!("127.0.0.1:{}", baresip::sip_port(phone.n));
    let contact = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        pbx.registered_contact(&aor).filter(|c| c.contains(&port))
    });
    assert!(
        contact.is_some(),
        "baresip never registered as {aor}:\n{}",
        phone_tail(phone)
    );
}

/// The DTMF keys acdd detected, with their source, in its log order.
fn detected_keys(acdd: &Acdd) -> Vec<(String, String)> {
    let field = |line: &str, name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(String::from)
    };
    acdd.log()
        .lines()
        .filter(|l| l.contains(" DTMF"))
        .filter_map(|l| Some((field(l, "digit")?, field(l, "source")?)))
        .collect()
}

fn path_of(record: &Value) -> Vec<String> {
    record["ivr_path"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The only call record, once written (when the call ends).
fn the_record(acdd: &Acdd) -> Value {
    wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        acdd.report_calls().into_iter().next()
    })
    .unwrap_or_else(|| panic!("no call record:\n{}", tail(acdd)))
}

fn audible(frame: &[i16]) -> bool {
    rms(frame) > SPEECH_RMS
}

#[test]
fn baresip_calls_hears_the_menu_and_its_keys_choose_the_branches() {
    let _ports = serial();
    let state = state_dir("baresip-caller");
    let plan = state.join("plan.toml");
    std::fs::write(&plan, MENU_PLAN).expect("write the plan");
    let pbx = Kamailio::start(&state, &[]);
    let cfg = acdd::config(&state, true, Some(&plan));
    let acdd = Acdd::start(&state, &cfg, &[]);
    pbx.wait_registered("acd", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("acdd never registered:\n{}", acdd.log()));
    // The phone sends silence: whatever sound it receives is acdd's.
    let phone = Baresip::start(&state, 1, Answer::Auto, Source::Silence { seconds: 180 });
    wait_phone_registered(&pbx, &phone);

    phone.dial("sip:3939@127.0.0.1");
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(20))
            .is_some(),
        "acdd never answered baresip:\n{}\n--- acdd\n{}",
        phone_tail(&phone),
        tail(&acdd)
    );
    // The welcome came before the answer, in early media (183): baresip
    // decoded most of its 5 s as sound already.
    let answered = phone.received().unwrap_or_else(|| {
        panic!(
            "baresip recorded nothing of the call:\n{}",
            phone_tail(&phone)
        )
    });
    let early = answered.seconds_where(audible);
    assert!(
        early >= 2.5,
        "baresip heard {early:.1} s of sound before the answer (the welcome lasts 5 s)"
    );

    // The menu's prompt, after the answer: 2 s of sound before any key.
    let menu = phone
        .wait_received(
            Duration::from_secs(20),
            answered.samples.len(),
            2.0,
            audible,
        )
        .unwrap_or_else(|| {
            panic!(
                "baresip heard no menu: {:?}\n{}\n--- acdd\n{}",
                phone
                    .received()
                    .map(|w| (w.seconds(), w.seconds_where(audible))),
                phone_tail(&phone),
                tail(&acdd)
            )
        });
    assert!(
        detected_keys(&acdd).is_empty(),
        "no key pressed yet: {:?}",
        detected_keys(&acdd)
    );

    // Key 5: acdd leaves the first menu for the second, whose prompt
    // (fr/rappel-touche) it starts playing...
    phone.press('5');
    assert!(
        acdd.wait_log("fr/rappel-touche", Duration::from_secs(10)),
        "key 5 did not lead to the second menu:\n{}\n--- baresip\n{}",
        tail(&acdd),
        phone_tail(&phone)
    );
    // ... and baresip hears it: sound again after the key.
    assert!(
        phone
            .wait_received(Duration::from_secs(15), menu.samples.len(), 1.5, audible)
            .is_some(),
        "baresip heard nothing after its key:\n{}",
        phone_tail(&phone)
    );

    // Key #: the second menu's branch hangs up (a BYE from acdd).
    phone.press('#');
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(15))
            .is_some(),
        "acdd did not end the call after #:\n{}\n--- baresip\n{}",
        tail(&acdd),
        phone_tail(&phone)
    );

    // acdd's side: each key detected once, from the telephone-events, and
    // the record's path is exactly the branches of 5 then #.
    assert_eq!(
        detected_keys(&acdd),
        vec![
            ("5".to_string(), "Rfc4733".to_string()),
            ("#".to_string(), "Rfc4733".to_string())
        ],
        "{}",
        tail(&acdd)
    );
    let record = the_record(&acdd);
    assert_eq!(
        path_of(&record),
        vec!["accueil", "decroche", "menu", "second", "fin"],
        "{record}"
    );
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["hangup_by"], "system", "{record}");
    assert_eq!(record["caller"], "agent1", "{record}");
    assert!(record["early_media_at"].is_string(), "{record}");

    // The whole call as baresip heard it, once the file is closed.
    let heard = phone.received().expect("baresip's recording");
    eprintln!(
        "baresip heard {:.1} s of sound in {:.1} s ({early:.1} s in early media); acdd's path {:?}",
        heard.seconds_where(audible),
        heard.seconds(),
        path_of(&record)
    );
}

/// The decoded samples of an RTP packet (G.711).
fn samples(p: &Packet) -> Vec<i16> {
    match p.payload_type {
        8 => p.payload.iter().map(|b| alaw_decode(*b)).collect(),
        0 => p.payload.iter().map(|b| ulaw_decode(*b)).collect(),
        _ => Vec::new(),
    }
}

/// `seconds` of a pure tone, A-law.
fn tone_alaw(hz: f64, seconds: u32) -> Vec<u8> {
    (0..baresip::RATE * seconds)
        .map(|i| {
            let t = f64::from(i) / f64::from(baresip::RATE);
            baresip::alaw_encode((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// The caller speaks at 1000 Hz, the agent's phone at 1800 Hz (neither a
/// DTMF frequency): each side can tell the other's audio from acdd's
/// prompts and music.
const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 1800.0;

/// Fields drop in this order: acdd and the phone leave (unregistering)
/// while the PBX still runs.
struct Desk {
    acdd: Acdd,
    phone: Baresip,
    _pbx: Kamailio,
    state: PathBuf,
}

/// The PBX, baresip as agent2's desk phone (registered before acdd starts,
/// so reachable from the first offer), acdd with one queue of agent2.
fn desk(test: &str) -> Desk {
    let state = state_dir(test);
    let pbx = Kamailio::start(&state, &[]);
    let phone = Baresip::start(
        &state,
        2,
        Answer::Auto,
        Source::Tone {
            hz: AGENT_HZ,
            amplitude: 6000,
            seconds: 180,
        },
    );
    wait_phone_registered(&pbx, &phone);
    let plan = agents::queue_dialplan(&state);
    let cfg = acdd::config(&state, true, Some(&plan));
    agents::append_acd(
        &cfg,
        &QueueSpec {
            members: &["agent2"],
            ring_timeout: "10s",
            wrap_up: "1s",
        },
    );
    let acdd = Acdd::start(&state, &cfg, &[]);
    pbx.wait_registered("acd", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("acdd never registered:\n{}", acdd.log()));
    Desk {
        acdd,
        phone,
        _pbx: pbx,
        state,
    }
}

#[test]
fn baresip_as_a_desk_phone_answers_a_queued_caller_with_audio_both_ways() {
    let _ports = serial();
    let mut caller_rtp = RtpPeer::bind(41000);
    let desk = desk("baresip-agent");
    let (phone, acdd) = (&desk.phone, &desk.acdd);
    // The caller waits for acdd's BYE (hold 0): the agent ends the call.
    let mut caller = agents::caller(
        &desk.state,
        &CallerSpec {
            rtp_port: caller_rtp.port,
            ..CallerSpec::citizen()
        },
    );
    // Answered (the queue answers first), the caller speaks from its SDP
    // port to acdd's: a 1000 Hz tone, longer than the call.
    let answer = wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        caller.trace().into_iter().find(|m| {
            m.received
                && m.status() == Some(200)
                && agents::header(&m.text, "CSeq").is_some_and(|c| c.ends_with("INVITE"))
        })
    })
    .unwrap_or_else(|| panic!("never answered:\n{}\n{}", caller.describe(), tail(acdd)));
    let acdd_side = agents::sdp_audio_addr(answer.body())
        .unwrap_or_else(|| panic!("no audio address in the 200: {}", answer.text));
    caller_rtp.send_alaw(acdd_side, tone_alaw(CALLER_HZ, 90));

    // acdd rings agent2 through the PBX; baresip answers at once.
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(30))
            .is_some(),
        "baresip was never offered the call:\n{}\n--- acdd\n{}",
        phone_tail(phone),
        tail(acdd)
    );
    // Caller -> agent: baresip decodes 2 s of the caller's tone.
    let is_caller = |f: &[i16]| audible(f) && tone_share(f, baresip::RATE, CALLER_HZ) > TONE_SHARE;
    let heard = phone
        .wait_received(Duration::from_secs(15), 0, 2.0, is_caller)
        .unwrap_or_else(|| {
            panic!(
                "baresip did not hear the caller: {:?}\n{}\n--- acdd\n{}",
                phone.received().map(|w| (
                    w.seconds(),
                    w.seconds_where(audible),
                    w.seconds_where(is_caller)
                )),
                phone_tail(phone),
                tail(acdd)
            )
        });
    // Agent -> caller: 2 s (100 packets) of baresip's tone reach the caller.
    let agent_packets = || {
        caller_rtp
            .packets()
            .iter()
            .map(samples)
            .filter(|s| audible(s) && tone_share(s, baresip::RATE, AGENT_HZ) > TONE_SHARE)
            .count()
    };
    let from_agent = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        let n = agent_packets();
        (n >= 100).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "the caller did not hear the agent: {} packets, {} of the agent's tone\n{}",
            caller_rtp.packets().len(),
            agent_packets(),
            tail(acdd)
        )
    });

    // The agent hangs up on the phone; acdd ends the caller's leg.
    phone.hangup();
    assert!(
        caller.wait_success(Duration::from_secs(20)),
        "the caller's call did not end well:\n{}\n{}",
        caller.describe(),
        tail(acdd)
    );

    let call_id = agents::sent_invite_call_ids(&caller)
        .into_iter()
        .next()
        .expect("the caller's Call-ID");
    let record = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        acdd.report_calls()
            .into_iter()
            .find(|r| r["call_id"] == call_id.as_str())
    })
    .unwrap_or_else(|| panic!("no record for {call_id}:\n{}", tail(acdd)));
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["queue"], "accueil", "{record}");
    assert_eq!(record["agent"], "agent2", "{record}");
    assert_eq!(record["hangup_by"], "agent", "{record}");
    assert!(record["connected_at"].is_string(), "{record}");
    let offers = journal::offers(&journal::read(&acdd.config), Some(&call_id));
    assert_eq!(
        offers,
        vec![("agent2".to_string(), "answered".to_string())],
        "{:#?}",
        journal::read(&acdd.config)
    );
    eprintln!(
        "bridged: baresip heard {:.1} s of the caller's tone, the caller {from_agent} packets of baresip's",
        heard.seconds_where(is_caller)
    );
}

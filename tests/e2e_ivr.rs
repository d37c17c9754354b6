//! The IVR against real peers: opening hours from the calendar, menus driven
//! by RFC 4733 digits, and hot reload during calls.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ligne_directe_e2e::acdd::{self, Acdd};
use ligne_directe_e2e::audio::RtpListener;
use ligne_directe_e2e::kamailio::Kamailio;
use ligne_directe_e2e::{peers_dir, root, serial, sipp, state_dir, wait_for};

const SPEECH_RMS: f64 = 300.0;

fn start(test: &str, plan: &Path, now: &str) -> (PathBuf, Kamailio, Acdd) {
    let state = state_dir(test);
    let pbx = Kamailio::start(&state, &[]);
    let cfg = acdd::config(&state, true, Some(plan));
    let acdd = Acdd::start(&state, &cfg, &["--now", now]);
    pbx.wait_registered("acd", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("acdd never registered:\n{}", acdd.log()));
    (state, pbx, acdd)
}

/// Writes a test's own dialplan into a state dir of its own.
fn plan_file(name: &str, text: &str) -> PathBuf {
    let plan = state_dir(name).join("plan.toml");
    std::fs::write(&plan, text).expect("write the plan");
    plan
}

/// A SIPp caller dialing 3939 through the PBX with `scenario`, media on
/// the test's RTP listener (port 41000), that must succeed.
fn call_ok(state: &Path, acdd: &Acdd, scenario: &str, keys: &[(&str, String)]) -> sipp::Sipp {
    let _rtp = RtpListener::bind(41000);
    let mut all = vec![("rtp_port", "41000".to_string())];
    all.extend(keys.iter().cloned());
    let mut caller = sipp::call(state, "caller", scenario, "3939", 5090, &all);
    assert!(
        caller.wait_success(Duration::from_secs(120)),
        "{}\n{}",
        caller.describe(),
        acdd.log()
    );
    caller
}

fn the_record(acdd: &Acdd) -> serde_json::Value {
    wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        acdd.report_calls().into_iter().next()
    })
    .unwrap_or_else(|| panic!("no call record:\n{}", acdd.log()))
}

fn path_of(record: &serde_json::Value) -> Vec<String> {
    record["ivr_path"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// One RTP stream with `digits`, `gap_ms` apart (as a phone sends them).
fn dtmf_pcap(state: &Path, digits: &str, gap_ms: u32) -> String {
    let out = state.join(format!("dtmf-{digits}.pcap"));
    let status = Command::new("python3")
        .arg(peers_dir().join("make-pcap.py"))
        .args(["--digits", digits, "--gap-ms", &gap_ms.to_string(), "-o"])
        .arg(&out)
        .status()
        .expect("make-pcap.py");
    assert!(status.success());
    out.display().to_string()
}

#[test]
fn outside_opening_hours_the_caller_hears_the_closed_message_and_gets_480_never_200() {
    let _ports = serial();
    let plan = root().join("dialplans/ligne-directe.toml");
    // Saturday morning: the service opens Monday at 18:00.
    let (state, _pbx, acdd) = start("closed", &plan, "2026-12-05T10:00:00+01:00");
    let rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_closed.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(
        caller.wait_success(Duration::from_secs(90)),
        "expected 183 then 480:\n{}\n{}",
        caller.describe(),
        acdd.log()
    );
    assert!(
        !caller
            .trace()
            .iter()
            .any(|m| m.received && m.status() == Some(200)),
        "a closed service never answers"
    );
    let heard = rtp
        .packets()
        .iter()
        .filter(|p| p.rms() > SPEECH_RMS)
        .count();
    // Welcome (~5 s) and the generated message (several seconds).
    assert!(heard >= 300, "only {heard} audible packets of early media");
    let record = the_record(&acdd);
    assert_eq!(record["outcome"], "rejected");
    assert_eq!(record["final_status"], 480);
    assert_eq!(record["answered_at"], serde_json::Value::Null);
    assert!(path_of(&record).contains(&"ferme".to_string()), "{record}");
    // The message names the next opening: "lundi 7 décembre à 18 heures".
    assert!(acdd.log().contains("playing"), "{}", acdd.log());
}

#[test]
fn inside_opening_hours_menu_digits_route_as_configured() {
    let _ports = serial();
    let plan = root().join("dialplans/ligne-directe.toml");
    // Monday 19:00, Paris: open.
    let (state, _pbx, acdd) = start("menu", &plan, "2026-12-07T19:00:00+01:00");
    let _rtp = RtpListener::bind(41000);
    // 1 (a procedure), then 1 (yes) to the consent question 2.5 s later.
    let keys = dtmf_pcap(&state, "11", 2500);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_dtmf.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string()), ("dtmf", keys)],
    );
    assert!(
        caller.wait_success(Duration::from_secs(120)),
        "{}\n{}",
        caller.describe(),
        acdd.log()
    );
    let log = acdd.log();
    assert!(log.contains("DTMF") && log.contains("digit=1"), "{log}");
    let record = the_record(&acdd);
    let path = path_of(&record);
    // 1 = a procedure -> the consent question -> 1 = yes -> the queue.
    let expected = [
        "accueil",
        "horaires",
        "attente",
        "menu",
        "consentement",
        "file",
    ];
    let mut at = 0;
    for step in expected {
        let found = path[at..].iter().position(|p| p == step);
        assert!(
            found.is_some(),
            "{step} missing or out of order in {path:?}"
        );
        at += found.unwrap_or(0) + 1;
    }
    assert_eq!(record["variables"]["consent"], "yes", "{record}");
    assert!(record["answered_at"].is_string());
}

#[test]
fn keys_sent_as_sip_info_drive_the_menu_too() {
    let _ports = serial();
    let plan = root().join("dialplans/ligne-directe.toml");
    let (state, _pbx, acdd) = start("info", &plan, "2026-12-07T19:00:00+01:00");
    call_ok(&state, &acdd, "caller_info.xml", &[]);
    assert!(acdd.log().contains("SipInfo"), "{}", acdd.log());
    let record = the_record(&acdd);
    assert!(
        path_of(&record).contains(&"consentement".to_string()),
        "{record}"
    );
    assert_eq!(record["variables"]["consent"], "yes", "{record}");
}

#[test]
fn a_menu_without_an_answer_is_replayed_then_falls_back() {
    let _ports = serial();
    let plan = plan_file(
        "menu-timeout-plan",
        r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "menu"
[nodes.menu]
type = "menu"
prompts = ["fr/attente-07"]
options = { "1" = "fin" }
timeout = "1s"
retries = 2
fallback = "repli"
[nodes.repli]
type = "play"
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
"#,
    );
    let (state, _pbx, acdd) = start("menu-timeout", &plan, "2026-12-07T19:00:00+01:00");
    call_ok(&state, &acdd, "caller_early.xml", &[]);
    let record = the_record(&acdd);
    let menu_plays = acdd.log().matches("fr/attente-07").count();
    assert_eq!(
        menu_plays,
        3,
        "the menu once and 2 retries:\n{}",
        acdd.log()
    );
    let path = path_of(&record);
    assert_eq!(path, vec!["accueil", "menu", "repli", "fin"], "{record}");
}

#[test]
fn a_reload_during_20_calls_drops_none_and_new_calls_follow_the_new_plan() {
    let _ports = serial();
    let state_plan = state_dir("reload-plan");
    let plan = state_plan.join("plan.toml");
    let original = std::fs::read_to_string(root().join("dialplans/default.toml")).expect("read");
    std::fs::write(&plan, &original).expect("write the plan");
    let (state, _pbx, acdd) = start("reload", &plan, "2026-12-07T19:00:00+01:00");
    let _rtp = RtpListener::bind(41000);
    let mut first = sipp::calls(
        &state,
        "first20",
        "caller_early.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
        20,
        10,
    );
    assert!(
        acdd.wait_log_count("incoming call", 20, Duration::from_secs(30)),
        "20 calls never arrived:\n{}",
        acdd.log()
    );
    // The new plan: the message node is replaced.
    let changed = original
        .replace("next = \"message\"", "next = \"message2\"")
        .replace("[nodes.message]", "[nodes.message2]");
    assert_ne!(changed, original);
    std::fs::write(&plan, &changed).expect("rewrite the plan");
    assert!(
        acdd.wait_log("dialplan reloaded", Duration::from_secs(10)),
        "{}",
        acdd.log()
    );
    // A broken edit is refused and the running plan stays.
    std::fs::write(
        &plan,
        changed.replace("type = \"hangup\"", "type = \"raccroche\""),
    )
    .expect("break");
    assert!(
        acdd.wait_log("keeping the running one", Duration::from_secs(10)),
        "{}",
        acdd.log()
    );
    assert!(
        acdd.log().contains(&format!("{}:", plan.display())),
        "file:line:column in the log"
    );

    let mut late = sipp::call(
        &state,
        "late",
        "caller_early.xml",
        "3939",
        5091,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(
        first.wait_success(Duration::from_secs(120)),
        "some of the 20 calls failed:\n{}",
        first.describe()
    );
    assert!(
        late.wait_success(Duration::from_secs(120)),
        "{}",
        late.describe()
    );
    let records = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        let r = acdd.report_calls();
        (r.len() == 21).then_some(r)
    })
    .unwrap_or_else(|| panic!("expected 21 records: {:?}", acdd.report_calls()));
    let old = records
        .iter()
        .filter(|r| path_of(r).contains(&"message".to_string()))
        .count();
    let new = records
        .iter()
        .filter(|r| path_of(r).contains(&"message2".to_string()))
        .count();
    assert_eq!(
        (old, new),
        (20, 1),
        "calls keep their plan, new calls get the new one"
    );
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "answered" && r["hangup_by"] == "system"),
        "no call dropped: {records:?}"
    );
}

#[test]
fn a_transfer_node_calls_the_partner_and_bridges_the_caller() {
    let _ports = serial();
    let plan = plan_file(
        "transfer-plan",
        r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "transfert"
[nodes.transfert]
type = "transfer"
target = "sip:agent5@127.0.0.1"   # through the PBX
method = "invite"
next = "desole"
[nodes.desole]
type = "play"
prompts = ["fr/information"]
next = "fin"
[nodes.fin]
type = "hangup"
"#,
    );
    let (state, pbx, acdd) = start("transfer", &plan, "2026-12-07T19:00:00+01:00");
    // The partner: a SIPp phone registered as agent5 that answers after
    // 0.5 s and hangs up 3 s later.
    let partner = ligne_directe_e2e::agents::phone(
        &state,
        5,
        ligne_directe_e2e::agents::Mode::answer(500, 3000),
        None,
        None,
    );
    assert!(
        pbx.wait_registered("agent5", Duration::from_secs(10))
            .is_some(),
        "the partner never registered"
    );
    let _rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_early.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(
        caller.wait_success(Duration::from_secs(90)),
        "{}\n--- partner\n{}\n{}",
        caller.describe(),
        partner.describe(),
        acdd.log()
    );
    assert!(
        partner
            .trace()
            .iter()
            .any(|m| m.received && m.first_line.starts_with("INVITE sip:agent5")),
        "the partner was never called:\n{}",
        partner.describe()
    );
    let record = the_record(&acdd);
    assert_eq!(record["outcome"], "transferred", "{record}");
    assert_eq!(record["hangup_by"], "partner", "{record}");
    assert_eq!(
        record["variables"]["transferred_to"],
        "sip:agent5@127.0.0.1"
    );
}

#[test]
fn a_voicemail_node_records_the_callers_message() {
    let _ports = serial();
    let plan = plan_file(
        "voicemail-plan",
        r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "messagerie"
[nodes.messagerie]
type = "voicemail"
prompts = ["fr/attente-01"]
max = "3s"
next = "fin"
[nodes.fin]
type = "hangup"
"#,
    );
    let (state, _pbx, acdd) = start("voicemail", &plan, "2026-12-07T19:00:00+01:00");
    let _rtp = RtpListener::bind(41000);
    // The caller speaks (sip-tester's 7 s PCMA sample) 1 s after the ACK:
    // through the prompt and into the recording.
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_dtmf.xml",
        "3939",
        5090,
        &[
            ("rtp_port", "41000".to_string()),
            ("dtmf", "/usr/share/sip-tester/g711a.pcap".to_string()),
        ],
    );
    assert!(
        caller.wait_success(Duration::from_secs(90)),
        "{}\n{}",
        caller.describe(),
        acdd.log()
    );
    let record = the_record(&acdd);
    let file = record["variables"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {record}"))
        .to_string();
    let wav = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(&wav[..4], b"RIFF", "a WAV file");
    // 8 kHz, 16-bit mono: about 3 s of audio (max), with speech in it.
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let seconds = samples.len() as f64 / 8000.0;
    assert!((2.5..=3.5).contains(&seconds), "{seconds} s recorded");
    let rms =
        (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 300.0, "the message is silent (rms {rms})");
    assert!(path_of(&record).contains(&"messagerie".to_string()));
}

#[test]
fn sighup_reloads_the_dialplan_and_a_broken_one_is_refused() {
    let _ports = serial();
    let state = state_dir("sighup");
    let plan = state.join("plan.toml");
    let original = std::fs::read_to_string(root().join("dialplans/default.toml")).expect("read");
    std::fs::write(&plan, &original).expect("write the plan");
    let cfg = acdd::config(&state, false, Some(&plan));
    let mut acdd = Acdd::start(&state, &cfg, &[]);
    acdd.proc.signal("HUP");
    assert!(
        acdd.wait_log("SIGHUP: reloading the dialplan", Duration::from_secs(5))
            && acdd.wait_log("dialplan reloaded", Duration::from_secs(5)),
        "{}",
        acdd.log()
    );
    std::fs::write(&plan, original.replace("[entries]", "[entrees]")).expect("break it");
    acdd.proc.signal("HUP");
    assert!(
        acdd.wait_log("keeping the running one", Duration::from_secs(5)),
        "{}",
        acdd.log()
    );
    assert!(
        acdd.proc.is_running(),
        "a broken plan never stops the daemon"
    );
    assert!(acdd.terminate(), "{}", acdd.log());
}

#[test]
fn a_transfer_node_by_refer_sends_the_caller_to_the_partner() {
    let _ports = serial();
    let plan = plan_file(
        "refer-plan",
        r#"
[entries]
default = "accueil"
[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue"]
next = "transfert"
[nodes.transfert]
type = "transfer"
target = "sip:partenaire@127.0.0.1"
method = "refer"
next = "fin"
[nodes.fin]
type = "hangup"
"#,
    );
    let (state, _pbx, acdd) = start("refer", &plan, "2026-12-07T19:00:00+01:00");
    let caller = call_ok(&state, &acdd, "caller_refer.xml", &[]);
    let refer = caller
        .trace()
        .into_iter()
        .find(|m| m.received && m.first_line.starts_with("REFER "))
        .expect("a REFER");
    assert!(
        refer.text.contains("Refer-To: <sip:partenaire@127.0.0.1>"),
        "{}",
        refer.text
    );
    let record = the_record(&acdd);
    assert_eq!(record["outcome"], "transferred", "{record}");
    assert_eq!(
        record["variables"]["transferred_to"],
        "sip:partenaire@127.0.0.1"
    );
}

#[test]
fn in_band_keys_in_a_pcma_stream_drive_the_menu() {
    let _ports = serial();
    let plan = root().join("dialplans/ligne-directe.toml");
    let (state, _pbx, acdd) = start("inband", &plan, "2026-12-07T19:00:00+01:00");
    let _rtp = RtpListener::bind(41000);
    // 1 (a procedure), then 1 (yes) 2.5 s later, as tones in the audio.
    let tones = state.join("keys.al");
    let pcap = state.join("keys.pcap");
    let ok = Command::new("python3")
        .arg(peers_dir().join("make-tones.py"))
        .args([
            "--digits",
            "11",
            "--tone-ms",
            "150",
            "--gap-ms",
            "2500",
            "-o",
        ])
        .arg(&tones)
        .status()
        .expect("make-tones.py")
        .success()
        && Command::new("python3")
            .arg(peers_dir().join("make-pcap.py"))
            .arg("--audio")
            .arg(&tones)
            .arg("-o")
            .arg(&pcap)
            .status()
            .expect("make-pcap.py")
            .success();
    assert!(ok, "could not make the tone pcap");
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_inband.xml",
        "3939",
        5090,
        &[
            ("rtp_port", "41000".to_string()),
            ("dtmf", pcap.display().to_string()),
        ],
    );
    assert!(
        caller.wait_success(Duration::from_secs(120)),
        "{}\n{}",
        caller.describe(),
        acdd.log()
    );
    assert!(acdd.log().contains("source=Inband"), "{}", acdd.log());
    let record = the_record(&acdd);
    assert!(
        path_of(&record).contains(&"consentement".to_string()),
        "{record}"
    );
    assert_eq!(record["variables"]["consent"], "yes", "{record}");
}

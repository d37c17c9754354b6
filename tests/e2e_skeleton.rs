//! The walking skeleton against real peers: Kamailio as the site PBX, SIPp
//! as the citizen calling 3939, acdd registered on the PBX with digest auth.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use ligne_directe_e2e::acdd::{self, Acdd};
use ligne_directe_e2e::audio::RtpListener;
use ligne_directe_e2e::kamailio::Kamailio;
use ligne_directe_e2e::{peers_dir, serial, sipp, state_dir};

/// Packets whose decoded RMS is above this carry speech, not silence
/// (G.711 silence decodes to about 8).
const SPEECH_RMS: f64 = 300.0;

fn start_pbx_and_acdd(test: &str) -> (std::path::PathBuf, Kamailio, Acdd) {
    let state = state_dir(test);
    let pbx = Kamailio::start(&state, &[]);
    let cfg = acdd::config(&state, true, None);
    let acdd = Acdd::start(&state, &cfg, &[]);
    let contact = pbx
        .wait_registered("acd", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("acdd never registered on the PBX:\n{}", acdd.log()));
    assert!(
        contact.contains("127.0.0.1:5070"),
        "registered contact {contact}"
    );
    (state, pbx, acdd)
}

#[test]
fn a_caller_through_the_pbx_hears_early_media_then_is_answered_and_recorded() {
    let _ports = serial();
    let (state, _pbx, acdd) = start_pbx_and_acdd("call");
    let rtp = RtpListener::bind(41000);
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
        "the call failed:\n{}\n--- acdd\n{}",
        caller.describe(),
        acdd.log()
    );

    let trace = caller.trace();
    let received = |code: u16| {
        trace
            .iter()
            .find(|m| m.received && m.status() == Some(code))
            .unwrap_or_else(|| panic!("no {code} received:\n{}", caller.describe()))
    };
    let progress = received(183);
    assert!(
        progress.body().contains("m=audio") && progress.body().contains("RTP/AVP 8"),
        "the 183 carries the SDP answer with PCMA: {}",
        progress.text
    );
    let ok = received(200);
    let bye = trace
        .iter()
        .find(|m| m.received && m.first_line.starts_with("BYE "))
        .unwrap_or_else(|| panic!("acdd never hung up:\n{}", caller.describe()));
    assert!(
        progress.at < ok.at && ok.at < bye.at,
        "183, then 200, then BYE"
    );

    let packets = rtp.packets();
    let early: Vec<_> = packets.iter().filter(|p| p.at < ok.at).collect();
    let early_speech = early.iter().filter(|p| p.rms() > SPEECH_RMS).count();
    // The welcome and the estimated wait last several seconds: at least 2 s
    // of audible early media must have arrived before the answer.
    assert!(
        early_speech >= 100,
        "only {early_speech} audible packets before the 200 ({} in all)",
        early.len()
    );
    assert!(
        early.iter().all(|p| p.payload_type == 8),
        "PCMA is preferred"
    );
    let talk_speech = packets
        .iter()
        .filter(|p| p.at > ok.at && p.at < bye.at && p.rms() > SPEECH_RMS)
        .count();
    assert!(
        talk_speech >= 100,
        "the message after the answer: {talk_speech} audible packets"
    );
    // RFC 3550: one stream, consecutive sequence numbers, 160 samples per packet.
    for pair in early.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "no gaps in early media"
        );
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
    }

    let call_id = trace
        .iter()
        .find(|m| !m.received && m.first_line.starts_with("INVITE "))
        .and_then(|m| {
            m.text
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID:").map(|v| v.trim().to_string()))
        })
        .expect("the INVITE's Call-ID");
    // The record is written when the call ends: wait for it.
    let record =
        ligne_directe_e2e::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            acdd.report_calls()
                .into_iter()
                .find(|r| r["call_id"] == call_id.as_str())
        })
        .unwrap_or_else(|| panic!("no record for {call_id}: {:?}", acdd.report_calls()));
    assert_eq!(record["caller"], "+33612345678");
    assert_eq!(record["called"], "3939");
    assert_eq!(record["outcome"], "answered");
    assert_eq!(record["hangup_by"], "system");
    let t = |k: &str| {
        record[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} missing in {record}"))
            .to_string()
    };
    assert!(t("arrived_at") <= t("early_media_at"));
    assert!(t("early_media_at") < t("answered_at"));
    assert!(t("answered_at") < t("ended_at"));
    assert!(
        record["wait_seconds"].as_f64().unwrap_or(0.0) >= 2.0,
        "{record}"
    );
    assert!(
        record["talk_seconds"].as_f64().unwrap_or(0.0) >= 2.0,
        "{record}"
    );
}

#[test]
fn acdd_registers_again_within_5_s_after_the_pbx_restarts() {
    let _ports = serial();
    let (_state, mut pbx, acdd) = start_pbx_and_acdd("restart");

    // A quick restart: the PBX is back before any probe noticed it was gone.
    pbx.restart(1);
    let back = Instant::now();
    assert!(
        pbx.wait_registered("acd", Duration::from_secs(5)).is_some(),
        "not registered 5 s after a quick PBX restart:\n{}",
        acdd.log()
    );
    let quick = back.elapsed();

    // A longer outage: acdd notices the silence, then the PBX returns.
    pbx.stop();
    assert!(
        acdd.wait_log("does not answer probes", Duration::from_secs(10)),
        "the outage went unnoticed:\n{}",
        acdd.log()
    );
    pbx.restart(2);
    let back = Instant::now();
    assert!(
        pbx.wait_registered("acd", Duration::from_secs(5)).is_some(),
        "not registered 5 s after the PBX came back:\n{}",
        acdd.log()
    );
    eprintln!(
        "re-registered {quick:?} after a quick restart, {:?} after an outage",
        back.elapsed()
    );
}

fn udp_exchange(payload: &[u8]) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(800)))
        .expect("timeout");
    sock.send_to(payload, "127.0.0.1:5070").expect("send");
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

const INVITE: &str = "INVITE sip:acd@127.0.0.1:5070 SIP/2.0\r
Via: SIP/2.0/UDP 127.0.0.1:5199;branch=z9hG4bK-bad-1;rport\r
From: <sip:+33600000000@127.0.0.1>;tag=t1\r
To: <sip:3939@127.0.0.1>\r
Call-ID: malformed-1@127.0.0.1\r
CSeq: 1 INVITE\r
Max-Forwards: 70\r
Content-Length: 0\r
\r
";

#[test]
fn malformed_requests_get_400_or_are_dropped_and_the_next_call_works() {
    let _ports = serial();
    let (state, _pbx, acdd) = start_pbx_and_acdd("malformed");

    let no_call_id = INVITE.replace("Call-ID: malformed-1@127.0.0.1\r\n", "");
    let reply = udp_exchange(no_call_id.as_bytes()).expect("a reply to an INVITE without Call-ID");
    assert!(reply.starts_with("SIP/2.0 400"), "{reply}");
    assert!(
        reply.contains("missing Call-ID"),
        "the reason is given: {reply}"
    );

    let bad_cseq = INVITE.replace("CSeq: 1 INVITE", "CSeq: one INVITE");
    let reply = udp_exchange(bad_cseq.as_bytes()).expect("a reply to a broken CSeq");
    assert!(reply.starts_with("SIP/2.0 400"), "{reply}");

    // A Via that cannot be read gives no way to route an answer: dropped
    // (RFC 3261 §18.2.2), or 400 if the stack could still route it.
    let bad_via = INVITE.replace(
        "Via: SIP/2.0/UDP 127.0.0.1:5199;branch=z9hG4bK-bad-1;rport",
        "Via: garbage here",
    );
    if let Some(reply) = udp_exchange(bad_via.as_bytes()) {
        assert!(reply.starts_with("SIP/2.0 400"), "{reply}");
    }
    assert_eq!(
        udp_exchange(b"\x00\xff\x13garbage\r\n\r\n"),
        None,
        "garbage is dropped"
    );

    // Over TCP too: a broken request on a stream.
    let mut tcp = TcpStream::connect("127.0.0.1:5070").expect("tcp connect");
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let tcp_invite = no_call_id.replace("SIP/2.0/UDP 127.0.0.1:5199", "SIP/2.0/TCP 127.0.0.1:5199");
    tcp.write_all(tcp_invite.as_bytes()).expect("tcp write");
    let mut buf = [0u8; 2048];
    let n = tcp.read(&mut buf).unwrap_or(0);
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("SIP/2.0 400"), "TCP reply: {reply:?}");

    // The 49 RFC 4475 torture messages over UDP and TCP.
    for tcp in [false, true] {
        let mut cmd = Command::new("python3");
        cmd.arg(peers_dir().join("send-torture.py"))
            .args(["--port", "5070", "--wait", "0.3"]);
        if tcp {
            cmd.arg("--tcp");
        }
        let out = cmd.output().expect("run send-torture.py");
        std::fs::write(state.join(format!("torture-{tcp}.txt")), &out.stdout).ok();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        !acdd.log().contains("panicked"),
        "acdd panicked:\n{}",
        acdd.log()
    );

    // And a real call still goes through.
    let rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller-after",
        "caller_early.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(
        caller.wait_success(Duration::from_secs(90)),
        "the call after the torture failed:\n{}\n{}",
        caller.describe(),
        acdd.log()
    );
    assert!(rtp.packets().iter().any(|p| p.rms() > SPEECH_RMS));
}

#[test]
fn sigterm_unregisters_from_the_pbx_and_exits_cleanly() {
    let _ports = serial();
    let (_state, pbx, mut acdd) = start_pbx_and_acdd("shutdown");
    assert!(acdd.terminate(), "acdd did not exit 0:\n{}", acdd.log());
    assert_eq!(
        pbx.registered_contact("acd"),
        None,
        "the binding must be removed (Expires: 0)"
    );
    assert!(
        acdd.log().contains("unregistered from the PBX"),
        "{}",
        acdd.log()
    );
}

/// Waits until the caller's RTP listener hears speech: the call is in its
/// early media.
fn wait_audio(rtp: &RtpListener) -> bool {
    ligne_directe_e2e::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        rtp.packets()
            .iter()
            .any(|p| p.rms() > SPEECH_RMS)
            .then_some(())
    })
    .is_some()
}

#[test]
fn shutdown_during_early_media_refuses_the_call_with_503_and_records_it() {
    let _ports = serial();
    let (state, pbx, mut acdd) = start_pbx_and_acdd("stop-early");
    let rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_shutdown.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(wait_audio(&rtp), "no early media:\n{}", acdd.log());
    assert!(acdd.terminate(), "acdd did not exit 0:\n{}", acdd.log());
    assert!(
        caller.wait_success(Duration::from_secs(30)),
        "the caller did not get a clean 503:\n{}",
        caller.describe()
    );
    assert_eq!(pbx.registered_contact("acd"), None);
    // The store was flushed before exit: the record is there, read offline.
    let records = acdd::report_calls(&acdd.config, &[]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "shutdown");
    assert_eq!(records[0]["final_status"], 503);
    assert_eq!(records[0]["answered_at"], serde_json::Value::Null);
}

#[test]
fn shutdown_during_an_answered_call_sends_bye_and_records_it() {
    let _ports = serial();
    let (state, _pbx, mut acdd) = start_pbx_and_acdd("stop-talk");
    let _rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_early.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    // Answered: the 200 shows in the caller's trace.
    let answered =
        ligne_directe_e2e::wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
            caller
                .trace()
                .iter()
                .any(|m| m.received && m.status() == Some(200))
                .then_some(())
        });
    assert!(answered.is_some(), "never answered:\n{}", caller.describe());
    assert!(acdd.terminate(), "acdd did not exit 0:\n{}", acdd.log());
    assert!(
        caller.wait_success(Duration::from_secs(30)),
        "the caller did not get a BYE:\n{}",
        caller.describe()
    );
    let records = acdd::report_calls(&acdd.config, &[]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "shutdown");
    assert_eq!(records[0]["hangup_by"], "system");
    assert!(records[0]["answered_at"].is_string());
}

#[test]
fn a_caller_who_cancels_during_early_media_gets_487_and_is_recorded_as_abandoned() {
    let _ports = serial();
    let (state, _pbx, acdd) = start_pbx_and_acdd("cancel");
    let _rtp = RtpListener::bind(41000);
    let mut caller = sipp::call(
        &state,
        "caller",
        "caller_cancel.xml",
        "3939",
        5090,
        &[("rtp_port", "41000".to_string())],
    );
    assert!(
        caller.wait_success(Duration::from_secs(30)),
        "CANCEL not handled:\n{}\n{}",
        caller.describe(),
        acdd.log()
    );
    let record =
        ligne_directe_e2e::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            acdd.report_calls().into_iter().next()
        })
        .expect("a record for the cancelled call");
    assert_eq!(record["outcome"], "abandoned");
    assert_eq!(record["hangup_by"], "caller");
    assert_eq!(record["answered_at"], serde_json::Value::Null);
    assert!(record["early_media_at"].is_string());
    let waited = record["wait_seconds"].as_f64().unwrap_or(0.0);
    assert!((1.5..10.0).contains(&waited), "waited {waited} s");
}

#[test]
fn acdd_answers_a_sha256_digest_challenge() {
    let _ports = serial();
    let state = state_dir("sha256");
    let pbx = Kamailio::start(&state, &["DIGEST_SHA256"]);
    let cfg = acdd::config(&state, true, None);
    let acdd = Acdd::start(&state, &cfg, &[]);
    assert!(
        pbx.wait_registered("acd", Duration::from_secs(10))
            .is_some(),
        "not registered with a SHA-256 challenge:\n{}\n{}",
        acdd.log(),
        pbx.proc.log_text()
    );
}

//! The ACD's peers and records: agents and a queue in acdd's config, SIPp
//! desk phones registered on the PBX, SIPp callers who wait in the queue,
//! speech and DTMF to send, and the queue journal (`acdd report journal`).
//!
//! The journal's names (events, keys, results) are read in one place, the
//! [`journal`] module, so that they follow the daemon's vocabulary from there.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::audio::Packet;
use crate::proc::Proc;
use crate::sipp::Sipp;

/// SIPp's own sample recording: 236 PCMA packets of 30 ms, 7 s of speech.
pub const SAMPLE_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// A queue `accueil` for [`append_acd`].
pub struct QueueSpec<'a> {
    /// Agent ids, in the sequential strategy's order; each is also declared
    /// as an `[[agents]]` entry whose phone is `sip:<id>@127.0.0.1:5060`
    /// (through the PBX).
    pub members: &'a [&'a str],
    pub ring_timeout: &'a str,
    pub wrap_up: &'a str,
}

impl QueueSpec<'static> {
    /// `accueil` with these members in order, ringing each 4 s, 1 s of wrap-up.
    pub fn of(members: &'static [&'static str]) -> QueueSpec<'static> {
        QueueSpec {
            members,
            ring_timeout: "4s",
            wrap_up: "1s",
        }
    }
}

/// Appends `[[agents]]` and `[queues.accueil]` to a config written by
/// [`crate::acdd::config`] (plain TOML: the tables go after its own).
pub fn append_acd(config: &Path, queue: &QueueSpec) {
    let mut text = crate::read(config);
    for id in queue.members {
        let n = id.trim_start_matches("agent");
        text.push_str(&format!(
            "\n[[agents]]\nid = \"{id}\"\nname = \"Agent {n}\"\nphone = \"sip:{id}@127.0.0.1:5060\"\n"
        ));
    }
    let members: Vec<String> = queue.members.iter().map(|m| format!("\"{m}\"")).collect();
    text.push_str(&format!(
        "\n[queues.accueil]\nstrategy = \"sequential\"\nmembers = [{}]\nring_timeout = \"{}\"\nwrap_up = \"{}\"\n",
        members.join(", "),
        queue.ring_timeout,
        queue.wrap_up
    ));
    std::fs::write(config, text).expect("append agents and queue to the config");
}

/// The dialplan of the ACD tests: the welcome and the estimated wait in early
/// media, then the queue `accueil`; if the queue gives the call back, the
/// information message, then hang up.
pub fn queue_dialplan(state: &Path) -> PathBuf {
    let path = state.join("acd-plan.toml");
    std::fs::write(
        &path,
        r#"[entries]
default = "accueil"

[nodes.accueil]
type = "play"
early = true
prompts = ["fr/bienvenue", { announce = "estimated_wait" }]
next = "file"

[nodes.file]
type = "queue"
queue = "accueil"
next = "message"

[nodes.message]
type = "play"
prompts = ["fr/information"]
next = "fin"

[nodes.fin]
type = "hangup"
"#,
    )
    .expect("write the ACD dialplan");
    path
}

/// Copies `tests/peers/sipp/<template>` into the state dir as `<name>.xml`,
/// setting `timeout="…"` (or `milliseconds="…"`) on each line marked
/// `<!-- MARKER -->` (what the kit's run-agent.sh does with sed), and leaving
/// out the lines marked with one of `drop`. Returns the copy's absolute path,
/// which [`crate::sipp::calls`] accepts as a scenario.
pub fn scenario(
    state: &Path,
    template: &str,
    name: &str,
    timers: &[(&str, u64)],
    drop: &[&str],
) -> PathBuf {
    let source = crate::peers_dir().join("sipp").join(template);
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
    let mut out = String::with_capacity(text.len());
    let mut set = vec![false; timers.len()];
    for line in text.lines() {
        if drop.iter().any(|m| line.contains(&format!("<!-- {m} -->"))) {
            continue;
        }
        let mut line = line.to_string();
        for (i, (marker, ms)) in timers.iter().enumerate() {
            if line.contains(&format!("<!-- {marker} -->")) {
                line = set_number(&line, &["timeout=\"", "milliseconds=\""], *ms);
                set[i] = true;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    for (i, (marker, _)) in timers.iter().enumerate() {
        assert!(set[i], "no line marked <!-- {marker} --> in {template}");
    }
    let path = state.join(format!("{name}.xml"));
    std::fs::write(&path, out).expect("write the scenario copy");
    path
}

fn set_number(line: &str, attrs: &[&str], value: u64) -> String {
    for attr in attrs {
        if let Some(start) = line.find(attr) {
            let from = start + attr.len();
            let end = line[from..]
                .find('"')
                .map(|e| from + e)
                .expect("a closing quote");
            return format!("{}{value}{}", &line[..from], &line[end..]);
        }
    }
    panic!("no timer attribute on the marked line: {line}");
}

/// What a SIPp desk phone does with an offered call.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Rings `ring_ms`, answers, plays `agent_pcap`; hangs up itself after
    /// `first_talk_ms` on its first answered call and `talk_ms` on the
    /// others (0 = waits for the far end's BYE).
    Answer {
        ring_ms: u64,
        first_talk_ms: u64,
        talk_ms: u64,
    },
    /// 486 Busy Here at once (the kit's agent_busy.xml).
    Busy,
    /// Rings until CANCEL (or Kamailio's 60 s).
    NoAnswer,
    /// Answers after `ring_ms`, then transfers the call by REFER to the
    /// URI given as `refer_to` to [`phone_refer`] (acd_agent_refer.xml).
    Transfer { ring_ms: u64 },
}

impl Mode {
    pub fn answer(ring_ms: u64, talk_ms: u64) -> Mode {
        Mode::Answer {
            ring_ms,
            first_talk_ms: talk_ms,
            talk_ms,
        }
    }
}

/// A SIPp desk phone registered as `agentN` (password `agentNpw`) on the PBX
/// from SIP port 5070+N, media port 40000+10N (the kit's numbering), handling
/// every INVITE with `acd_agent.xml` (or `acd_agent_busy.xml`); both answer
/// acdd's OPTIONS probes. `rtp_port`: the port its SDP announces (a test's
/// [`RtpPeer`], to measure what acdd relays to the agent); default its own
/// media port. It plays `agent_pcap` after the ACK; `None`: it sends no
/// audio (the test's [`RtpPeer`] speaks for it, from the SDP port).
/// `agentN` for N in 1..=6 exists on the PBX.
pub fn phone(
    state: &Path,
    n: u16,
    mode: Mode,
    rtp_port: Option<u16>,
    agent_pcap: Option<&Path>,
) -> Sipp {
    phone_refer(state, n, mode, rtp_port, agent_pcap, "sip:nobody@127.0.0.1")
}

/// [`phone`], with the transfer target of [`Mode::Transfer`].
pub fn phone_refer(
    state: &Path,
    n: u16,
    mode: Mode,
    rtp_port: Option<u16>,
    agent_pcap: Option<&Path>,
    refer_to: &str,
) -> Sipp {
    crate::require(&["sipp"]);
    let user = format!("agent{n}");
    let media_port = 40000 + 10 * n;
    let drop: &[&str] = if agent_pcap.is_some() { &[] } else { &["PLAY"] };
    let ooc = match mode {
        Mode::Answer {
            ring_ms,
            first_talk_ms,
            talk_ms,
        } => scenario(
            state,
            "acd_agent.xml",
            &format!("{user}-phone"),
            &[
                ("RING_MS", ring_ms),
                ("FIRST_TALK_MS", first_talk_ms),
                ("TALK_MS", talk_ms),
            ],
            drop,
        ),
        Mode::NoAnswer => scenario(
            state,
            "acd_agent.xml",
            &format!("{user}-phone"),
            &[("RING_MS", 0)],
            drop,
        ),
        Mode::Busy => crate::peers_dir().join("sipp/acd_agent_busy.xml"),
        Mode::Transfer { ring_ms } => scenario(
            state,
            "acd_agent_refer.xml",
            &format!("{user}-phone"),
            &[("RING_MS", ring_ms)],
            drop,
        ),
    };
    let messages = state.join(format!("{user}-messages.log"));
    let errors = state.join(format!("{user}-errors.log"));
    let mut cmd = Command::new("sipp");
    cmd.arg("127.0.0.1:5060")
        .arg("-sf")
        .arg(crate::peers_dir().join("sipp/agent_register.xml"))
        .arg("-oocsf")
        .arg(&ooc)
        .args(["-s", &user, "-au", &user, "-ap", &format!("{user}pw")])
        .arg("-key")
        .arg("agent_pcap")
        .arg(agent_pcap.unwrap_or(Path::new(SAMPLE_PCAP)))
        .args(["-key", "rtp_port"])
        .arg(rtp_port.unwrap_or(media_port).to_string())
        .args(["-key", "refer_to", refer_to])
        .args(["-i", "127.0.0.1", "-p"])
        .arg((5070 + n).to_string())
        .args(["-bind_local", "-mi", "127.0.0.1", "-mp"])
        .arg(media_port.to_string())
        .args(["-ci", "127.0.0.1", "-m", "1", "-nostdin"])
        .args(["-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .env("TZ", "UTC");
    let proc = Proc::spawn(&user, cmd, state.join(format!("{user}.out")));
    Sipp {
        proc,
        messages,
        errors,
    }
}

/// A citizen calling 3939 with `caller_acd.xml`.
pub struct CallerSpec<'a> {
    /// Names the logs and the scenario copy.
    pub name: &'a str,
    /// The From user: acdd's "number you call from" (the callback number).
    pub from_user: &'a str,
    pub sip_port: u16,
    /// SIPp's own media port (-mp; it binds it and +2): where it plays from.
    pub media_port: u16,
    /// The port its SDP announces: the test's RTP listener.
    pub rtp_port: u16,
    /// Played from `media_port` `play_after_ms` after the ACK (SIPp replays
    /// it with UDP source port 0); `None`: no audio from SIPp (the test's
    /// [`RtpPeer`] speaks for the caller, from the SDP port).
    pub talk_pcap: Option<&'a Path>,
    pub play_after_ms: u64,
    /// It hangs up itself that long after the ACK (0 = waits for acdd's BYE).
    pub hold_ms: u64,
    /// Calls started at `rate` per second.
    pub count: usize,
    pub rate: usize,
}

impl CallerSpec<'static> {
    /// One citizen calling from a mobile number: SIP 5090, SIPp media 41010, the SDP
    /// pointing at the test's RTP listener on 41000, waiting for acdd's BYE. Tests change
    /// what their scenario needs with `..CallerSpec::citizen()`.
    pub fn citizen() -> CallerSpec<'static> {
        CallerSpec {
            name: "caller",
            from_user: "+33612345678",
            sip_port: 5090,
            media_port: 41010,
            rtp_port: 41000,
            talk_pcap: None,
            play_after_ms: 0,
            hold_ms: 0,
            count: 1,
            rate: 1,
        }
    }
}

pub fn caller(state: &Path, spec: &CallerSpec) -> Sipp {
    caller_to(state, spec, "3939")
}

/// The same, dialing `service` (e.g. an agent's feature code `*52`).
pub fn caller_to(state: &Path, spec: &CallerSpec, service: &str) -> Sipp {
    crate::require(&["sipp"]);
    let sf = scenario(
        state,
        "caller_acd.xml",
        spec.name,
        &[
            ("PLAY_AFTER_MS", spec.play_after_ms),
            ("HOLD_MS", spec.hold_ms),
        ],
        if spec.talk_pcap.is_some() {
            &[]
        } else {
            &["PLAY"]
        },
    );
    let messages = state.join(format!("{}-messages.log", spec.name));
    let errors = state.join(format!("{}-errors.log", spec.name));
    let mut cmd = Command::new("sipp");
    cmd.arg("127.0.0.1:5060")
        .arg("-sf")
        .arg(&sf)
        .args(["-s", service, "-i", "127.0.0.1", "-p"])
        .arg(spec.sip_port.to_string())
        .args(["-bind_local", "-ci", "127.0.0.1", "-mi", "127.0.0.1", "-mp"])
        .arg(spec.media_port.to_string())
        .args(["-key", "rtp_port"])
        .arg(spec.rtp_port.to_string())
        .args(["-key", "from_user", spec.from_user, "-key", "talk_pcap"])
        .arg(spec.talk_pcap.unwrap_or(Path::new(SAMPLE_PCAP)))
        .arg("-m")
        .arg(spec.count.to_string())
        .arg("-l")
        .arg(spec.count.to_string())
        .arg("-r")
        .arg(spec.rate.to_string())
        .args(["-nostdin", "-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .env("TZ", "UTC");
    let proc = Proc::spawn(spec.name, cmd, state.join(format!("{}.out", spec.name)));
    Sipp {
        proc,
        messages,
        errors,
    }
}

/// The PCMA payload of SIPp's sample recording, concatenated (8 kHz A-law).
pub fn sample_alaw() -> Vec<u8> {
    let bytes = std::fs::read(SAMPLE_PCAP).unwrap_or_else(|e| panic!("read {SAMPLE_PCAP}: {e}"));
    rtp_payloads(&bytes).concat()
}

/// The RTP payloads of a classic pcap (Ethernet, IPv4, UDP), in file order.
fn rtp_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let le = pcap.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1]);
    let u32_at = |b: &[u8], i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32_at(pcap, at + 8) as usize;
        let frame = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        at += 16 + len;
        if frame.len() < 14 + 20 + 8 + 12 {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(rtp) = ip.get(ihl + 8..) else {
            continue;
        };
        if rtp.len() < 12 || rtp[0] >> 6 != 2 {
            continue;
        }
        let start = 12 + 4 * usize::from(rtp[0] & 0x0f);
        if let Some(p) = rtp.get(start..) {
            out.push(p.to_vec());
        }
    }
    out
}

/// Speech unlike anything acdd plays itself: SIPp's sample recording played
/// backwards, `repeats` times (8 kHz A-law).
pub fn reversed_speech(repeats: usize) -> Vec<u8> {
    let mut one = sample_alaw();
    one.reverse();
    one.repeat(repeats)
}

/// One RTP stream with the RFC 4733 `digits` (PT 101).
pub fn dtmf_pcap(state: &Path, digits: &str) -> PathBuf {
    let pcap = state.join(format!("dtmf-{digits}.pcap"));
    make_pcap(&["--digits", digits], &pcap);
    pcap
}

fn make_pcap(args: &[&str], out: &Path) {
    crate::require(&["python3"]);
    let status = Command::new("python3")
        .arg(crate::peers_dir().join("make-pcap.py"))
        .args(args)
        .arg("-o")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run make-pcap.py");
    assert!(status.success(), "make-pcap.py {args:?} failed");
}

/// How many of `packets` carry audio cut from `source` (A-law bytes): the
/// first 16 bytes of the payload are found in it. A relay may re-packetize
/// (30 ms in, 20 ms out) but copies the G.711 bytes; silence is not counted
/// (it would match anywhere).
pub fn packets_from(packets: &[&Packet], source: &[u8], min_rms: f64) -> usize {
    packets
        .iter()
        .filter(|p| p.payload_type == 8 && p.payload.len() >= 16 && p.rms() > min_rms)
        .filter(|p| source.windows(16).any(|w| w == &p.payload[..16]))
        .count()
}

/// The Call-ID of each INVITE a SIPp process sent, in order.
pub fn sent_invite_call_ids(sipp: &Sipp) -> Vec<String> {
    sipp.trace()
        .iter()
        .filter(|m| !m.received && m.first_line.starts_with("INVITE "))
        .filter_map(|m| header(&m.text, "Call-ID"))
        .fold(Vec::new(), |mut v, id| {
            if !v.contains(&id) {
                v.push(id);
            }
            v
        })
}

/// A header's value in a traced message.
pub fn header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The queue journal and the names it uses.
pub mod journal {
    use std::path::Path;
    use std::process::Command;

    use serde_json::Value;

    /// `acdd report journal --format json --config CONFIG`: an array of
    /// `{ "at", "event", "call_id", "agent", "queue", "detail" }`, oldest first.
    pub fn read(config: &Path) -> Vec<Value> {
        let out = Command::new(crate::acdd::binary())
            .args(["report", "journal", "--format", "json", "--config"])
            .arg(config)
            .output()
            .expect("run acdd report journal");
        assert!(
            out.status.success(),
            "acdd report journal failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice(&out.stdout) {
            Ok(Value::Array(v)) => v,
            other => panic!("the journal is not a JSON array: {other:?}"),
        }
    }

    fn event(e: &Value) -> &str {
        e["event"].as_str().unwrap_or("")
    }

    fn text(v: &Value) -> String {
        v.as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string())
    }

    /// The offers to agents, in order, with their result: `(agent, result)`
    /// where result is `no_answer`, `busy`, `answered`, … (`offered` paired
    /// with its `offer_ended`; `"?"` while an offer is open). `call_id`
    /// narrows to one caller (the journal's `call_id`, the SIP Call-ID).
    pub fn offers(journal: &[Value], call_id: Option<&str>) -> Vec<(String, String)> {
        let mine = |e: &Value| call_id.is_none_or(|c| e["call_id"].as_str() == Some(c));
        let mut out: Vec<(String, String, Value)> = Vec::new();
        for e in journal.iter().filter(|e| mine(e)) {
            match event(e) {
                "offered" => out.push((text(&e["agent"]), "?".into(), offer_key(e))),
                "offer_ended" => {
                    let key = offer_key(e);
                    let agent = text(&e["agent"]);
                    let result = e["detail"]["result"]
                        .as_str()
                        .or_else(|| e["detail"]["outcome"].as_str())
                        .unwrap_or("")
                        .to_string();
                    // The open offer with this id (or, without ids, to this agent).
                    if let Some(o) = out.iter_mut().find(|o| {
                        o.1 == "?"
                            && if key.is_null() {
                                o.0 == agent
                            } else {
                                o.2 == key
                            }
                    }) {
                        o.1 = result;
                    }
                }
                _ => {}
            }
        }
        out.into_iter().map(|(a, r, _)| (a, r)).collect()
    }

    fn offer_key(e: &Value) -> Value {
        e["detail"]["offer"].clone()
    }

    /// The callback steps, in journal order: `promised`, `placed`,
    /// `completed`, `failed` (events `callback_*`).
    pub fn callback_steps(journal: &[Value]) -> Vec<String> {
        journal
            .iter()
            .filter_map(|e| event(e).strip_prefix("callback_").map(String::from))
            .collect()
    }

    /// The first journal entry of this event.
    pub fn first<'a>(journal: &'a [Value], name: &str) -> Option<&'a Value> {
        journal.iter().find(|e| event(e) == name)
    }

    /// The queue position recorded when a callback was promised, if given.
    pub fn callback_position(journal: &[Value]) -> Option<u64> {
        first(journal, "callback_promised").and_then(|e| e["detail"]["position"].as_u64())
    }

    /// The queue position of a caller when they joined the line (`arrived`).
    pub fn arrival_position(journal: &[Value], call_id: &str) -> Option<u64> {
        journal
            .iter()
            .find(|e| event(e) == "arrived" && e["call_id"].as_str() == Some(call_id))
            .and_then(|e| e["detail"]["position"].as_u64())
    }

    /// Index in the journal of the first offer made for this caller.
    pub fn first_offer_index(journal: &[Value], call_id: &str) -> Option<usize> {
        journal
            .iter()
            .position(|e| event(e) == "offered" && e["call_id"].as_str() == Some(call_id))
    }

    /// Index in the journal of the first entry of `name`.
    pub fn index_of(journal: &[Value], name: &str) -> Option<usize> {
        journal.iter().position(|e| event(e) == name)
    }

    /// Indexes of the entries `answered` (an agent answered a caller).
    pub fn answers(journal: &[Value]) -> Vec<usize> {
        journal
            .iter()
            .enumerate()
            .filter(|(_, e)| event(e) == "answered")
            .map(|(i, _)| i)
            .collect()
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time as the reports print it
/// (`2026-12-07T18:00:03.25Z`, `…+01:00`): comparable with SIPp traces and
/// RTP arrivals, and ordered correctly (string order is not, when a
/// fraction is omitted).
pub fn epoch(ts: &str) -> Option<f64> {
    let (date, rest) = ts.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0.0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (t, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1.0 } else { 1.0 };
        let (h, mi) = off[1..].split_once(':')?;
        (
            t,
            sign * (h.parse::<f64>().ok()? * 3600.0 + mi.parse::<f64>().ok()? * 60.0),
        )
    };
    let mut t = time.split(':');
    let h: f64 = t.next()?.parse().ok()?;
    let mi: f64 = t.next()?.parse().ok()?;
    let s: f64 = t.next()?.parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    Some(days as f64 * 86400.0 + h * 3600.0 + mi * 60.0 + s - offset)
}

#[test]
fn rfc3339_to_epoch() {
    assert_eq!(epoch("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(epoch("2026-12-04T16:49:30Z"), Some(1_796_402_970.0));
    assert_eq!(epoch("2026-12-04T17:49:30.5+01:00"), Some(1_796_402_970.5));
}

/// A phone's media end: one UDP port that receives (and records, like
/// [`crate::audio::RtpListener`]) and sends, as a real phone does (RFC 4961
/// symmetric RTP), so acdd may answer to the SDP address or to the packets'
/// source: both are this port.
pub struct RtpPeer {
    pub port: u16,
    sock: UdpSocket,
    packets: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RtpPeer {
    pub fn bind(port: u16) -> RtpPeer {
        let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind the RTP peer");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rx, p, st) = (
            sock.try_clone().expect("clone"),
            packets.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, _)) = rx.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(pkt) = parse_rtp(&buf[..n], now_epoch()) {
                    if let Ok(mut v) = p.lock() {
                        v.push(pkt);
                    }
                }
            }
        });
        RtpPeer {
            port,
            sock,
            packets,
            stop,
            threads: vec![thread],
        }
    }

    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Sends `alaw` to `to` in the background: PCMA (PT 8), 20 ms packets
    /// paced on the clock, one SSRC, consecutive sequence numbers.
    pub fn send_alaw(&mut self, to: SocketAddr, alaw: Vec<u8>) {
        let (tx, st) = (self.sock.try_clone().expect("clone"), self.stop.clone());
        let ssrc = 0x4c44_0000 | u32::from(self.port);
        self.threads.push(std::thread::spawn(move || {
            let start = Instant::now();
            for (i, frame) in alaw.chunks_exact(160).enumerate() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let due = start + Duration::from_millis(20 * i as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut pkt = Vec::with_capacity(172);
                pkt.extend_from_slice(&[0x80, if i == 0 { 0x88 } else { 0x08 }]);
                pkt.extend_from_slice(&(i as u16).to_be_bytes());
                pkt.extend_from_slice(&((i as u32) * 160).to_be_bytes());
                pkt.extend_from_slice(&ssrc.to_be_bytes());
                pkt.extend_from_slice(frame);
                let _ = tx.send_to(&pkt, to);
            }
        }));
    }
}

impl RtpPeer {
    /// Sends one RFC 4733 digit to `to` in the background (PT 101, 120 ms
    /// of updates every 20 ms, then the end packet three times, RFC 4733
    /// §2.5.1.4), as a phone does from its RTP port.
    pub fn send_digit(&mut self, to: SocketAddr, digit: char) {
        let event = match digit {
            '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            other => panic!("not a DTMF digit: {other:?}"),
        };
        let (tx, st) = (self.sock.try_clone().expect("clone"), self.stop.clone());
        let ssrc = 0x4c44_1000 | u32::from(self.port);
        self.threads.push(std::thread::spawn(move || {
            let (ts, mut seq) = (8000u32, 100u16);
            let mut send = |duration: u16, end: bool, first: bool| {
                let mut pkt = vec![0x80, if first { 0x80 | 101 } else { 101 }];
                pkt.extend_from_slice(&seq.to_be_bytes());
                pkt.extend_from_slice(&ts.to_be_bytes());
                pkt.extend_from_slice(&ssrc.to_be_bytes());
                pkt.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
                pkt.extend_from_slice(&duration.to_be_bytes());
                let _ = tx.send_to(&pkt, to);
                seq = seq.wrapping_add(1);
            };
            for i in 1..=6u16 {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                send(160 * i, false, i == 1);
                std::thread::sleep(Duration::from_millis(20));
            }
            for _ in 0..3 {
                send(960, true, false);
            }
        }));
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Now, in seconds since the Unix epoch (as SIPp traces and RTP arrivals).
pub fn epoch_now() -> f64 {
    now_epoch()
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3550 §5.1, as the harness's listener reads it.
fn parse_rtp(b: &[u8], at: f64) -> Option<Packet> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let start = 12 + 4 * usize::from(b[0] & 0x0f);
    Some(Packet {
        at,
        payload_type: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(start..)?.to_vec(),
    })
}

/// The audio address of an SDP body (`c=` and the first `m=audio`).
pub fn sdp_audio_addr(body: &str) -> Option<SocketAddr> {
    let ip = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

/// One HTTP/1.1 request to the control API on 127.0.0.1:`port`; returns the
/// status code and the JSON body.
pub fn http(port: u16, method: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

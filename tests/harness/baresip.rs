//! baresip 1.0, a real softphone, headless: registered on the PBX as
//! `agentN`, driven through its ctrl_tcp socket (netstring-framed JSON:
//! dial, DTMF, hang up), and listened to through its sndfile filter, which
//! writes the decoded audio of each call to a WAV file the test measures.
//!
//! Ports of agent N (as in the peer kit): SIP 127.0.0.1:(5100+2N) (baresip
//! also binds TCP +1, hence the step of 2), RTP 42000+10N..+9, ctrl_tcp
//! 127.0.0.1:(4400+N).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::proc::Proc;

/// Samples per second of everything baresip sends and writes here (G.711).
pub const RATE: u32 = 8000;

/// How the phone treats an incoming call (the account's `answermode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answers at once (a desk phone in auto-answer).
    Auto,
    /// Rings until cancelled.
    Manual,
}

/// What the phone sends: baresip reads it from a WAV file and hangs up
/// the call when the file ends, so it lasts `seconds`, longer than any test.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Silence {
        seconds: u32,
    },
    /// A pure tone, easy to tell from anything acdd plays itself.
    Tone {
        hz: f64,
        amplitude: i16,
        seconds: u32,
    },
}

impl Source {
    fn samples(&self) -> Vec<i16> {
        match *self {
            Source::Silence { seconds } => vec![0; (RATE * seconds) as usize],
            Source::Tone {
                hz,
                amplitude,
                seconds,
            } => (0..RATE * seconds)
                .map(|i| {
                    let t = f64::from(i) / f64::from(RATE);
                    (f64::from(amplitude) * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
                })
                .collect(),
        }
    }
}

pub fn sip_port(n: u16) -> u16 {
    5100 + 2 * n
}

pub fn rtp_port(n: u16) -> u16 {
    42000 + 10 * n
}

pub fn ctrl_port(n: u16) -> u16 {
    4400 + n
}

pub struct Baresip {
    pub n: u16,
    /// Its config directory (config, accounts, contacts).
    pub dir: PathBuf,
    /// Where sndfile writes the calls' audio.
    pub audio_dir: PathBuf,
    proc: Proc,
    ctrl: Ctrl,
}

impl Baresip {
    /// Writes the config of agent `n` from `tests/peers/baresip/*.in` into
    /// the state dir, starts baresip and connects to its control socket.
    /// The caller waits for the registration in the PBX
    /// ([`crate::kamailio::Kamailio::wait_registered`]).
    pub fn start(state: &Path, n: u16, answer: Answer, source: Source) -> Baresip {
        crate::require(&["baresip"]);
        let user = format!("agent{n}");
        let dir = state.join(format!("baresip-{user}"));
        let audio_dir = dir.join("audio");
        std::fs::create_dir_all(&audio_dir).expect("baresip dirs");
        let wav = dir.join("source.wav");
        write_wav(&wav, &source.samples());
        let templates = crate::peers_dir().join("baresip");
        let fill = |name: &str, pairs: &[(&str, String)]| {
            let mut text = std::fs::read_to_string(templates.join(format!("{name}.in")))
                .unwrap_or_else(|e| panic!("read the baresip template {name}.in: {e}"));
            for (key, value) in pairs {
                text = text.replace(&format!("@{key}@"), value);
            }
            assert!(
                !has_placeholder(&text),
                "{name}.in has a field the harness does not fill"
            );
            std::fs::write(dir.join(name), text).expect("write the baresip config");
        };
        fill(
            "config",
            &[
                ("SIP_PORT", sip_port(n).to_string()),
                ("RTP_LO", rtp_port(n).to_string()),
                ("RTP_HI", (rtp_port(n) + 9).to_string()),
                ("CTRL_PORT", ctrl_port(n).to_string()),
                ("AUDIO_SOURCE", wav.display().to_string()),
                ("SND_PATH", audio_dir.display().to_string()),
            ],
        );
        let mode = match answer {
            Answer::Auto => "auto",
            Answer::Manual => "manual",
        };
        fill(
            "accounts",
            &[
                ("USER", user.clone()),
                ("PASSWORD", format!("{user}pw")),
                ("MODE", mode.to_string()),
            ],
        );
        std::fs::write(dir.join("contacts"), "").expect("write the contacts");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).arg("-v");
        let mut proc = Proc::spawn(
            &format!("baresip-{user}"),
            cmd,
            state.join(format!("baresip-{user}.log")),
        );
        let ctrl = crate::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            Ctrl::connect(ctrl_port(n))
        });
        let Some(ctrl) = ctrl.filter(|_| proc.is_running()) else {
            panic!(
                "baresip {user} did not open its control socket:\n{}",
                proc.log_text()
            );
        };
        Baresip {
            n,
            dir,
            audio_dir,
            proc,
            ctrl,
        }
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Runs a ctrl_tcp command and waits for its response; `Ok(data)` when
    /// baresip says ok.
    pub fn command(&self, command: &str, params: &str) -> Result<String, String> {
        self.ctrl
            .command(command, params, Duration::from_secs(5))
            .map_err(|e| format!("{e}\n--- baresip\n{}", self.log()))
    }

    /// Calls `uri` (e.g. `sip:3939@127.0.0.1`: through the PBX).
    pub fn dial(&self, uri: &str) {
        self.command("dial", uri)
            .unwrap_or_else(|e| panic!("baresip could not dial {uri}: {e}"));
    }

    /// Presses one key in the current call: baresip sends it as an RFC 4733
    /// telephone-event, its default.
    pub fn press(&self, key: char) {
        self.command("sndcode", &key.to_string())
            .unwrap_or_else(|e| panic!("baresip could not send {key:?}: {e}"));
    }

    pub fn hangup(&self) {
        self.command("hangup", "")
            .unwrap_or_else(|e| panic!("baresip could not hang up: {e}"));
    }

    /// The events baresip pushed on the control socket so far (`type`:
    /// CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED, REGISTER_OK…).
    pub fn events(&self) -> Vec<Value> {
        self.ctrl.events()
    }

    /// Waits for an event of this `type`.
    pub fn wait_event(&self, kind: &str, limit: Duration) -> Option<Value> {
        crate::wait_for(limit, Duration::from_millis(20), || {
            self.events().into_iter().find(|e| e["type"] == kind)
        })
    }

    /// What the phone received in its last call, decoded: sndfile's
    /// `*-dec.wav` (readable while the call runs).
    pub fn received(&self) -> Option<Wav> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.audio_dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        // The names carry the call's start time, to the second.
        files.sort();
        Wav::read(files.last()?)
    }

    /// Waits until the received audio, from sample `from` on, holds
    /// `seconds` of 20 ms frames that `accept` recognizes; returns all of it.
    pub fn wait_received(
        &self,
        limit: Duration,
        from: usize,
        seconds: f64,
        accept: impl Fn(&[i16]) -> bool,
    ) -> Option<Wav> {
        crate::wait_for(limit, Duration::from_millis(100), || {
            self.received()
                .filter(|w| w.since(from).seconds_where(&accept) >= seconds)
        })
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // By its PID, even when the test failed half-way.
        self.proc.stop(Duration::from_secs(3));
        self.ctrl.close();
    }
}

/// The control connection: a reader thread keeps every message (events and
/// responses), commands carry a token to find their response.
struct Ctrl {
    stream: Mutex<TcpStream>,
    messages: Arc<Mutex<Vec<Value>>>,
    next_token: AtomicU64,
    reader: Option<JoinHandle<()>>,
}

impl Ctrl {
    fn connect(port: u16) -> Option<Ctrl> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut rx = stream.try_clone().ok()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match rx.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                while let Some((message, used)) = netstring(&buf) {
                    if let Ok(v) = serde_json::from_slice::<Value>(message) {
                        if let Ok(mut all) = sink.lock() {
                            all.push(v);
                        }
                    }
                    buf.drain(..used);
                }
            }
        });
        Some(Ctrl {
            stream: Mutex::new(stream),
            messages,
            next_token: AtomicU64::new(1),
            reader: Some(reader),
        })
    }

    fn command(&self, command: &str, params: &str, limit: Duration) -> Result<String, String> {
        let token = format!("t{}", self.next_token.fetch_add(1, Ordering::Relaxed));
        let body =
            serde_json::json!({ "command": command, "params": params, "token": token }).to_string();
        {
            let mut s = self.stream.lock().map_err(|_| "ctrl lock")?;
            write!(s, "{}:{body},", body.len()).map_err(|e| format!("ctrl_tcp write: {e}"))?;
        }
        let response = crate::wait_for(limit, Duration::from_millis(10), || {
            self.events_and_responses()
                .into_iter()
                .find(|m| m["response"] == true && m["token"] == token.as_str())
        })
        .ok_or_else(|| format!("no response to {command} {params:?}"))?;
        let data = response["data"].as_str().unwrap_or("").to_string();
        if response["ok"] == true {
            Ok(data)
        } else {
            Err(format!("{command} {params:?} refused: {response}"))
        }
    }

    fn events_and_responses(&self) -> Vec<Value> {
        self.messages.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn events(&self) -> Vec<Value> {
        self.events_and_responses()
            .into_iter()
            .filter(|m| m["event"] == true)
            .collect()
    }

    fn close(&mut self) {
        if let Ok(s) = self.stream.lock() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// Whether a template still holds an `@NAME@` field (capitals and `_`).
fn has_placeholder(text: &str) -> bool {
    let parts: Vec<&str> = text.split('@').collect();
    // Only the parts with an @ on both sides can be a field's name.
    parts.len() > 2
        && parts[1..parts.len() - 1].iter().any(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
}

/// One netstring (`LEN:BYTES,`) at the start of `buf`: its bytes and the
/// length it takes, or None until it is complete.
fn netstring(buf: &[u8]) -> Option<(&[u8], usize)> {
    let colon = buf.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&buf[..colon]).ok()?.parse().ok()?;
    let end = colon + 1 + len;
    (buf.len() > end && buf[end] == b',').then(|| (&buf[colon + 1..end], end + 1))
}

/// 16-bit mono PCM, as sndfile writes it.
#[derive(Debug, Clone)]
pub struct Wav {
    pub rate: u32,
    pub samples: Vec<i16>,
}

impl Wav {
    /// Reads a WAV being written: the sizes in its header are only set
    /// when the call ends, so the samples are whatever follows the `data`
    /// chunk's header.
    pub fn read(path: &Path) -> Option<Wav> {
        let bytes = std::fs::read(path).ok()?;
        if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
            return None;
        }
        let (mut at, mut rate, mut format_ok) = (12, 0, false);
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
            let body = at + 8;
            if id == b"fmt " {
                let f = bytes.get(body..body + 16)?;
                let (format, channels) = (
                    u16::from_le_bytes([f[0], f[1]]),
                    u16::from_le_bytes([f[2], f[3]]),
                );
                rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                let bits = u16::from_le_bytes([f[14], f[15]]);
                format_ok = format == 1 && channels == 1 && bits == 16;
            } else if id == b"data" {
                assert!(format_ok, "{}: not 16-bit mono PCM", path.display());
                let samples = bytes[body..]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return Some(Wav { rate, samples });
            }
            at = body + size + (size & 1);
        }
        None
    }

    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }

    /// The samples from `from` on (none if there are not that many yet).
    pub fn since(&self, from: usize) -> Wav {
        Wav {
            rate: self.rate,
            samples: self.samples.get(from..).unwrap_or_default().to_vec(),
        }
    }

    /// 20 ms frames.
    pub fn frames(&self) -> impl Iterator<Item = &[i16]> {
        self.samples.chunks_exact(self.rate as usize / 50)
    }

    /// Seconds of 20 ms frames that `accept` recognizes.
    pub fn seconds_where(&self, accept: impl Fn(&[i16]) -> bool) -> f64 {
        self.frames().filter(|f| accept(f)).count() as f64 * 0.02
    }
}

/// Writes 8 kHz 16-bit mono PCM (what baresip's aufile source reads).
pub fn write_wav(path: &Path, samples: &[i16]) {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Root mean square of a frame.
pub fn rms(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / frame.len() as f64).sqrt()
}

/// The share of a frame's energy at `hz` (Goertzel): near 1 for a pure tone
/// at that frequency, near 0 for speech, music or another tone. Exact when
/// the frame holds a whole number of periods (160 samples: 50 Hz steps).
pub fn tone_share(frame: &[i16], rate: u32, hz: f64) -> f64 {
    let n = frame.len() as f64;
    let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
    if frame.is_empty() || energy == 0.0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in frame {
        let s0 = f64::from(*x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A sine of amplitude A: power = (A n / 2)^2 and energy = A^2 n / 2.
    2.0 * power / (n * energy)
}

/// G.711 A-law compression (ITU-T G.711), to send a tone as a phone would.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3; // 13-bit magnitude
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg_end = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let seg = seg_end.iter().position(|e| pcm <= *e).unwrap_or(8);
    let a = if seg >= 8 {
        0x7f
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        ((seg as i32) << 4) | ((pcm >> shift) & 0x0f)
    };
    (a as u8) ^ mask
}

#[test]
fn alaw_round_trip_and_tone_share() {
    use crate::audio::alaw_decode;
    for s in [-32000i16, -1000, -9, 0, 8, 1000, 32000] {
        let back = f64::from(alaw_decode(alaw_encode(s)));
        assert!(
            (back - f64::from(s)).abs() <= f64::from(s).abs() / 16.0 + 16.0,
            "{s} -> {back}"
        );
    }
    let tone = |hz: f64| -> Vec<i16> {
        (0..160)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(i) / 8000.0).sin()) as i16
            })
            .collect()
    };
    assert!(tone_share(&tone(1000.0), 8000, 1000.0) > 0.95);
    assert!(tone_share(&tone(1800.0), 8000, 1000.0) < 0.05);
    assert!(tone_share(&[0; 160], 8000, 1000.0) == 0.0);
    assert_eq!(netstring(b"3:abc,4:"), Some((&b"abc"[..], 6)));
    assert_eq!(netstring(b"3:ab"), None);
    assert!(has_placeholder("a @SIP_PORT@ b"));
    assert!(has_placeholder("<sip:@USER@@127.0.0.1>"));
    assert!(!has_placeholder(
        "<sip:agent1@127.0.0.1>;auth_pass=agent1pw"
    ));
}

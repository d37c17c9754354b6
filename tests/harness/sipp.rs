//! SIPp runs and the message traces they leave.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::Proc;

/// One SIPp client run in the background.
pub struct Sipp {
    pub proc: Proc,
    pub messages: PathBuf,
    pub errors: PathBuf,
}

/// A caller dialing `service` through the PBX at 127.0.0.1:5060 with the
/// scenario `tests/peers/sipp/<scenario>`, from SIP port `sip_port`.
pub fn call(
    state: &Path,
    name: &str,
    scenario: &str,
    service: &str,
    sip_port: u16,
    keys: &[(&str, String)],
) -> Sipp {
    calls(state, name, scenario, service, sip_port, keys, 1, 1)
}

/// `count` such calls, started at `rate` per second, all at once in the end.
#[allow(clippy::too_many_arguments)]
pub fn calls(
    state: &Path,
    name: &str,
    scenario: &str,
    service: &str,
    sip_port: u16,
    keys: &[(&str, String)],
    count: usize,
    rate: usize,
) -> Sipp {
    crate::require(&["sipp"]);
    let messages = state.join(format!("{name}-messages.log"));
    let errors = state.join(format!("{name}-errors.log"));
    let mut cmd = Command::new("sipp");
    cmd.arg("127.0.0.1:5060")
        .arg("-sf")
        .arg(crate::peers_dir().join("sipp").join(scenario))
        .args(["-s", service])
        .args(["-i", "127.0.0.1", "-p"])
        .arg(sip_port.to_string())
        .args(["-bind_local", "-ci", "127.0.0.1", "-mi", "127.0.0.1"])
        .arg("-m")
        .arg(count.to_string())
        .arg("-l")
        .arg(count.to_string())
        .arg("-r")
        .arg(rate.to_string())
        .args(["-nostdin", "-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        // Timestamps in the trace are local time: pin them to UTC.
        .env("TZ", "UTC");
    for (k, v) in keys {
        cmd.arg("-key").arg(k).arg(v);
    }
    let proc = Proc::spawn(name, cmd, state.join(format!("{name}.out")));
    Sipp {
        proc,
        messages,
        errors,
    }
}

impl Sipp {
    /// Waits for SIPp to finish; true when every call succeeded (exit 0).
    pub fn wait_success(&mut self, limit: Duration) -> bool {
        match self.proc.wait_exit(limit) {
            Some(s) => s.success(),
            None => {
                self.proc.stop(Duration::from_secs(1));
                false
            }
        }
    }

    pub fn trace(&self) -> Vec<TracedMessage> {
        parse_trace(&crate::read(&self.messages))
    }

    pub fn describe(&self) -> String {
        format!(
            "--- sipp errors\n{}\n--- sipp messages\n{}",
            crate::read(&self.errors),
            crate::read(&self.messages)
        )
    }
}

/// One message from a `-trace_msg` file.
#[derive(Debug, Clone)]
pub struct TracedMessage {
    /// Seconds since the Unix epoch (the trace header, in UTC).
    pub at: f64,
    pub received: bool,
    /// Start line, e.g. "SIP/2.0 183 Session Progress" or "BYE sip:…".
    pub first_line: String,
    pub text: String,
}

impl TracedMessage {
    pub fn status(&self) -> Option<u16> {
        self.first_line
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|c| c.parse().ok())
    }

    pub fn body(&self) -> &str {
        self.text
            .split_once("\n\n")
            .or_else(|| self.text.split_once("\r\n\r\n"))
            .map(|(_, b)| b)
            .unwrap_or("")
    }
}

/// Parses SIPp's message trace: blocks opened by
/// `----------------------------------------------- 2026-12-04 16:49:30.365247`.
pub fn parse_trace(text: &str) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    for block in text
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = block.lines();
        let Some(stamp) = lines.next() else { continue };
        let Some(at) = parse_stamp(stamp.trim()) else {
            continue;
        };
        let Some(kind) = lines.next() else { continue };
        let received = kind.contains("received");
        let rest: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
        let first_line = rest
            .first()
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        out.push(TracedMessage {
            at,
            received,
            first_line,
            text: rest.join("\n"),
        });
    }
    out
}

fn parse_stamp(s: &str) -> Option<f64> {
    // "2026-12-04 16:49:30.365247" (possibly followed by more fields)
    let mut parts = s.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let ts: jiff_like::Civil = jiff_like::Civil::parse(date, time)?;
    Some(ts.unix_seconds())
}

/// A small civil-time-to-Unix conversion (UTC), to keep the harness free of
/// date crates.
mod jiff_like {
    pub struct Civil {
        days: i64,
        secs: f64,
    }

    impl Civil {
        pub fn parse(date: &str, time: &str) -> Option<Civil> {
            let mut d = date.split('-').map(|p| p.parse::<i64>());
            let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
            let mut t = time.split(':');
            let h: f64 = t.next()?.parse().ok()?;
            let mi: f64 = t.next()?.parse().ok()?;
            let s: f64 = t.next()?.parse().ok()?;
            Some(Civil {
                days: days_from_civil(y, m, day),
                secs: h * 3600.0 + mi * 60.0 + s,
            })
        }

        pub fn unix_seconds(&self) -> f64 {
            self.days as f64 * 86400.0 + self.secs
        }
    }

    /// Howard Hinnant's days_from_civil.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    #[test]
    fn epoch_and_a_known_day() {
        assert_eq!(
            Civil::parse("1970-01-01", "00:00:00").map(|c| c.unix_seconds()),
            Some(0.0)
        );
        // 2026-12-04T16:49:30Z = 1796402970
        assert_eq!(
            Civil::parse("2026-12-04", "16:49:30").map(|c| c.unix_seconds()),
            Some(1_796_402_970.0)
        );
    }
}

//! DTMF, one event stream whatever the way the key press travelled:
//!
//! - RFC 4733 telephone-events in RTP ([`Rfc4733Receiver`], [`rfc4733_packets`] to send),
//! - SIP INFO bodies ([`parse_dtmf_relay`]: `application/dtmf-relay` and `application/dtmf`),
//! - in-band tones in the audio ([`InbandDetector`], Goertzel, ITU-T Q.23/Q.24).
//!
//! All of it is pure: no IO, and the only clock is the `now: Instant` parameter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod inband;
pub use inband::InbandDetector;

/// How a digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RTP telephone-event (RFC 4733).
    Rfc4733,
    /// A SIP INFO request (application/dtmf-relay or application/dtmf).
    SipInfo,
    /// Dual tones detected in the audio (ITU-T Q.23).
    Inband,
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfEvent {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    /// How long the key was held, as far as the transport tells.
    pub duration_ms: u32,
    pub source: DtmfSource,
}

/// The RFC 4733 §3.2 event code of a digit (0-9, * = 10, # = 11, A-D = 12-15).
pub fn digit_to_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The digit of an RFC 4733 §3.2 event code; codes above 15 (flash, tones) are not digits.
pub fn code_to_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some(char::from(b'0' + code)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + code - 12)),
        _ => None,
    }
}

/// Duration assumed when a SIP INFO body does not say (the common default of SIP stacks).
pub const DEFAULT_INFO_DURATION_MS: u32 = 100;

/// Parses a SIP INFO body carrying a digit:
/// - `application/dtmf-relay` (the de-facto Cisco format): `Signal=5\r\nDuration=160\r\n`,
///   Duration in ms;
/// - `application/dtmf`: the digit alone (`5`).
///
/// Media-type parameters and case are ignored (RFC 3261 §20.15, RFC 2045 §5.1); a signal may
/// also be given as its event code (`Signal=11` for `#`, as some phones do). Anything else,
/// garbage included, yields `None`.
pub fn parse_dtmf_relay(content_type: &str, body: &[u8]) -> Option<DtmfEvent> {
    let mime = content_type.split(';').next()?.trim();
    let text = std::str::from_utf8(body).ok()?;
    if mime.eq_ignore_ascii_case("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("signal") {
                digit = signal_digit(value);
            } else if key.eq_ignore_ascii_case("duration") {
                duration = value.parse::<u32>().ok();
            }
        }
        Some(DtmfEvent {
            digit: digit?,
            duration_ms: duration.unwrap_or(DEFAULT_INFO_DURATION_MS).min(60_000),
            source: DtmfSource::SipInfo,
        })
    } else if mime.eq_ignore_ascii_case("application/dtmf") {
        Some(DtmfEvent {
            digit: signal_digit(text.trim())?,
            duration_ms: DEFAULT_INFO_DURATION_MS,
            source: DtmfSource::SipInfo,
        })
    } else {
        None
    }
}

fn signal_digit(value: &str) -> Option<char> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => digit_to_code(c).and_then(code_to_digit),
        _ => value.parse::<u8>().ok().and_then(code_to_digit),
    }
}

/// RTP clock of telephone-events when negotiated at 8000 Hz (RFC 4733 §7.1.1).
const EVENT_CLOCK_PER_MS: u32 = 8;
/// A started event with no packet for this long is over even though its end packets were
/// lost (RFC 4733 §2.5.2.2 leaves the choice to the receiver).
pub const LOST_END_TIMEOUT: Duration = Duration::from_millis(500);
/// How many ended events are remembered to drop their retransmitted end packets.
const ENDED_MEMORY: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    code: u8,
    duration: u16,
    last_seen: Instant,
}

/// RFC 4733 receiver: one event per key press.
///
/// An event is identified by its RTP timestamp and event code (RFC 4733 §2.5.2.1: all packets
/// of one event carry the event's start timestamp), never by sequence number: the three end
/// packets may repeat the same sequence number, and retransmitted updates arrive too. The
/// digit is reported at its end (so its duration is known), also when only end packets arrive
/// or when a new event starts before the previous one's end was seen.
#[derive(Debug, Default)]
pub struct Rfc4733Receiver {
    current: Option<Current>,
    ended: [Option<(u32, u8)>; ENDED_MEMORY],
    ended_next: usize,
    events: VecDeque<DtmfEvent>,
}

impl Rfc4733Receiver {
    pub fn new() -> Rfc4733Receiver {
        Rfc4733Receiver::default()
    }

    /// Feeds the payload of one telephone-event packet and its RTP timestamp.
    pub fn handle_packet(&mut self, now: Instant, timestamp: u32, payload: &[u8]) {
        self.handle_timeout(now);
        // RFC 4733 §2.3: event(8) E(1) R(1) volume(6) duration(16). Redundant blocks that may
        // follow (§2.5.1.5) describe older events, already seen or lost for good.
        let Some(&[code, flags, d0, d1]) = payload.get(..4) else {
            return;
        };
        if code_to_digit(code).is_none() {
            return;
        }
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);
        if self.ended.contains(&Some((timestamp, code))) {
            return; // a repeated end packet (§2.5.1.4) or a late update
        }
        let same = self
            .current
            .is_some_and(|c| c.timestamp == timestamp && c.code == code);
        if same {
            if let Some(c) = self.current.as_mut() {
                c.duration = c.duration.max(duration);
                c.last_seen = now;
            }
        } else {
            // A new event while the previous one never ended: its end packets were lost
            // (no-op when there was none).
            self.finish();
            self.current = Some(Current {
                timestamp,
                code,
                duration,
                last_seen: now,
            });
        }
        if end {
            self.finish();
        }
    }

    /// When a started event should be given up for lost end packets.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|c| c.last_seen + LOST_END_TIMEOUT)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.finish();
        }
    }

    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn finish(&mut self) {
        let Some(c) = self.current.take() else { return };
        self.ended[self.ended_next] = Some((c.timestamp, c.code));
        self.ended_next = (self.ended_next + 1) % ENDED_MEMORY;
        if let Some(digit) = code_to_digit(c.code) {
            self.events.push_back(DtmfEvent {
                digit,
                duration_ms: u32::from(c.duration) / EVENT_CLOCK_PER_MS,
                source: DtmfSource::Rfc4733,
            });
        }
    }
}

/// One telephone-event packet to send, `offset` after the event's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub offset: Duration,
    /// Set on the first packet of the event (RFC 4733 §2.5.1.3).
    pub marker: bool,
    /// The 4-byte payload (RFC 4733 §2.3).
    pub payload: [u8; 4],
}

/// Interval between updates of a long event.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);
/// Volume sent with our digits: -10 dBm0 (RFC 4733 §2.3.4, a usual DTMF level).
pub const SEND_VOLUME: u8 = 10;
/// Shortest and longest digit we send: Q.24 wants at least 40 ms; the 16-bit duration field
/// holds 8 s at 8 kHz (RFC 4733 §2.5.1.3 would segment longer events; a key is never held
/// that long by us).
pub const SEND_DURATION_MS: std::ops::RangeInclusive<u32> = 40..=8000;

/// The packets of one digit (RFC 4733 §2.5.1): a first packet with the marker, an update every
/// 50 ms carrying the duration so far, then the final packet with the E bit, sent three times
/// at the update interval (§2.5.1.4). All share the event's start timestamp, which the caller
/// puts in the RTP header. `None` for a character that is not a DTMF digit.
pub fn rfc4733_packets(digit: char, duration_ms: u32) -> Option<Vec<EventPacket>> {
    let code = digit_to_code(digit)?;
    let total = duration_ms.clamp(*SEND_DURATION_MS.start(), *SEND_DURATION_MS.end());
    let step = UPDATE_INTERVAL.as_millis() as u32;
    let packet = |ms: u32, duration: u32, end: bool, marker: bool| {
        let d = u16::try_from(duration * EVENT_CLOCK_PER_MS).unwrap_or(u16::MAX);
        let [d0, d1] = d.to_be_bytes();
        EventPacket {
            offset: Duration::from_millis(u64::from(ms)),
            marker,
            payload: [code, (u8::from(end) << 7) | SEND_VOLUME, d0, d1],
        }
    };
    let mut out = Vec::new();
    let mut t = 0;
    while t < total {
        // The duration field says how long the tone has lasted when the packet is sent;
        // the first packet says one packet interval, as most stacks do, not zero.
        out.push(packet(t, (t + step).min(total), false, t == 0));
        t += step;
    }
    for k in 0..3 {
        out.push(packet(total + k * step, total, true, false));
    }
    Some(out)
}

#[cfg(test)]
mod tests;

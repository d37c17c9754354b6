//! Minimal RTCP (RFC 3550 §6): build and parse SR, RR, SDES CNAME and BYE, and the
//! reception statistics of one source (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8). Pure: no IO,
//! no clock reads; `now: Instant` and the NTP wall-clock time are parameters. Parsing never
//! panics: every length is checked against the datagram first.

use std::time::{Duration, Instant};

/// Packet types (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
/// SDES item type of the canonical name (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;
/// Minimum report interval (RFC 3550 §6.2: 5 s recommended minimum).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Report blocks fit in the 5-bit count (RFC 3550 §6.4.1).
const MAX_BLOCKS: usize = 31;

/// Why a datagram is not RTCP we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet shorter than its header")]
    TooShort,
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("RTCP length field overruns the datagram")]
    LengthOverrun,
    #[error("RTCP {0} packet too short for its count")]
    Truncated(&'static str),
    #[error("invalid RTCP padding")]
    BadPadding,
}

/// The sender-info part of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32).
    pub ntp: u64,
    /// The RTP timestamp of the same instant, in the stream's clock.
    pub rtp_ts: u32,
    pub packets: u32,
    /// Payload octets (headers and padding excluded).
    pub octets: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed (duplicates can make it negative).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source, 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// One packet of a compound RTCP datagram; types we do not use are only named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Bye {
        sources: Vec<u32>,
        reason: Option<String>,
    },
    Other {
        packet_type: u8,
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses a compound RTCP datagram (RFC 3550 §6.1) into its packets. Checks of Appendix A.2:
/// version 2 in every packet, lengths that add up to the datagram, padding only in the last
/// packet. The first packet need not be an SR or RR: reduced-size RTCP (RFC 5506) exists, and
/// a lone BYE must still be heard.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut packets = Vec::new();
    let mut rest = buf;
    if rest.is_empty() {
        return Err(RtcpError::TooShort);
    }
    while !rest.is_empty() {
        let header = rest.get(..4).ok_or(RtcpError::TooShort)?;
        let version = header[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padding = header[0] & 0x20 != 0;
        let count = usize::from(header[0] & 0x1F);
        let packet_type = header[1];
        // RFC 3550 §6.4.1: length in 32-bit words minus one, header included.
        let words = usize::from(u16::from_be_bytes([header[2], header[3]])) + 1;
        let len = words * 4;
        let mut body = rest.get(4..len).ok_or(RtcpError::LengthOverrun)?;
        rest = &rest[len..];
        if padding {
            // Padding is only allowed in the last packet of a compound (A.2).
            if !rest.is_empty() {
                return Err(RtcpError::BadPadding);
            }
            let n = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
            if n == 0 || n > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - n];
        }
        packets.push(parse_one(packet_type, count, body)?);
    }
    Ok(packets)
}

fn parse_one(packet_type: u8, count: usize, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    Ok(match packet_type {
        PT_SR => {
            let ssrc = be32(body, 0).ok_or(RtcpError::Truncated("SR"))?;
            let hi = be32(body, 4).ok_or(RtcpError::Truncated("SR"))?;
            let lo = be32(body, 8).ok_or(RtcpError::Truncated("SR"))?;
            let info = SenderInfo {
                ntp: (u64::from(hi) << 32) | u64::from(lo),
                rtp_ts: be32(body, 12).ok_or(RtcpError::Truncated("SR"))?,
                packets: be32(body, 16).ok_or(RtcpError::Truncated("SR"))?,
                octets: be32(body, 20).ok_or(RtcpError::Truncated("SR"))?,
            };
            let reports = parse_blocks(body.get(24..).unwrap_or_default(), count, "SR")?;
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            }
        }
        PT_RR => {
            let ssrc = be32(body, 0).ok_or(RtcpError::Truncated("RR"))?;
            let reports = parse_blocks(body.get(4..).unwrap_or_default(), count, "RR")?;
            RtcpPacket::ReceiverReport { ssrc, reports }
        }
        PT_BYE => {
            // RFC 3550 §6.6: SC sources, then optionally a length-prefixed reason.
            let sources = (0..count)
                .map(|i| be32(body, 4 * i).ok_or(RtcpError::Truncated("BYE")))
                .collect::<Result<Vec<_>, _>>()?;
            let reason = body.get(4 * count..).and_then(|r| {
                let n = usize::from(*r.first()?);
                let text = r.get(1..1 + n)?;
                Some(String::from_utf8_lossy(text).into_owned())
            });
            RtcpPacket::Bye { sources, reason }
        }
        other => RtcpPacket::Other { packet_type: other },
    })
}

fn parse_blocks(b: &[u8], count: usize, what: &'static str) -> Result<Vec<ReportBlock>, RtcpError> {
    (0..count)
        .map(|i| {
            let at = 24 * i;
            let word = be32(b, at + 4).ok_or(RtcpError::Truncated(what))?;
            // 24-bit two's complement (RFC 3550 §6.4.1 "cumulative number of packets lost").
            let lost = ((word & 0x00FF_FFFF) << 8) as i32 >> 8;
            Ok(ReportBlock {
                ssrc: be32(b, at).ok_or(RtcpError::Truncated(what))?,
                fraction_lost: (word >> 24) as u8,
                cumulative_lost: lost,
                highest_seq: be32(b, at + 8).ok_or(RtcpError::Truncated(what))?,
                jitter: be32(b, at + 12).ok_or(RtcpError::Truncated(what))?,
                lsr: be32(b, at + 16).ok_or(RtcpError::Truncated(what))?,
                dlsr: be32(b, at + 20).ok_or(RtcpError::Truncated(what))?,
            })
        })
        .collect()
}

/// Writes the common header with a placeholder length; returns where it starts.
fn begin(out: &mut Vec<u8>, count: usize, packet_type: u8) -> usize {
    let start = out.len();
    out.push(0x80 | (count as u8 & 0x1F));
    out.push(packet_type);
    out.extend_from_slice(&[0, 0]);
    start
}

/// Pads to a 32-bit boundary with zeros and fills in the length (RFC 3550 §6.4.1).
fn finish(out: &mut Vec<u8>, start: usize) {
    while (out.len() - start) & 3 != 0 {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

/// Appends a compound report (RFC 3550 §6.1): an SR when `sender` is given (we sent RTP
/// since the last report, §6.4), else an RR; then an SDES with our CNAME, which every
/// compound packet must carry (§6.5.1). At most 31 report blocks are written.
pub fn write_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<&SenderInfo>,
    blocks: &[ReportBlock],
    cname: &str,
) {
    let blocks = &blocks[..blocks.len().min(MAX_BLOCKS)];
    let start = begin(
        out,
        blocks.len(),
        if sender.is_some() { PT_SR } else { PT_RR },
    );
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_ts.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    for b in blocks {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
    finish(out, start);
    // SDES: one chunk, the CNAME item, then a null octet ending the item list and padding
    // to the next 32-bit boundary (§6.5).
    let start = begin(out, 1, PT_SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    let name = &cname.as_bytes()[..cname.len().min(255)];
    out.push(SDES_CNAME);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(0);
    finish(out, start);
}

/// Appends a BYE for `ssrc` (RFC 3550 §6.6), after a report in the same compound packet.
pub fn write_bye(out: &mut Vec<u8>, ssrc: u32, reason: Option<&str>) {
    let start = begin(out, 1, PT_BYE);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(r) = reason {
        let r = &r.as_bytes()[..r.len().min(255)];
        out.push(r.len() as u8);
        out.extend_from_slice(r);
    }
    finish(out, start);
}

/// NTP timestamp of a wall-clock time given as time since the Unix epoch (RFC 3550 §4).
pub fn ntp_timestamp(since_unix: Duration) -> u64 {
    // Seconds between 1900-01-01 and 1970-01-01.
    const EPOCH_OFFSET: u64 = 2_208_988_800;
    let secs = since_unix.as_secs().wrapping_add(EPOCH_OFFSET) & 0xFFFF_FFFF;
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The next report interval: the 5 s minimum randomised over [0.5, 1.5] of itself so that
/// sessions do not synchronise (RFC 3550 §6.3.1). `random` is in [0, 1).
pub fn report_interval(random: f64) -> Duration {
    MIN_INTERVAL.mul_f64(0.5 + random.clamp(0.0, 1.0))
}

/// Reception statistics of the one source we receive on a session (RFC 3550 Appendix A.1
/// sequence tracking without probation, A.3 loss, A.8 jitter).
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    /// Sequence wraparounds, shifted (A.1 `cycles`).
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Jitter in timestamp units, scaled by 16 as in A.8 to stay in integers.
    jitter_x16: u32,
    transit: Option<i64>,
    origin: Option<Instant>,
    /// Middle 32 bits of the last SR's NTP timestamp and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

/// A.1: a jump beyond this is a restarted source; behind by less than this is misordering.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

impl ReceptionStats {
    pub fn new() -> ReceptionStats {
        ReceptionStats::default()
    }

    /// The source these statistics describe.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn restart(&mut self, ssrc: u32, seq: u16) {
        *self = ReceptionStats {
            ssrc: Some(ssrc),
            base_seq: u32::from(seq),
            max_seq: seq,
            last_sr: self.last_sr,
            ..ReceptionStats::default()
        };
    }

    /// One RTP packet received at `now`; `clock_rate` is the payload's RTP clock.
    pub fn on_rtp(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32, clock_rate: u32) {
        if self.ssrc != Some(ssrc) {
            self.restart(ssrc, seq);
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = seq;
            } else if delta != 0 && delta <= u16::MAX - MAX_MISORDER {
                // A very large jump: the source restarted its numbering (A.1).
                self.restart(ssrc, seq);
            }
        }
        self.received = self.received.wrapping_add(1);
        // A.8: transit = arrival - timestamp, both in timestamp units.
        let origin = *self.origin.get_or_insert(now);
        let arrival = (now.saturating_duration_since(origin).as_nanos() * u128::from(clock_rate)
            / 1_000_000_000) as i64;
        let transit = arrival - i64::from(ts);
        if let Some(prev) = self.transit {
            // Timestamps wrap modulo 2^32: take the difference in that ring.
            let d = i64::from((transit - prev) as i32).unsigned_abs();
            let d = u32::try_from(d).unwrap_or(u32::MAX);
            // J += (|D| - J) / 16, kept scaled by 16 (A.8).
            let j = self.jitter_x16;
            self.jitter_x16 = j.saturating_add(d).saturating_sub((j + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// An SR from the source arrived at `now` (for LSR/DLSR, RFC 3550 §6.4.1).
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// The report block at `now`, or `None` before the first packet. Advances the "since
    /// the last report" counters (A.3).
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                (
                    lsr,
                    (d.as_nanos() * 65_536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32,
                )
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: extended_max,
            jitter: self.jitter_x16 >> 4,
            lsr,
            dlsr,
        })
    }
}

#[cfg(test)]
mod tests;

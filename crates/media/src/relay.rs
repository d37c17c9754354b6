//! Pure parts of the caller <-> agent relay (B2BUA media): a small reorder/jitter buffer and
//! the sequence/timestamp rewriter of an outbound leg. No IO; `now` is a parameter.

use std::time::{Duration, Instant};

use crate::codec::{Decoder, Encoder};
use crate::Codec;

/// A received RTP packet kept for relaying (owned: it outlives the receive buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// What the relay must know of the leg a packet came from: its negotiated audio codec and
/// payload type, and its telephone-event type (RFC 4733 §7.1.1), to transcode or forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySource {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
}

/// Most packets held while waiting for a missing one.
pub const JITTER_PACKETS: usize = 3;
/// Longest a packet waits for a missing predecessor.
pub const JITTER_DELAY: Duration = Duration::from_millis(60);
/// A sequence jump larger than this is a restarted sender, not loss or reordering.
const SEQ_RESET: i32 = 1000;

/// Reorder buffer: releases packets in sequence order. An in-order packet leaves at once (no
/// added delay on a clean network); a packet after a gap waits until the gap fills, the
/// buffer holds [`JITTER_PACKETS`], or it has waited [`JITTER_DELAY`]. Duplicates and packets
/// older than the last one released are dropped (RFC 3550 §A.1 style sequence arithmetic,
/// modulo 2^16).
#[derive(Debug, Default)]
pub struct JitterBuffer {
    /// The sequence number released next.
    next: Option<u16>,
    ssrc: Option<u32>,
    /// Held packets, sorted by sequence distance from `next`, with their arrival times.
    held: Vec<(Instant, RelayPacket)>,
    /// Duplicates and late packets dropped (for stats and tests).
    pub dropped: u64,
}

fn seq_distance(from: u16, to: u16) -> i32 {
    i32::from(to.wrapping_sub(from) as i16)
}

impl JitterBuffer {
    pub fn new() -> JitterBuffer {
        JitterBuffer::default()
    }

    pub fn push(&mut self, now: Instant, packet: RelayPacket) {
        // A new SSRC is a new source (RFC 3550 §8.2): forget the old numbering.
        if self.ssrc != Some(packet.ssrc) {
            self.reset();
            self.ssrc = Some(packet.ssrc);
        }
        let next = *self.next.get_or_insert(packet.sequence);
        let d = seq_distance(next, packet.sequence);
        if d.abs() > SEQ_RESET {
            self.reset();
            self.ssrc = Some(packet.ssrc);
            self.next = Some(packet.sequence);
        } else if d < 0 {
            self.dropped += 1; // already released or skipped: too late
            return;
        }
        let next = self.next.unwrap_or(packet.sequence);
        let d = seq_distance(next, packet.sequence);
        let pos = self
            .held
            .partition_point(|(_, p)| seq_distance(next, p.sequence) < d);
        if self
            .held
            .get(pos)
            .is_some_and(|(_, p)| p.sequence == packet.sequence)
        {
            self.dropped += 1; // duplicate
            return;
        }
        self.held.insert(pos, (now, packet));
    }

    /// The next packet that may leave at `now`, in sequence order.
    pub fn poll(&mut self, now: Instant) -> Option<RelayPacket> {
        let next = self.next?;
        let (_, front) = self.held.first()?;
        let give_up =
            self.held.len() > JITTER_PACKETS || self.poll_timeout().is_some_and(|at| at <= now);
        if front.sequence != next && !give_up {
            return None;
        }
        let (_, p) = self.held.remove(0);
        // Skipping a gap: the missing packets are lost for good.
        self.next = Some(p.sequence.wrapping_add(1));
        Some(p)
    }

    /// When a packet waiting behind a gap must be released anyway.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (_, front) = self.held.first()?;
        if Some(front.sequence) == self.next {
            // Releasable now; the caller polls right after pushing.
            return self.held.first().map(|(at, _)| *at);
        }
        self.held
            .iter()
            .map(|(at, _)| *at)
            .min()
            .map(|at| at + JITTER_DELAY)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Forgets everything (unbridge, source change).
    pub fn reset(&mut self) {
        self.next = None;
        self.ssrc = None;
        self.held.clear();
    }
}

/// Maps a source's sequence numbers and timestamps onto an outbound leg's own (RFC 3550 §7.2:
/// a translator that changes the media must act as a new source: own SSRC, own numbering).
///
/// At each (re)synchronisation — the first relayed packet, after a playback on the leg, or a
/// new source — the offsets are chosen so the relayed packet follows the leg's last packet
/// (next sequence number, timestamp no earlier than the leg's clock) and carries the marker
/// (RFC 3551 §4.1); afterwards offsets stay fixed so the source's gaps (loss, silence
/// suppression) show through. Everything is modulo 2^16 / 2^32.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rewriter {
    offsets: Option<(u16, u32)>,
    ssrc: Option<u32>,
}

impl Rewriter {
    pub fn new() -> Rewriter {
        Rewriter::default()
    }

    /// The next packet starts a new mapping.
    pub fn resync(&mut self) {
        self.offsets = None;
    }

    /// Rewrites one packet: `(sequence, timestamp, marker)` for the outbound leg, given the
    /// leg's next sequence number and the earliest timestamp it may use now.
    pub fn rewrite(
        &mut self,
        packet: &RelayPacket,
        next_out_seq: u16,
        min_out_ts: u32,
    ) -> (u16, u32, bool) {
        if self.ssrc != Some(packet.ssrc) {
            self.ssrc = Some(packet.ssrc);
            self.offsets = None;
        }
        let (seq_off, ts_off, marker) = match self.offsets {
            Some((s, t)) => (s, t, packet.marker),
            None => {
                let s = next_out_seq.wrapping_sub(packet.sequence);
                let t = min_out_ts.wrapping_sub(packet.timestamp);
                self.offsets = Some((s, t));
                (s, t, true)
            }
        };
        (
            packet.sequence.wrapping_add(seq_off),
            packet.timestamp.wrapping_add(ts_off),
            marker,
        )
    }
}

/// Converts relayed audio between the legs' codecs (decode to 8 kHz linear, encode again)
/// when they differ, keeping the per-direction coder state (G.722 is stateful: its ADPCM
/// predictors must see the whole stream). G.722 <-> G.711 goes through G.722's lower band,
/// which is the 0-4 kHz audio at 8 kHz: no resampling, and 160 octets stay 160 octets.
#[derive(Debug, Default)]
pub struct Transcoder {
    coders: Option<(Decoder, Encoder)>,
    pcm: Vec<i16>,
}

impl Transcoder {
    pub fn transcode<'a>(
        &mut self,
        from: Codec,
        to: Codec,
        payload: &'a [u8],
    ) -> std::borrow::Cow<'a, [u8]> {
        if from == to {
            return std::borrow::Cow::Borrowed(payload);
        }
        let stale = self
            .coders
            .as_ref()
            .is_none_or(|(d, e)| d.codec() != from || e.codec() != to);
        if stale {
            self.coders = Some((Decoder::new(from), Encoder::new(to)));
        }
        let mut out = Vec::with_capacity(payload.len());
        if let Some((decoder, encoder)) = self.coders.as_mut() {
            self.pcm.clear();
            decoder.decode_8k(payload, &mut self.pcm);
            encoder.encode_8k(&self.pcm, &mut out);
        }
        std::borrow::Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests;

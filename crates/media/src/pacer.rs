//! The one pacing scheduler for every outbound RTP stream. Pure: no IO, no clock reads.
//!
//! Drive it like quinn-proto / str0m: feed `handle_timeout(now)` at `poll_timeout()`, then
//! drain `poll_transmit()` and `poll_event()`.
//!
//! Timing: a playback started at `start` sends frame n at `start + n * 20 ms` (never
//! "previous + 20 ms"), so late wake-ups do not accumulate drift. A late wake sends the missed
//! frames at once, at most [`MAX_CATCH_UP`]; beyond that it skips ahead in the audio so that
//! the RTP timestamp keeps matching wall-clock time (RFC 3550 §5.1: the timestamp follows the
//! sampling instant). When a stream is silent it sends nothing, but its timestamp clock keeps
//! running, so the next talkspurt starts at the right timestamp with the marker bit set
//! (RFC 3551 §4.1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::prompt::{Prompt, FRAME_SAMPLES};
use crate::rtp::RtpHeader;
use crate::Codec;

/// Packetisation interval (RFC 3551 §4.5.14 default for G.711).
pub const FRAME: Duration = Duration::from_millis(20);
/// RTP timestamp units per frame at 8 kHz.
pub const TS_PER_FRAME: u32 = FRAME_SAMPLES as u32;
/// Most frames sent in one burst after a late wake; older missed frames are skipped.
pub const MAX_CATCH_UP: u64 = 5;

/// Identifies an outbound stream (one per media session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Identifies one `play` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayId(pub u64);

/// The random starting points of a stream (RFC 3550 §5.1: SSRC, sequence number and
/// timestamp start random), plus its codec. Taken as parameters so tests are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_ts: u32,
    pub codec: Codec,
    pub payload_type: u8,
}

impl StreamConfig {
    /// Random SSRC, sequence and timestamp (RFC 3550 §5.1, §8.1).
    pub fn random(codec: Codec) -> StreamConfig {
        StreamConfig {
            ssrc: rand::random(),
            initial_seq: rand::random(),
            initial_ts: rand::random(),
            codec,
            payload_type: codec.payload_type(),
        }
    }
}

/// One RTP packet to send on a stream's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub stream: StreamId,
    /// Header and one 20 ms payload.
    pub packet: Vec<u8>,
}

/// What the pacer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacerEvent {
    /// The playlist played to its end; emitted when its last frame's 20 ms have elapsed.
    PlaybackFinished { stream: StreamId, play: PlayId },
    /// The playback was ended early by `stop`, a new `play`, or `remove_stream`.
    PlaybackStopped { stream: StreamId, play: PlayId },
}

#[derive(Debug)]
struct Playing {
    id: PlayId,
    playlist: Vec<Arc<Prompt>>,
    looped: bool,
    /// Frames in one pass over the playlist.
    total_frames: u64,
    start: Instant,
    ts_start: u32,
    /// Index of the next frame to send, counted from `start` (wall-clock frames).
    next: u64,
    /// The next packet sent opens a talkspurt (RFC 3551 §4.1).
    marker_pending: bool,
}

impl Playing {
    fn deadline(&self) -> Instant {
        self.start + FRAME * u32::try_from(self.next).unwrap_or(u32::MAX)
    }

    fn finished(&self) -> bool {
        !self.looped && self.next >= self.total_frames
    }

    /// The frame at wall-clock index `n`, read from the shared prompt (no copy).
    fn frame(&self, codec: Codec, n: u64) -> Option<&[u8]> {
        let mut pos = if self.looped {
            n % self.total_frames.max(1)
        } else {
            n
        };
        for prompt in &self.playlist {
            let count = prompt.frame_count() as u64;
            if pos < count {
                return prompt.frame(codec, usize::try_from(pos).ok()?);
            }
            pos -= count;
        }
        None
    }
}

#[derive(Debug)]
struct Stream {
    config: StreamConfig,
    /// Instant at which the timestamp clock read `config.initial_ts`.
    origin: Instant,
    next_seq: u16,
    last_ts: Option<u32>,
    playing: Option<Playing>,
    /// Bumped whenever the stream's deadline changes; stale heap entries are ignored.
    generation: u64,
}

impl Stream {
    /// The RTP timestamp clock at `now` (RFC 3550 §5.1: 8000 units per second).
    fn ts_at(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        let units = nanos * u128::from(Codec::CLOCK_RATE) / 1_000_000_000;
        // Truncation is the modular arithmetic RTP timestamps use.
        self.config.initial_ts.wrapping_add(units as u32)
    }
}

/// The pacing scheduler.
#[derive(Debug, Default)]
pub struct Pacer {
    streams: HashMap<StreamId, Stream>,
    /// Earliest deadline first; entries whose generation is stale are skipped.
    timers: BinaryHeap<Reverse<(Instant, StreamId, u64)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PacerEvent>,
    next_play: u64,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer::default()
    }

    /// Adds a silent stream; its timestamp clock starts at `now`. Replaces any stream with the
    /// same id.
    pub fn add_stream(&mut self, now: Instant, id: StreamId, config: StreamConfig) {
        self.remove_stream(id);
        self.streams.insert(
            id,
            Stream {
                config,
                origin: now,
                next_seq: config.initial_seq,
                last_ts: None,
                playing: None,
                generation: 0,
            },
        );
    }

    /// Removes a stream; a playback in progress is reported stopped.
    pub fn remove_stream(&mut self, id: StreamId) {
        if let Some(mut s) = self.streams.remove(&id) {
            if let Some(p) = s.playing.take() {
                self.events.push_back(PacerEvent::PlaybackStopped {
                    stream: id,
                    play: p.id,
                });
            }
        }
        self.prune();
    }

    /// Changes codec and payload type (after SDP negotiation); takes effect on the next frame.
    pub fn set_codec(&mut self, id: StreamId, codec: Codec, payload_type: u8) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.config.codec = codec;
            s.config.payload_type = payload_type;
        }
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn is_playing(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|s| s.playing.is_some())
    }

    /// Starts playing `playlist` now, replacing what the stream played. Returns a fresh id.
    pub fn play(
        &mut self,
        now: Instant,
        id: StreamId,
        playlist: Vec<Arc<Prompt>>,
        looped: bool,
    ) -> PlayId {
        self.next_play += 1;
        let play = PlayId(self.next_play);
        self.play_with_id(now, id, play, playlist, looped);
        play
    }

    /// Like [`Pacer::play`] with an id chosen by the caller (the engine hands ids out
    /// synchronously from its handles). Unknown streams are ignored.
    pub fn play_with_id(
        &mut self,
        now: Instant,
        id: StreamId,
        play: PlayId,
        playlist: Vec<Arc<Prompt>>,
        looped: bool,
    ) {
        self.stop(now, id);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let total_frames: u64 = playlist.iter().map(|p| p.frame_count() as u64).sum();
        // Looping over nothing would never end: an empty playlist just finishes.
        let looped = looped && total_frames > 0;
        // Never reuse timestamps already sent: a play right after another starts after the
        // previous packet's 20 ms (RFC 3550 §5.1, timestamps are monotonic per SSRC).
        let mut ts_start = s.ts_at(now);
        if let Some(last) = s.last_ts {
            let min = last.wrapping_add(TS_PER_FRAME);
            if (min.wrapping_sub(ts_start) as i32) > 0 {
                ts_start = min;
            }
        }
        s.generation += 1;
        let playing = Playing {
            id: play,
            playlist,
            looped,
            total_frames,
            start: now,
            ts_start,
            next: 0,
            marker_pending: true,
        };
        // The first frame is due at once; an empty playlist finishes at once.
        self.timers
            .push(Reverse((playing.deadline(), id, s.generation)));
        s.playing = Some(playing);
    }

    /// Stops the stream's playback, if any (reported as `PlaybackStopped`).
    pub fn stop(&mut self, _now: Instant, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            if let Some(p) = s.playing.take() {
                s.generation += 1;
                self.events.push_back(PacerEvent::PlaybackStopped {
                    stream: id,
                    play: p.id,
                });
            }
        }
        self.prune();
    }

    /// The earliest deadline of any stream.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Sends every frame due at `now`, in deadline order across streams.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if s.generation != generation {
                continue;
            }
            if let Some(next_at) = service(s, id, now, &mut self.transmits, &mut self.events) {
                self.timers.push(Reverse((next_at, id, generation)));
            }
        }
        self.prune();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PacerEvent> {
        self.events.pop_front()
    }

    /// Drops stale entries from the top of the heap so `poll_timeout` is exact.
    fn prune(&mut self) {
        while let Some(&Reverse((_, id, generation))) = self.timers.peek() {
            let live = self
                .streams
                .get(&id)
                .is_some_and(|s| s.generation == generation && s.playing.is_some());
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

/// Sends the frames of one stream due at `now`; returns its next deadline, if still playing.
fn service(
    s: &mut Stream,
    id: StreamId,
    now: Instant,
    transmits: &mut VecDeque<Transmit>,
    events: &mut VecDeque<PacerEvent>,
) -> Option<Instant> {
    let codec = s.config.codec;
    let playing = s.playing.as_mut()?;
    // Frame n is due at start + n*20ms: every index up to `due_until` is due.
    let elapsed = now.saturating_duration_since(playing.start);
    let due_until = (elapsed.as_nanos() / FRAME.as_nanos()) as u64;
    if due_until >= playing.next {
        let due = due_until + 1 - playing.next;
        if due > MAX_CATCH_UP {
            // Too late to send it all: skip the oldest frames. Audio position and timestamp
            // both follow `next`, so the timestamp stays equal to wall-clock time.
            playing.next += due - MAX_CATCH_UP;
        }
        while playing.next <= due_until && !playing.finished() {
            let n = playing.next;
            playing.next += 1;
            let Some(payload) = playing.frame(codec, n) else {
                continue;
            };
            let ts = playing
                .ts_start
                .wrapping_add((n as u32).wrapping_mul(TS_PER_FRAME));
            let header = RtpHeader {
                // RFC 3551 §4.1: marker on the first packet of a talkspurt.
                marker: playing.marker_pending,
                payload_type: s.config.payload_type,
                sequence: s.next_seq,
                timestamp: ts,
                ssrc: s.config.ssrc,
            };
            let mut packet = Vec::new();
            if header.write_packet(payload, &mut packet).is_ok() {
                s.next_seq = s.next_seq.wrapping_add(1);
                playing.marker_pending = false;
                s.last_ts = Some(ts);
                transmits.push_back(Transmit { stream: id, packet });
            }
        }
    }
    if playing.finished() {
        // Report the end once the last frame's 20 ms have elapsed (what the caller hears).
        let end = playing.start + FRAME * u32::try_from(playing.total_frames).unwrap_or(u32::MAX);
        if now >= end {
            let play = playing.id;
            s.playing = None;
            events.push_back(PacerEvent::PlaybackFinished { stream: id, play });
            return None;
        }
        return Some(end);
    }
    Some(playing.deadline())
}

#[cfg(test)]
mod tests;

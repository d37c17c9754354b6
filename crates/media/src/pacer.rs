//! The one pacing scheduler for every outbound RTP stream. Pure: no IO, no clock reads.
//!
//! Drive it like quinn-proto / str0m: feed `handle_timeout(now)` at `poll_timeout()`, then
//! drain `poll_transmit()` and `poll_event()`.
//!
//! Timing: a playback started at `start` sends frame n at `start + n * 20 ms` (never
//! "previous + 20 ms"), so late wake-ups do not accumulate drift. A late wake after an
//! on-time one (a stall) sends the missed frames at once, at most [`MAX_CATCH_UP`], for the
//! receiver's jitter buffer to absorb; a late wake after a late one (overload) sends only the
//! current frame, because bursts of catch-up packets would deepen the overload that caused
//! them. Skipped frames move the audio ahead so that the RTP timestamp keeps matching
//! wall-clock time (RFC 3550 §5.1: the timestamp follows the sampling instant). When a stream is silent it sends nothing, but its timestamp clock keeps
//! running, so the next talkspurt starts at the right timestamp with the marker bit set
//! (RFC 3551 §4.1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dtmf::{rfc4733_packets, EventPacket, UPDATE_INTERVAL};
use crate::idmap::IdMap;
use crate::prompt::{Prompt, FRAME_SAMPLES};
use crate::relay::{JitterBuffer, RelayPacket, RelaySource, Rewriter, Transcoder};
use crate::rtp::RtpHeader;
use crate::Codec;

/// Packetisation interval (RFC 3551 §4.5.14 default for G.711).
pub const FRAME: Duration = Duration::from_millis(20);
/// RTP timestamp units per frame at 8 kHz.
pub const TS_PER_FRAME: u32 = FRAME_SAMPLES as u32;
/// Most frames sent in one burst after a stall; older missed frames are skipped.
pub const MAX_CATCH_UP: u64 = 5;
/// A pass that starts later than this after its first deadline is late.
const LATE: Duration = FRAME;

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

    /// When the last frame's 20 ms have elapsed.
    fn end(&self) -> Instant {
        self.start + FRAME * u32::try_from(self.total_frames).unwrap_or(u32::MAX)
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

/// A digit being sent as RFC 4733 telephone-events.
#[derive(Debug)]
struct DtmfSending {
    start: Instant,
    /// The event's timestamp, shared by all its packets (RFC 4733 §2.5.1.1).
    ts: u32,
    packets: Vec<EventPacket>,
    next: usize,
}

impl DtmfSending {
    fn deadline(&self) -> Option<Instant> {
        self.packets.get(self.next).map(|p| self.start + p.offset)
    }
}

/// The relay into this stream from its bridge partner.
#[derive(Debug)]
struct RelayIn {
    /// The only stream whose packets are accepted: a packet still in flight from a former
    /// partner must not leak into a new bridge.
    from: StreamId,
    jitter: JitterBuffer,
    rewriter: Rewriter,
    /// The partner's codec, payload type and telephone-event type, as of its last packet.
    source: Option<RelaySource>,
    /// Sequence number of the last relayed packet sent: anything else sent since (a
    /// playback, a digit) means the mapping must be re-synchronised.
    last_out_seq: Option<u16>,
    transcoder: Transcoder,
}

impl RelayIn {
    fn new(from: StreamId) -> RelayIn {
        RelayIn {
            from,
            jitter: JitterBuffer::default(),
            rewriter: Rewriter::default(),
            source: None,
            last_out_seq: None,
            transcoder: Transcoder::default(),
        }
    }
}

/// What a service pass produces, plus the pool of packet buffers: sent buffers come back
/// through [`Pacer::recycle`], so the steady state allocates nothing per packet.
#[derive(Debug, Default)]
struct Out {
    transmits: VecDeque<Transmit>,
    events: VecDeque<PacerEvent>,
    pool: Vec<Vec<u8>>,
    /// Missed frames a stream may send in this pass: [`MAX_CATCH_UP`], or 1 when the
    /// previous pass was late too.
    catch_up: u64,
}

/// Buffers kept for reuse: more than one pacing pass of a loaded shard needs.
const POOL_MAX: usize = 4096;

impl Out {
    /// Queues one packet; false if the header cannot be built (payload type > 127).
    fn packet(&mut self, id: StreamId, header: RtpHeader, payload: &[u8]) -> bool {
        let mut packet = self.pool.pop().unwrap_or_default();
        if header.write_packet(payload, &mut packet).is_err() {
            self.pool.push(packet);
            return false;
        }
        self.transmits.push_back(Transmit { stream: id, packet });
        true
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
    /// Negotiated telephone-event payload type (RFC 4733 §7.1.1), if any.
    telephone_event: Option<u8>,
    dtmf: Option<Box<DtmfSending>>,
    dtmf_queue: VecDeque<(char, u32)>,
    /// Set while bridged: packets from `partner` are relayed into this stream.
    partner: Option<StreamId>,
    relay: Option<Box<RelayIn>>,
    /// The deadline for which a heap entry is live; other entries are stale.
    scheduled: Option<Instant>,
}

impl Stream {
    /// The RTP timestamp clock at `now` (RFC 3550 §5.1: 8000 units per second).
    fn ts_at(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        let units = nanos * u128::from(Codec::CLOCK_RATE) / 1_000_000_000;
        // Truncation is the modular arithmetic RTP timestamps use.
        self.config.initial_ts.wrapping_add(units as u32)
    }

    /// The earliest timestamp a new talkspurt may use at `now`: the clock, but never a
    /// timestamp at or before one already sent (RFC 3550 §5.1, monotonic per SSRC).
    fn next_ts(&self, now: Instant) -> u32 {
        let mut ts = self.ts_at(now);
        if let Some(last) = self.last_ts {
            let min = last.wrapping_add(TS_PER_FRAME);
            if (min.wrapping_sub(ts) as i32) > 0 {
                ts = min;
            }
        }
        ts
    }

    fn next_deadline(&self) -> Option<Instant> {
        let playing = self
            .playing
            .as_ref()
            .map(|p| if p.finished() { p.end() } else { p.deadline() });
        let dtmf = self.dtmf.as_ref().and_then(|d| d.deadline());
        let relay = self.relay.as_ref().and_then(|r| r.jitter.poll_timeout());
        [playing, dtmf, relay].into_iter().flatten().min()
    }

    fn emit(&mut self, id: StreamId, header: RtpHeader, payload: &[u8], out: &mut Out) -> bool {
        if !out.packet(id, header, payload) {
            return false;
        }
        self.next_seq = header.sequence.wrapping_add(1);
        true
    }

    /// Starts the next queued digit if none is being sent.
    fn start_dtmf(&mut self, now: Instant) {
        while self.dtmf.is_none() {
            let Some((digit, ms)) = self.dtmf_queue.pop_front() else {
                return;
            };
            let Some(packets) = rfc4733_packets(digit, ms) else {
                continue;
            };
            let ts = self.next_ts(now);
            self.dtmf = Some(Box::new(DtmfSending {
                start: now,
                ts,
                packets,
                next: 0,
            }));
        }
    }

    /// Sends everything due at `now`: audio frames, telephone-events, relayed packets.
    fn service(&mut self, id: StreamId, now: Instant, out: &mut Out) {
        self.service_dtmf(id, now, out);
        let dtmf_active = self.dtmf.is_some();
        service_playing(self, id, now, dtmf_active, out);
        self.service_relay(id, now, out);
    }

    fn service_dtmf(&mut self, id: StreamId, now: Instant, out: &mut Out) {
        let Some(pt) = self.telephone_event else {
            // No telephone-event negotiated: nothing can carry the digits.
            self.dtmf = None;
            self.dtmf_queue.clear();
            return;
        };
        while let Some(mut d) = self.dtmf.take() {
            while let Some(p) = d.packets.get(d.next).copied() {
                if d.start + p.offset > now {
                    break;
                }
                d.next += 1;
                let header = RtpHeader {
                    marker: p.marker,
                    payload_type: pt,
                    sequence: self.next_seq,
                    timestamp: d.ts,
                    ssrc: self.config.ssrc,
                };
                if self.emit(id, header, &p.payload, out) {
                    self.last_ts = Some(d.ts);
                }
            }
            if d.next < d.packets.len() {
                self.dtmf = Some(d);
                return;
            }
            // The digit is over: audio resumes as a new talkspurt (RFC 3551 §4.1).
            if let Some(p) = self.playing.as_mut() {
                p.marker_pending = true;
            }
            // Queued digits follow after one update interval of pause.
            let after = d.start + d.packets.last().map(|p| p.offset).unwrap_or_default();
            if !self.dtmf_queue.is_empty() {
                self.start_dtmf((after + UPDATE_INTERVAL).max(now));
                if self.dtmf.as_ref().is_some_and(|n| n.start > now) {
                    return;
                }
            }
        }
    }

    fn service_relay(&mut self, id: StreamId, now: Instant, out: &mut Out) {
        let Some(mut relay) = self.relay.take() else {
            return;
        };
        let busy = self.playing.is_some() || self.dtmf.is_some();
        while let Some(packet) = relay.jitter.poll(now) {
            // A playback or a digit on this leg has the floor (e.g. a beep to the agent):
            // the relay to it pauses, and resumes as a new talkspurt.
            if busy {
                relay.last_out_seq = None;
                continue;
            }
            let Some(RelaySource {
                codec,
                payload_type: pt,
                telephone_event: te,
            }) = relay.source
            else {
                continue;
            };
            let (out_pt, payload) = if Some(packet.payload_type) == te {
                // RFC 4733 forwarded as is, under this leg's telephone-event type.
                match self.telephone_event {
                    Some(out) => (out, std::borrow::Cow::Borrowed(&packet.payload[..])),
                    None => continue,
                }
            } else if packet.payload_type == pt {
                let payload = relay
                    .transcoder
                    .transcode(codec, self.config.codec, &packet.payload);
                (self.config.payload_type, payload)
            } else {
                continue; // comfort noise or unknown types are not relayed
            };
            if relay.last_out_seq.map(|s| s.wrapping_add(1)) != Some(self.next_seq) {
                relay.rewriter.resync();
            }
            let min_ts = self.next_ts(now);
            let (seq, ts, marker) = relay.rewriter.rewrite(&packet, self.next_seq, min_ts);
            let header = RtpHeader {
                marker,
                payload_type: out_pt,
                sequence: seq,
                timestamp: ts,
                ssrc: self.config.ssrc,
            };
            if self.emit(id, header, &payload, out) {
                relay.last_out_seq = Some(seq);
                self.last_ts = Some(ts);
            }
        }
        self.relay = Some(relay);
    }
}

/// The pacing scheduler.
#[derive(Debug, Default)]
pub struct Pacer {
    streams: IdMap<StreamId, Stream>,
    /// Earliest deadline first; an entry is live only if it equals its stream's `scheduled`.
    timers: BinaryHeap<Reverse<(Instant, StreamId)>>,
    out: Out,
    next_play: u64,
    /// The last pass that had something due started late: the shard is overloaded.
    last_pass_late: bool,
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
                telephone_event: None,
                dtmf: None,
                dtmf_queue: VecDeque::new(),
                partner: None,
                relay: None,
                scheduled: None,
            },
        );
    }

    /// Removes a stream (and its bridge); a playback in progress is reported stopped.
    pub fn remove_stream(&mut self, id: StreamId) {
        self.unbridge(id);
        if let Some(mut s) = self.streams.remove(&id) {
            if let Some(p) = s.playing.take() {
                self.out.events.push_back(PacerEvent::PlaybackStopped {
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

    /// Sets the negotiated telephone-event payload type (RFC 4733 §7.1.1); `None` disables
    /// sending digits and forwarding them into this stream.
    pub fn set_telephone_event(&mut self, id: StreamId, payload_type: Option<u8>) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.telephone_event = payload_type.filter(|&pt| pt <= 0x7F);
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
        let ts_start = s.next_ts(now);
        s.playing = Some(Playing {
            id: play,
            playlist,
            looped,
            total_frames,
            start: now,
            ts_start,
            next: 0,
            marker_pending: true,
        });
        self.schedule(id);
    }

    /// Stops the stream's playback, if any (reported as `PlaybackStopped`).
    pub fn stop(&mut self, _now: Instant, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            if let Some(p) = s.playing.take() {
                self.out.events.push_back(PacerEvent::PlaybackStopped {
                    stream: id,
                    play: p.id,
                });
            }
        }
        self.schedule(id);
        self.prune();
    }

    /// Queues a digit to send as RFC 4733 events (§2.5.1). Returns false when the stream is
    /// unknown, has no telephone-event payload type, or `digit` is not a DTMF digit. Audio of
    /// the stream (playback or relay) pauses while the digit is sent.
    pub fn send_dtmf(&mut self, now: Instant, id: StreamId, digit: char, duration_ms: u32) -> bool {
        let Some(s) = self.streams.get_mut(&id) else {
            return false;
        };
        if s.telephone_event.is_none() || crate::dtmf::digit_to_code(digit).is_none() {
            return false;
        }
        s.dtmf_queue.push_back((digit, duration_ms));
        s.start_dtmf(now);
        self.schedule(id);
        true
    }

    /// Bridges two streams: packets given to [`Pacer::relay_packet`] from one are relayed,
    /// rewritten, into the other. Any previous bridge of either is undone.
    pub fn bridge(&mut self, a: StreamId, b: StreamId) -> bool {
        if a == b || !self.streams.contains_key(&a) || !self.streams.contains_key(&b) {
            return false;
        }
        self.unbridge(a);
        self.unbridge(b);
        for (me, other) in [(a, b), (b, a)] {
            if let Some(s) = self.streams.get_mut(&me) {
                s.partner = Some(other);
            }
            self.set_relay_source(me, Some(other));
        }
        true
    }

    /// Undoes the bridge of `id`, if any; returns the former partner.
    pub fn unbridge(&mut self, id: StreamId) -> Option<StreamId> {
        let partner = self.streams.get_mut(&id)?.partner.take()?;
        for me in [id, partner] {
            if let Some(s) = self.streams.get_mut(&me) {
                s.partner = None;
                s.relay = None;
            }
        }
        self.schedule(id);
        self.schedule(partner);
        self.prune();
        Some(partner)
    }

    /// The partner of a bridged stream.
    pub fn partner(&self, id: StreamId) -> Option<StreamId> {
        self.streams.get(&id).and_then(|s| s.partner)
    }

    /// A packet received on stream `from`: relayed to its partner if bridged (through the
    /// partner's reorder buffer), otherwise ignored.
    pub fn relay_packet(&mut self, now: Instant, from: StreamId, packet: RelayPacket) {
        let Some(src) = self.streams.get(&from) else {
            return;
        };
        let source = RelaySource {
            codec: src.config.codec,
            payload_type: src.config.payload_type,
            telephone_event: src.telephone_event,
        };
        let Some(to) = src.partner else { return };
        self.relay_into(now, from, to, source, packet);
    }

    /// Lets stream `id` take relayed packets from `from` (a stream that may live in another
    /// pacer: the engine shards streams over threads), or stops the relay into it with
    /// `None`. This is one direction of a bridge; [`Pacer::bridge`] sets both.
    pub fn set_relay_source(&mut self, id: StreamId, from: Option<StreamId>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.relay.as_ref().map(|r| r.from) == from {
            return;
        }
        s.relay = from.map(|f| Box::new(RelayIn::new(f)));
        self.schedule(id);
        self.prune();
    }

    /// A packet received on stream `from`, whose codec is `source`, to relay into `to`
    /// (through its reorder buffer). Ignored unless `to` takes relayed packets from `from`.
    pub fn relay_into(
        &mut self,
        now: Instant,
        from: StreamId,
        to: StreamId,
        source: RelaySource,
        packet: RelayPacket,
    ) {
        let Some(dst) = self.streams.get_mut(&to) else {
            return;
        };
        let Some(relay) = dst.relay.as_mut().filter(|r| r.from == from) else {
            return;
        };
        relay.source = Some(source);
        relay.jitter.push(now, packet);
        dst.service(to, now, &mut self.out);
        self.schedule(to);
    }

    /// The earliest deadline of any stream.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Sends every packet due at `now`, in deadline order across streams.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.prune();
        let late = self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| now.saturating_duration_since(*at) > LATE);
        self.out.catch_up = if late && self.last_pass_late {
            1
        } else {
            MAX_CATCH_UP
        };
        if self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            self.last_pass_late = late;
        }
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if s.scheduled != Some(at) {
                continue;
            }
            s.scheduled = None;
            s.service(id, now, &mut self.out);
            self.schedule(id);
        }
        self.prune();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// Gives a sent packet's buffer back for reuse (optional: buffers not returned are
    /// simply allocated again).
    pub fn recycle(&mut self, mut packet: Vec<u8>) {
        if self.out.pool.len() < POOL_MAX {
            packet.clear();
            self.out.pool.push(packet);
        }
    }

    pub fn poll_event(&mut self) -> Option<PacerEvent> {
        self.out.events.pop_front()
    }

    /// Puts the stream's next deadline on the heap unless already there.
    fn schedule(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let next = s.next_deadline();
        if next != s.scheduled {
            s.scheduled = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    /// Drops stale entries from the top of the heap so `poll_timeout` is exact.
    fn prune(&mut self) {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            let live = self
                .streams
                .get(&id)
                .is_some_and(|s| s.scheduled == Some(at));
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

/// Sends the audio frames of one stream due at `now` (suppressed while a digit is sent) and
/// reports the end of the playlist.
fn service_playing(s: &mut Stream, id: StreamId, now: Instant, suppressed: bool, out: &mut Out) {
    let codec = s.config.codec;
    let Some(playing) = s.playing.as_mut() else {
        return;
    };
    // Frame n is due at start + n*20ms: every index up to `due_until` is due.
    let elapsed = now.saturating_duration_since(playing.start);
    let due_until = (elapsed.as_nanos() / FRAME.as_nanos()) as u64;
    if due_until >= playing.next {
        let due = due_until + 1 - playing.next;
        let catch_up = out.catch_up.max(1);
        if due > catch_up {
            // Too late to send it all: skip the oldest frames. Audio position and timestamp
            // both follow `next`, so the timestamp stays equal to wall-clock time.
            playing.next += due - catch_up;
        }
        while playing.next <= due_until && !playing.finished() {
            let n = playing.next;
            playing.next += 1;
            // While a digit is sent its events replace the audio (RFC 4733 §2.5.1.1).
            if suppressed {
                continue;
            }
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
            if out.packet(id, header, payload) {
                s.next_seq = s.next_seq.wrapping_add(1);
                playing.marker_pending = false;
                s.last_ts = Some(ts);
            }
        }
    }
    let finished = playing.finished() && now >= playing.end();
    if finished {
        // Report the end once the last frame's 20 ms have elapsed (what the caller hears).
        if let Some(p) = s.playing.take() {
            out.events.push_back(PacerEvent::PlaybackFinished {
                stream: id,
                play: p.id,
            });
        }
    }
}

#[cfg(test)]
mod tests;

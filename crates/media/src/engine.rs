//! The thin tokio edge: UDP sockets, the pacing shards and the receive tasks.
//!
//! - Pacing shards (`engine/shard.rs`): one OS thread per core, each running ONE
//!   [`crate::pacer::Pacer`] for the sessions assigned to it round-robin. A shard sleeps until its pacer's next deadline,
//!   sends what is due with non-blocking `sendto`s (a full socket buffer drops the packet
//!   rather than delaying every other stream), and drains its command channel.
//! - One receive task per session (on the caller's runtime) parses incoming RTP (RFC 3550
//!   §5.1) and RTCP (§6), reports a source only when it changes, detects digits, and hands
//!   packets to relay to the partner's shard. It also sends the session's RTCP reports.
//! - Symmetric RTP (RFC 4961): packets are sent where the peer's packets come from, which also
//!   crosses NATs that rewrite the SDP's address.
//! - Recordings ([`SessionHandle::record`]): the receive task decodes the caller's audio into
//!   a [`crate::record::Recorder`] and hands the samples to a writer on a blocking thread
//!   (`engine/recording.rs`), which writes `<path>.tmp`, renames it and reports the end. The pacing
//!   shards never see any of it.
//! - Bridges are kept here, under one lock, because the two legs may live on different
//!   shards: each direction is "packets received on A are relayed into B's pacer stream".

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tracing::debug;

use crate::dtmf::DtmfEvent;
use crate::pacer::{PlayId, StreamConfig};
use crate::prompt::Prompt;
use crate::record::{RecordEnd, RecordOptions};
use crate::{Codec, MediaError};

mod ports;
mod receive;
mod recording;
mod shard;
use ports::{Bound, Ports};
use receive::{receive, RxCommand, RxConfig, RxContext};
use shard::{Command, SendStats};

/// Identifies a media session (one RTP port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// An event for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEvent {
    pub session: SessionId,
    pub kind: MediaEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEventKind {
    /// The playlist played to its end.
    PlaybackFinished(PlayId),
    /// The playback was cut by `stop`, a newer `play` or `close`.
    PlaybackStopped(PlayId),
    /// The first valid RTP packet arrived (the peer's media path works).
    FirstPacketReceived { from: SocketAddr },
    /// A digit from the peer, whatever its transport (RFC 4733 or in-band; SIP INFO digits
    /// are parsed by the SIP edge with [`crate::dtmf::parse_dtmf_relay`]).
    Dtmf(DtmfEvent),
    /// No RTP arrived for the duration set by [`SessionHandle::set_rtp_timeout`]: the call is
    /// probably dead. Reported once; armed again when packets come back.
    RtpTimeout,
    /// The peer sent an RTCP BYE (RFC 3550 §6.6): its media source is leaving.
    RtcpBye { reason: Option<String> },
    /// The recording asked by [`SessionHandle::record`] is complete at `path` (a WAV file,
    /// 8 kHz 16-bit mono, renamed into place before this event, so never seen half
    /// written). `duration` is the audio in the file. Exactly one of this or
    /// [`MediaEventKind::RecordFailed`] per `record` call.
    RecordFinished {
        path: PathBuf,
        duration: Duration,
        reason: RecordEnd,
    },
    /// The recording could not be written (directory missing, disk full, session already
    /// closed…); nothing is left at `path` nor at its `.tmp`.
    RecordFailed { path: PathBuf, error: String },
}

/// Handle on the media engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaEngine {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    runtime: Handle,
    ports: Arc<Ports>,
    /// One command channel per pacing shard.
    shards: Arc<[std::sync::mpsc::Sender<Command>]>,
    next_shard: AtomicUsize,
    next_session: AtomicU64,
    next_play: AtomicU64,
    events: UnboundedSender<MediaEvent>,
    /// RTP packets handed to the kernel, for the benchmark and metrics.
    sent: Arc<AtomicU64>,
    /// Open sessions: their shard and bridge partner.
    sessions: Mutex<HashMap<SessionId, Entry>>,
}

#[derive(Debug)]
struct Entry {
    shard: usize,
    partner: Option<SessionId>,
    rx_config: Arc<watch::Sender<RxConfig>>,
}

/// Pacing shards used by [`MediaEngine::start`]: one per core.
pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl MediaEngine {
    /// Starts the engine with [`default_shards`] pacing threads; receive tasks run on the
    /// current tokio runtime. RTP ports are taken from `ports` (even ports whose odd
    /// neighbour, for RTCP, is also in the range: RFC 3550 §11).
    pub fn start(
        bind_ip: IpAddr,
        ports: RangeInclusive<u16>,
    ) -> Result<(MediaEngine, UnboundedReceiver<MediaEvent>), MediaError> {
        MediaEngine::start_with_shards(bind_ip, ports, default_shards())
    }

    /// Like [`MediaEngine::start`] with `shards` pacing threads (at least one).
    pub fn start_with_shards(
        bind_ip: IpAddr,
        ports: RangeInclusive<u16>,
        shards: usize,
    ) -> Result<(MediaEngine, UnboundedReceiver<MediaEvent>), MediaError> {
        let runtime = Handle::try_current().map_err(|e| MediaError::NoRuntime(e.to_string()))?;
        let ports = Arc::new(Ports::new(bind_ip, ports)?);
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let sent = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        for index in 0..shards.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            let (events, sent) = (event_tx.clone(), sent.clone());
            std::thread::Builder::new()
                .name(format!("ld-media-pacer-{index}"))
                .spawn(move || shard::run(rx, events, sent))?;
            senders.push(tx);
        }
        let shared = Arc::new(Shared {
            runtime,
            ports,
            shards: senders.into(),
            next_shard: AtomicUsize::new(0),
            next_session: AtomicU64::new(1),
            next_play: AtomicU64::new(1),
            events: event_tx,
            sent,
            sessions: Mutex::new(HashMap::new()),
        });
        Ok((MediaEngine { shared }, event_rx))
    }

    /// RTP packets sent so far by all sessions (accepted by the kernel).
    pub fn packets_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Number of pacing shards (threads).
    pub fn shard_count(&self) -> usize {
        self.shared.shards.len()
    }

    /// The address sessions bind to (for `c=` in SDP).
    pub fn bind_ip(&self) -> IpAddr {
        self.shared.ports.ip
    }

    /// Binds a free even port (RTP) and the odd one above it (RTCP), puts the session on the
    /// next shard, and starts receiving.
    pub fn open_session(&self) -> Result<SessionHandle, MediaError> {
        let (rtp, rtcp, lease) = self.shared.ports.bind()?;
        let port = lease.port;
        // `from_std` needs the runtime's reactor; we may be called from any thread.
        let _guard = self.shared.runtime.enter();
        let socket = Arc::new(Bound::new(rtp, rtcp, lease)?);
        let id = SessionId(self.shared.next_session.fetch_add(1, Ordering::Relaxed));
        let shard =
            self.shared.next_shard.fetch_add(1, Ordering::Relaxed) % self.shared.shards.len();
        let reset_latch = Arc::new(AtomicBool::new(false));
        let (rx_config, rx_config_rx) = watch::channel(RxConfig::default());
        let rx_config = Arc::new(rx_config);
        let (rx_commands, rx_commands_rx) = mpsc::unbounded_channel();
        let config = StreamConfig::random(Codec::Pcma);
        let stats = Arc::new(SendStats::default());
        let origin = Instant::now();
        let open = Command::Open {
            id,
            socket: socket.clone(),
            reset_latch: reset_latch.clone(),
            config,
            origin,
            stats: stats.clone(),
        };
        if self.shared.shards[shard].send(open).is_err() {
            return Err(MediaError::EngineStopped);
        }
        self.shared.runtime.spawn(receive(RxContext {
            id,
            shard,
            socket,
            reset_latch,
            config: rx_config_rx,
            commands: rx_commands_rx,
            shards: self.shared.shards.clone(),
            events: self.shared.events.clone(),
            stats,
            ssrc: config.ssrc,
            ts_origin: (origin, config.initial_ts),
        }));
        lock(&self.shared.sessions).insert(
            id,
            Entry {
                shard,
                partner: None,
                rx_config: rx_config.clone(),
            },
        );
        Ok(SessionHandle {
            id,
            port,
            shard,
            shared: self.shared.clone(),
            closed: AtomicBool::new(false),
            rx_config,
            rx_commands,
        })
    }

    /// Bridges two sessions (B2BUA media): from now on packets received on `a` are sent on
    /// `b` and vice versa, each leg with its own SSRC and numbering (RFC 3550 §7.2), through a
    /// small reorder buffer, transcoded when the legs' codecs differ; RFC 4733 digits are
    /// forwarded and still reported. A playback on a leg pauses the relay to that leg. Any
    /// earlier bridge of either session is undone. The legs may live on different shards.
    pub fn bridge(&self, a: SessionId, b: SessionId) -> Result<(), MediaError> {
        if a == b {
            return Err(MediaError::BridgeToSelf(a.0));
        }
        let mut map = lock(&self.shared.sessions);
        for id in [a, b] {
            if !map.contains_key(&id) {
                return Err(MediaError::UnknownSession(id.0));
            }
        }
        for id in [a, b] {
            self.shared.unlink(&mut map, id);
        }
        for (me, other) in [(a, b), (b, a)] {
            if let Some(e) = map.get_mut(&me) {
                e.partner = Some(other);
            }
            self.shared.relay_direction(&map, other, Some(me));
        }
        Ok(())
    }

    /// Undoes the bridge of `a` (both directions), if any.
    pub fn unbridge(&self, a: SessionId) {
        let mut map = lock(&self.shared.sessions);
        self.shared.unlink(&mut map, a);
    }
}

impl Shared {
    /// Sets where packets received on `from` are relayed: into `to`, or nowhere.
    fn relay_direction(
        &self,
        map: &HashMap<SessionId, Entry>,
        from: SessionId,
        to: Option<SessionId>,
    ) {
        let target = to.and_then(|t| map.get(&t).map(|e| (t, e.shard)));
        if let Some(e) = map.get(&from) {
            e.rx_config.send_modify(|c| c.relay_to = target);
        }
        // The destination stream's pacer accepts packets from `from` only.
        if let Some((to, shard)) = target {
            self.command(
                shard,
                Command::SetRelaySource {
                    id: to,
                    from: Some(from),
                },
            );
        }
    }

    /// Undoes the bridge of `id` in both directions, if any.
    fn unlink(&self, map: &mut HashMap<SessionId, Entry>, id: SessionId) {
        let Some(partner) = map.get_mut(&id).and_then(|e| e.partner.take()) else {
            return;
        };
        if let Some(e) = map.get_mut(&partner) {
            e.partner = None;
        }
        for (me, other) in [(id, partner), (partner, id)] {
            self.relay_direction(map, me, None);
            if let Some(e) = map.get(&other) {
                self.command(
                    e.shard,
                    Command::SetRelaySource {
                        id: other,
                        from: None,
                    },
                );
            }
        }
    }

    fn command(&self, shard: usize, command: Command) {
        // A shard only stops with the engine; then there is nothing left to do.
        if let Some(tx) = self.shards.get(shard) {
            if tx.send(command).is_err() {
                debug!(shard, "media shard stopped, command dropped");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked holding it; the map is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One media session; closing it (or dropping it) stops its stream and frees its ports.
#[derive(Debug)]
pub struct SessionHandle {
    id: SessionId,
    port: u16,
    shard: usize,
    shared: Arc<Shared>,
    closed: AtomicBool,
    rx_config: Arc<watch::Sender<RxConfig>>,
    /// To the receive task: recordings.
    rx_commands: UnboundedSender<RxCommand>,
}

impl SessionHandle {
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The local RTP port; RTCP is bound on `local_port() + 1` (RFC 3550 §11).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.shared.ports.ip, self.port)
    }

    /// The local RTCP address (the RTP port + 1).
    pub fn local_rtcp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.shared.ports.ip, self.port + 1)
    }

    /// Sets the destination from the SDP and the negotiated codec. A later packet from another
    /// address moves the destination there (symmetric RTP, RFC 4961).
    pub fn set_remote(&self, addr: SocketAddr, codec: Codec, payload_type: u8) {
        self.rx_config.send_modify(|c| {
            c.codec = codec;
            c.payload_type = payload_type;
            c.remote = Some(addr);
        });
        self.send(Command::SetRemote {
            id: self.id,
            addr,
            codec,
            payload_type,
        });
    }

    /// Plays the prompts in order (forever if `looped`), replacing what was playing.
    pub fn play(&self, prompts: Vec<Arc<Prompt>>, looped: bool) -> PlayId {
        let codec = self.rx_config.borrow().codec;
        for p in &prompts {
            p.prepare(codec);
        }
        let play = PlayId(self.shared.next_play.fetch_add(1, Ordering::Relaxed));
        self.send(Command::Play {
            id: self.id,
            play,
            prompts,
            looped,
        });
        play
    }

    /// Stops the playback, if any.
    pub fn stop(&self) {
        self.send(Command::Stop { id: self.id });
    }

    /// Sets the telephone-event payload type negotiated in SDP (RFC 4733 §7.1.1), `None` if
    /// the peer offered none. With one, received events are decoded and digits can be sent;
    /// without, received audio goes through the in-band detector instead.
    pub fn set_telephone_event(&self, payload_type: Option<u8>) {
        let payload_type = payload_type.filter(|&pt| pt <= 0x7F);
        self.rx_config
            .send_modify(|c| c.telephone_event = payload_type);
        self.send(Command::SetTelephoneEvent {
            id: self.id,
            payload_type,
        });
    }

    /// Sends a digit as RFC 4733 events through the pacer (audio to the peer pauses for it).
    /// Ignored if no telephone-event type was set or `digit` is not 0-9, *, #, A-D.
    pub fn send_dtmf(&self, digit: char, duration_ms: u32) {
        self.send(Command::SendDtmf {
            id: self.id,
            digit,
            duration_ms,
        });
    }

    /// Reports [`MediaEventKind::RtpTimeout`] when no RTP arrives for `timeout` (dead-call
    /// detection); `None` (the default) disables it. The clock starts now.
    pub fn set_rtp_timeout(&self, timeout: Option<Duration>) {
        self.rx_config.send_modify(|c| c.rtp_timeout = timeout);
    }

    /// Records what the caller says into the WAV file `path` (8 kHz 16-bit mono, whatever the
    /// codec), for at most `max`; it also ends after 5 s of silence once the caller has
    /// spoken, or on `#` (not recorded). See [`SessionHandle::record_with`].
    pub fn record(&self, path: PathBuf, max: Duration) {
        self.record_with(path, RecordOptions::new(max));
    }

    /// Records with explicit end conditions. The audio is written to `<path>.tmp`, renamed
    /// to `path` at the end, then [`MediaEventKind::RecordFinished`] is reported (or
    /// [`MediaEventKind::RecordFailed`]). A recording in progress is stopped first (its
    /// event says [`RecordEnd::Stopped`]). Lost packets are filled with silence.
    pub fn record_with(&self, path: PathBuf, options: RecordOptions) {
        if let Err(e) = self.rx_commands.send(RxCommand::Record { path, options }) {
            // The receive task is gone (session closed): the one event still comes.
            if let RxCommand::Record { path, .. } = e.0 {
                emit(
                    &self.shared.events,
                    self.id,
                    MediaEventKind::RecordFailed {
                        path,
                        error: "the media session is closed".into(),
                    },
                );
            }
        }
    }

    /// Ends the recording in progress, if any, keeping what was recorded
    /// ([`RecordEnd::Stopped`]). Closing the session does the same.
    pub fn stop_record(&self) {
        // A closed session has no recording left to stop.
        let _ = self.rx_commands.send(RxCommand::StopRecord);
    }

    /// Stops the stream, sends an RTCP BYE (RFC 3550 §6.6) and releases the ports (also done
    /// on drop).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            {
                let mut map = lock(&self.shared.sessions);
                self.shared.unlink(&mut map, self.id);
                map.remove(&self.id);
            }
            self.rx_config.send_modify(|c| c.closing = true);
            self.send(Command::Close { id: self.id });
        }
    }

    fn send(&self, command: Command) {
        self.shared.command(self.shard, command);
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.close();
    }
}

fn emit(events: &UnboundedSender<MediaEvent>, session: SessionId, kind: MediaEventKind) {
    // The daemon may have dropped the receiver while shutting down; nothing to do then.
    let _ = events.send(MediaEvent { session, kind });
}

#[cfg(test)]
mod tests;

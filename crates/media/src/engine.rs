//! The thin tokio edge: UDP sockets and the one task that runs the [`Pacer`] for all sessions.
//!
//! - One engine task owns the pacer: it sleeps until `poll_timeout()`, sends what is due with a
//!   non-blocking `send_to` (a full socket buffer drops the packet rather than delaying every
//!   other stream), and drains commands from an unbounded channel.
//! - One receive task per session parses incoming RTP (RFC 3550 §5.1) and reports a source
//!   only when it changes, so the engine task sees one message per source, not per packet.
//! - Symmetric RTP (RFC 4961): packets are sent where the peer's packets come from, which also
//!   crosses NATs that rewrite the SDP's address.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::dtmf::DtmfEvent;
use crate::pacer::{Pacer, PacerEvent, PlayId, StreamConfig, StreamId};
use crate::prompt::Prompt;
use crate::relay::RelayPacket;
use crate::{Codec, MediaError};

mod receive;
use receive::{receive, RxConfig};

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
    commands: UnboundedSender<Command>,
    next_session: AtomicU64,
    next_play: AtomicU64,
    events: UnboundedSender<MediaEvent>,
    /// RTP packets handed to the kernel, for the benchmark and metrics.
    sent: Arc<AtomicU64>,
    /// Sessions not yet closed, so `bridge` can refuse unknown ids synchronously.
    open: Mutex<HashSet<SessionId>>,
}

enum Command {
    Open {
        id: SessionId,
        socket: Arc<Bound>,
        receiver: JoinHandle<()>,
        reset_latch: Arc<AtomicBool>,
        rx_config: Arc<watch::Sender<RxConfig>>,
    },
    SetRemote {
        id: SessionId,
        addr: SocketAddr,
        codec: Codec,
        payload_type: u8,
    },
    Play {
        id: SessionId,
        play: PlayId,
        prompts: Vec<Arc<Prompt>>,
        looped: bool,
    },
    Stop {
        id: SessionId,
    },
    Close {
        id: SessionId,
    },
    /// From a receive task: packets now come from `from`.
    Received {
        id: SessionId,
        from: SocketAddr,
    },
    SetTelephoneEvent {
        id: SessionId,
        payload_type: Option<u8>,
    },
    SendDtmf {
        id: SessionId,
        digit: char,
        duration_ms: u32,
    },
    Bridge {
        a: SessionId,
        b: SessionId,
    },
    Unbridge {
        id: SessionId,
    },
    /// From a receive task of a bridged session: a packet to relay to its partner.
    Relay {
        id: SessionId,
        packet: RelayPacket,
    },
}

impl MediaEngine {
    /// Starts the engine task on the current tokio runtime. RTP ports are taken from `ports`
    /// (even ports whose odd neighbour, for RTCP, is also in the range: RFC 3550 §11).
    pub fn start(
        bind_ip: IpAddr,
        ports: RangeInclusive<u16>,
    ) -> Result<(MediaEngine, UnboundedReceiver<MediaEvent>), MediaError> {
        let runtime = Handle::try_current().map_err(|e| MediaError::NoRuntime(e.to_string()))?;
        let ports = Arc::new(Ports::new(bind_ip, ports)?);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let sent = Arc::new(AtomicU64::new(0));
        runtime.spawn(run(command_rx, event_tx.clone(), sent.clone()));
        let shared = Arc::new(Shared {
            runtime,
            ports,
            commands,
            next_session: AtomicU64::new(1),
            next_play: AtomicU64::new(1),
            events: event_tx,
            sent,
            open: Mutex::new(HashSet::new()),
        });
        Ok((MediaEngine { shared }, event_rx))
    }

    /// RTP packets sent so far by all sessions (accepted by the kernel).
    pub fn packets_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// The address sessions bind to (for `c=` in SDP).
    pub fn bind_ip(&self) -> IpAddr {
        self.shared.ports.ip
    }

    /// Binds a UDP socket on a free even port of the range and starts receiving on it.
    pub fn open_session(&self) -> Result<SessionHandle, MediaError> {
        let (std_socket, lease) = self.shared.ports.bind()?;
        let port = lease.port;
        // `from_std` needs the runtime's reactor; we may be called from any thread.
        let _guard = self.shared.runtime.enter();
        let sender = std_socket.try_clone()?;
        let socket = Arc::new(Bound {
            socket: UdpSocket::from_std(std_socket)?,
            sender,
            _lease: lease,
        });
        let id = SessionId(self.shared.next_session.fetch_add(1, Ordering::Relaxed));
        let reset_latch = Arc::new(AtomicBool::new(false));
        let (rx_config, rx_config_rx) = watch::channel(RxConfig::default());
        let rx_config = Arc::new(rx_config);
        let receiver = self.shared.runtime.spawn(receive(
            id,
            socket.clone(),
            reset_latch.clone(),
            rx_config_rx,
            self.shared.commands.clone(),
            self.shared.events.clone(),
        ));
        let open = Command::Open {
            id,
            socket,
            receiver,
            reset_latch,
            rx_config: rx_config.clone(),
        };
        if self.shared.commands.send(open).is_err() {
            return Err(MediaError::EngineStopped);
        }
        lock(&self.shared.open).insert(id);
        Ok(SessionHandle {
            id,
            port,
            shared: self.shared.clone(),
            closed: AtomicBool::new(false),
            rx_config,
        })
    }

    /// Bridges two sessions (B2BUA media): from now on packets received on `a` are sent on
    /// `b` and vice versa, each leg with its own SSRC and numbering (RFC 3550 §7.2), through a
    /// small reorder buffer, transcoded when the legs' codecs differ; RFC 4733 digits are
    /// forwarded and still reported. A playback on a leg pauses the relay to that leg. Any
    /// earlier bridge of either session is undone.
    pub fn bridge(&self, a: SessionId, b: SessionId) -> Result<(), MediaError> {
        if a == b {
            return Err(MediaError::BridgeToSelf(a.0));
        }
        {
            let open = lock(&self.shared.open);
            for id in [a, b] {
                if !open.contains(&id) {
                    return Err(MediaError::UnknownSession(id.0));
                }
            }
        }
        self.shared
            .commands
            .send(Command::Bridge { a, b })
            .map_err(|_| MediaError::EngineStopped)
    }

    /// Undoes the bridge of `a` (both directions), if any.
    pub fn unbridge(&self, a: SessionId) {
        // Nothing to undo once the engine is gone.
        let _ = self.shared.commands.send(Command::Unbridge { id: a });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked holding it; the set is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One media session; closing it (or dropping it) stops its stream and frees its port.
#[derive(Debug)]
pub struct SessionHandle {
    id: SessionId,
    port: u16,
    shared: Arc<Shared>,
    closed: AtomicBool,
    rx_config: Arc<watch::Sender<RxConfig>>,
}

impl SessionHandle {
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The local RTP port (RTCP would be `local_port() + 1`).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.shared.ports.ip, self.port)
    }

    /// Sets the destination from the SDP and the negotiated codec. A later packet from another
    /// address moves the destination there (symmetric RTP, RFC 4961).
    pub fn set_remote(&self, addr: SocketAddr, codec: Codec, payload_type: u8) {
        self.rx_config.send_modify(|c| {
            c.codec = codec;
            c.payload_type = payload_type;
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

    /// Stops the stream and releases the port (also done on drop).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            lock(&self.shared.open).remove(&self.id);
            self.send(Command::Close { id: self.id });
        }
    }

    fn send(&self, command: Command) {
        // The engine task only ends when every handle is gone, or with the runtime; then
        // there is nothing left to do with the command.
        if self.shared.commands.send(command).is_err() {
            debug!(session = self.id.0, "media engine stopped, command dropped");
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// A bound RTP socket. Field order matters: the socket is closed before the port returns to
/// the pool, so a new session never fails to bind a port the pool calls free.
#[derive(Debug)]
struct Bound {
    /// Receive side, registered with the tokio reactor.
    socket: UdpSocket,
    /// Send side: a duplicate of the same non-blocking socket, used with plain `send_to`.
    /// tokio's `try_send_to` reports WouldBlock until the reactor has seen the socket
    /// writable, which would drop the first packet of a fresh session (its marker packet).
    sender: StdUdpSocket,
    _lease: PortLease,
}

#[derive(Debug)]
struct Ports {
    ip: IpAddr,
    /// Even ports p with p + 1 in the range.
    candidates: Vec<u16>,
    state: Mutex<PortState>,
    range: (u16, u16),
}

#[derive(Debug, Default)]
struct PortState {
    used: BTreeSet<u16>,
    /// Where the next search starts: rotating avoids reusing a just-freed port, whose late
    /// packets from the previous call would otherwise reach the next one.
    cursor: usize,
}

impl Ports {
    fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Result<Ports, MediaError> {
        let (start, end) = (*range.start(), *range.end());
        let candidates: Vec<u16> = (start..end).filter(|p| p % 2 == 0).collect();
        if candidates.is_empty() {
            return Err(MediaError::PortsExhausted { start, end });
        }
        Ok(Ports {
            ip,
            candidates,
            state: Mutex::new(PortState::default()),
            range: (start, end),
        })
    }

    fn bind(self: &Arc<Self>) -> Result<(StdUdpSocket, PortLease), MediaError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.candidates.len();
        for k in 0..n {
            let i = (state.cursor + k) % n;
            let port = self.candidates[i];
            if state.used.contains(&port) {
                continue;
            }
            // Another process may hold the port: then try the next one.
            let Ok(socket) = StdUdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            socket.set_nonblocking(true)?;
            state.used.insert(port);
            state.cursor = (i + 1) % n;
            let lease = PortLease {
                ports: self.clone(),
                port,
            };
            return Ok((socket, lease));
        }
        Err(MediaError::PortsExhausted {
            start: self.range.0,
            end: self.range.1,
        })
    }
}

#[derive(Debug)]
struct PortLease {
    ports: Arc<Ports>,
    port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut state = self.ports.state.lock().unwrap_or_else(|e| e.into_inner());
        state.used.remove(&self.port);
    }
}

struct Session {
    socket: Arc<Bound>,
    receiver: JoinHandle<()>,
    reset_latch: Arc<AtomicBool>,
    rx_config: Arc<watch::Sender<RxConfig>>,
    remote: Option<SocketAddr>,
    got_first_packet: bool,
}

/// Most commands handled between two pacing passes, so a command storm cannot delay frames.
const COMMAND_BATCH: usize = 256;

/// The engine task: the pacer for every session.
async fn run(
    mut commands: UnboundedReceiver<Command>,
    events: UnboundedSender<MediaEvent>,
    sent_counter: Arc<AtomicU64>,
) {
    let mut pacer = Pacer::new();
    let mut sessions: HashMap<SessionId, Session> = HashMap::new();
    let mut dropped: u64 = 0;
    loop {
        let command = match pacer.poll_timeout() {
            Some(at) => tokio::select! {
                biased;
                c = commands.recv() => Some(c),
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => None,
            },
            None => Some(commands.recv().await),
        };
        match command {
            Some(None) => break,
            Some(Some(c)) => {
                let now = Instant::now();
                handle(c, now, &mut pacer, &mut sessions, &events);
                for _ in 1..COMMAND_BATCH {
                    let Ok(c) = commands.try_recv() else { break };
                    handle(c, now, &mut pacer, &mut sessions, &events);
                }
            }
            None => {}
        }
        pacer.handle_timeout(Instant::now());
        let mut sent = 0u64;
        while let Some(t) = pacer.poll_transmit() {
            let Some(session) = sessions.get(&SessionId(t.stream.0)) else {
                continue;
            };
            // No destination yet (c=0.0.0.0 hold, or set_remote not called): time runs on,
            // nothing is sent.
            let Some(dest) = session.remote else { continue };
            match session.socket.sender.send_to(&t.packet, dest) {
                Ok(_) => sent += 1,
                Err(e) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        warn!(error = %e, dropped, "RTP send failed, packet dropped");
                    }
                }
            }
        }
        sent_counter.fetch_add(sent, Ordering::Relaxed);
        while let Some(e) = pacer.poll_event() {
            let (stream, kind) = match e {
                PacerEvent::PlaybackFinished { stream, play } => {
                    (stream, MediaEventKind::PlaybackFinished(play))
                }
                PacerEvent::PlaybackStopped { stream, play } => {
                    (stream, MediaEventKind::PlaybackStopped(play))
                }
            };
            emit(&events, SessionId(stream.0), kind);
        }
    }
    for (_, s) in sessions.drain() {
        s.receiver.abort();
    }
}

fn emit(events: &UnboundedSender<MediaEvent>, session: SessionId, kind: MediaEventKind) {
    // The daemon may have dropped the receiver while shutting down; nothing to do then.
    let _ = events.send(MediaEvent { session, kind });
}

fn handle(
    command: Command,
    now: Instant,
    pacer: &mut Pacer,
    sessions: &mut HashMap<SessionId, Session>,
    events: &UnboundedSender<MediaEvent>,
) {
    match command {
        Command::Open {
            id,
            socket,
            receiver,
            reset_latch,
            rx_config,
        } => {
            pacer.add_stream(now, StreamId(id.0), StreamConfig::random(Codec::Pcma));
            sessions.insert(
                id,
                Session {
                    socket,
                    receiver,
                    reset_latch,
                    rx_config,
                    remote: None,
                    got_first_packet: false,
                },
            );
        }
        Command::SetRemote {
            id,
            addr,
            codec,
            payload_type,
        } => {
            let Some(s) = sessions.get_mut(&id) else {
                return;
            };
            s.remote = Some(addr);
            // Let the receive task report its current source again, so a peer whose packets
            // come from elsewhere than its SDP says is latched again (RFC 4961).
            s.reset_latch.store(true, Ordering::Release);
            pacer.set_codec(StreamId(id.0), codec, payload_type);
        }
        Command::Play {
            id,
            play,
            prompts,
            looped,
        } => pacer.play_with_id(now, StreamId(id.0), play, prompts, looped),
        Command::Stop { id } => pacer.stop(now, StreamId(id.0)),
        Command::SetTelephoneEvent { id, payload_type } => {
            pacer.set_telephone_event(StreamId(id.0), payload_type)
        }
        Command::SendDtmf {
            id,
            digit,
            duration_ms,
        } => {
            if !pacer.send_dtmf(now, StreamId(id.0), digit, duration_ms) {
                debug!(session = id.0, %digit, "digit not sent: no telephone-event or not a digit");
            }
        }
        Command::Bridge { a, b } => {
            for id in [a, b] {
                if let Some(old) = pacer.unbridge(StreamId(id.0)) {
                    set_bridged(sessions, SessionId(old.0), false);
                }
            }
            if pacer.bridge(StreamId(a.0), StreamId(b.0)) {
                set_bridged(sessions, a, true);
                set_bridged(sessions, b, true);
            }
        }
        Command::Unbridge { id } => {
            if let Some(old) = pacer.unbridge(StreamId(id.0)) {
                set_bridged(sessions, id, false);
                set_bridged(sessions, SessionId(old.0), false);
            }
        }
        Command::Relay { id, packet } => pacer.relay_packet(now, StreamId(id.0), packet),
        Command::Close { id } => {
            if let Some(old) = pacer.unbridge(StreamId(id.0)) {
                set_bridged(sessions, SessionId(old.0), false);
            }
            pacer.remove_stream(StreamId(id.0));
            if let Some(s) = sessions.remove(&id) {
                // Dropping the receive task drops its socket reference; the port is freed
                // when the last one goes.
                s.receiver.abort();
            }
        }
        Command::Received { id, from } => {
            let Some(s) = sessions.get_mut(&id) else {
                return;
            };
            if !s.got_first_packet {
                s.got_first_packet = true;
                emit(events, id, MediaEventKind::FirstPacketReceived { from });
            }
            if s.remote != Some(from) {
                info!(session = id.0, ?from, previous = ?s.remote, "symmetric RTP: sending to the packets' source");
                s.remote = Some(from);
            }
        }
    }
}

fn set_bridged(sessions: &HashMap<SessionId, Session>, id: SessionId, bridged: bool) {
    if let Some(s) = sessions.get(&id) {
        s.rx_config.send_modify(|c| c.bridged = bridged);
    }
}

#[cfg(test)]
mod tests;

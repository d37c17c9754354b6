//! The thin tokio edge: UDP sockets and the one task that runs the [`Pacer`] for all sessions.
//!
//! - One engine task owns the pacer: it sleeps until `poll_timeout()`, sends what is due with a
//!   non-blocking `send_to` (a full socket buffer drops the packet rather than delaying every
//!   other stream), and drains commands from an unbounded channel.
//! - One receive task per session parses incoming RTP (RFC 3550 §5.1) and reports a source
//!   only when it changes, so the engine task sees one message per source, not per packet.
//! - Symmetric RTP (RFC 4961): packets are sent where the peer's packets come from, which also
//!   crosses NATs that rewrite the SDP's address.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::pacer::{Pacer, PacerEvent, PlayId, StreamConfig, StreamId};
use crate::prompt::Prompt;
use crate::{rtp, Codec, MediaError};

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
}

enum Command {
    Open {
        id: SessionId,
        socket: Arc<Bound>,
        receiver: JoinHandle<()>,
        reset_latch: Arc<AtomicBool>,
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
        runtime.spawn(run(command_rx, event_tx));
        let shared = Arc::new(Shared {
            runtime,
            ports,
            commands,
            next_session: AtomicU64::new(1),
            next_play: AtomicU64::new(1),
        });
        Ok((MediaEngine { shared }, event_rx))
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
        let receiver = self.shared.runtime.spawn(receive(
            id,
            socket.clone(),
            reset_latch.clone(),
            self.shared.commands.clone(),
        ));
        let open = Command::Open {
            id,
            socket,
            receiver,
            reset_latch,
        };
        if self.shared.commands.send(open).is_err() {
            return Err(MediaError::EngineStopped);
        }
        Ok(SessionHandle {
            id,
            port,
            shared: self.shared.clone(),
            closed: AtomicBool::new(false),
        })
    }
}

/// One media session; closing it (or dropping it) stops its stream and frees its port.
#[derive(Debug)]
pub struct SessionHandle {
    id: SessionId,
    port: u16,
    shared: Arc<Shared>,
    closed: AtomicBool,
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

    /// Stops the stream and releases the port (also done on drop).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
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

/// Receive loop of one session. Ends when the engine aborts it (close) or the engine is gone.
async fn receive(
    id: SessionId,
    socket: Arc<Bound>,
    reset_latch: Arc<AtomicBool>,
    commands: UnboundedSender<Command>,
) {
    // 1500 covers any RTP packet on an Ethernet path; longer datagrams are truncated, and
    // therefore fail or pass the header checks harmlessly.
    let mut buf = vec![0u8; 1500];
    let mut reported: Option<SocketAddr> = None;
    loop {
        let (len, from) = match socket.socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // E.g. ICMP port unreachable from an earlier send surfaces here on Linux.
                // Not fatal; the pause keeps a persistent error from spinning the CPU.
                debug!(session = id.0, error = %e, "RTP receive error");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        // Only valid RTP moves the destination: stray or hostile junk must not (RFC 4961 §3).
        let Ok(packet) = rtp::parse(datagram) else {
            continue;
        };
        // Payloads are not used yet (DTMF and relay come later).
        let _ = packet.payload;
        if reset_latch.swap(false, Ordering::AcqRel) {
            reported = None;
        }
        if reported != Some(from) {
            reported = Some(from);
            if commands.send(Command::Received { id, from }).is_err() {
                return;
            }
        }
    }
}

struct Session {
    socket: Arc<Bound>,
    receiver: JoinHandle<()>,
    reset_latch: Arc<AtomicBool>,
    remote: Option<SocketAddr>,
    got_first_packet: bool,
}

/// Most commands handled between two pacing passes, so a command storm cannot delay frames.
const COMMAND_BATCH: usize = 256;

/// The engine task: the pacer for every session.
async fn run(mut commands: UnboundedReceiver<Command>, events: UnboundedSender<MediaEvent>) {
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
        while let Some(t) = pacer.poll_transmit() {
            let Some(session) = sessions.get(&SessionId(t.stream.0)) else {
                continue;
            };
            // No destination yet (c=0.0.0.0 hold, or set_remote not called): time runs on,
            // nothing is sent.
            let Some(dest) = session.remote else { continue };
            if let Err(e) = session.socket.sender.send_to(&t.packet, dest) {
                dropped += 1;
                if dropped.is_power_of_two() {
                    warn!(error = %e, dropped, "RTP send failed, packet dropped");
                }
            }
        }
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
        } => {
            pacer.add_stream(now, StreamId(id.0), StreamConfig::random(Codec::Pcma));
            sessions.insert(
                id,
                Session {
                    socket,
                    receiver,
                    reset_latch,
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
        Command::Close { id } => {
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

#[cfg(test)]
mod tests;

//! One pacing shard: a plain OS thread that runs ONE [`Pacer`] for its share of the sessions
//! (assigned round-robin at open).
//!
//! Why shards: on loopback a `sendto` costs 5-10 µs here, because the receiver's kernel
//! delivery runs inside the sender's system call; one thread therefore tops out near
//! 100-150k packets/s, i.e. 2,000-3,000 streams. One shard per core spreads the system calls
//! over the cores while each shard keeps a single deadline heap for all its streams (not a
//! timer per stream). The thread sleeps until `poll_timeout()`, sends what is due with a
//! non-blocking `sendto`, and drains its command channel.
//!
//! Why not a tokio runtime: tokio's timer wheel has a 1 ms resolution, so every frame left
//! up to 1 ms late, by a varying amount: that alone put the inter-packet gap p99 above 21 ms
//! on an idle machine. Waiting on the command channel with a deadline (`recv_timeout`, a
//! futex with a high-resolution timeout) wakes the thread within the kernel's timer slack
//! (50 µs by default) of the deadline, and still at once for a command.

use crate::idmap::IdMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::ports::Bound;
use super::{emit, MediaEvent, MediaEventKind, SessionId};
use crate::pacer::{Pacer, PacerEvent, PlayId, StreamConfig, StreamId};
use crate::prompt::Prompt;
use crate::relay::{RelayPacket, RelaySource};
use crate::Codec;

/// What a session has sent, for its RTCP sender reports (RFC 3550 §6.4.1): written by the
/// shard, read by the session's receive task.
#[derive(Debug, Default)]
pub(super) struct SendStats {
    pub packets: AtomicU32,
    /// Payload octets (headers excluded, RFC 3550 §6.4.1).
    pub octets: AtomicU32,
}

pub(super) enum Command {
    Open {
        id: SessionId,
        socket: Arc<Bound>,
        reset_latch: Arc<AtomicBool>,
        config: StreamConfig,
        origin: Instant,
        stats: Arc<SendStats>,
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
    /// Packets received on `from` (a session of any shard) are relayed into `id`, or none.
    SetRelaySource {
        id: SessionId,
        from: Option<SessionId>,
    },
    /// From the receive task of `from`: a packet to relay into `to`, a session of this shard.
    Relay {
        from: SessionId,
        to: SessionId,
        source: RelaySource,
        packet: RelayPacket,
    },
}

struct Session {
    socket: Arc<Bound>,
    reset_latch: Arc<AtomicBool>,
    stats: Arc<SendStats>,
    /// Where to send, converted once for `sendto`.
    remote: Option<(SocketAddr, SockAddr)>,
    got_first_packet: bool,
}

/// How early a frame may leave to share its pass with others (see `run`): far below what any
/// jitter buffer notices.
const COALESCE: Duration = Duration::from_micros(250);

/// Most commands handled between two pacing passes, so a command storm cannot delay frames.
const COMMAND_BATCH: usize = 256;

/// The shard's loop; ends when every sender of its command channel is gone.
pub(super) fn run(
    commands: Receiver<Command>,
    events: UnboundedSender<MediaEvent>,
    sent_counter: Arc<AtomicU64>,
) {
    let mut pacer = Pacer::new();
    let mut sessions: IdMap<SessionId, Session> = IdMap::default();
    let mut dropped: u64 = 0;
    loop {
        // Sleep until the next frame is due or a command comes, whichever is first.
        let first = match pacer.poll_timeout() {
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => match commands.recv_timeout(wait) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                _ => None,
            },
            None => match commands.recv() {
                Ok(c) => Some(c),
                Err(_) => break,
            },
        };
        let now = Instant::now();
        if let Some(c) = first {
            handle(c, now, &mut pacer, &mut sessions, &events);
        }
        // Commands are applied before the pass, so a frame due now is sent with the latest
        // configuration; at most a batch, so a command storm cannot delay the frames.
        for _ in 0..COMMAND_BATCH {
            match commands.try_recv() {
                Ok(c) => handle(c, now, &mut pacer, &mut sessions, &events),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        // Frames due within the next COALESCE go out in this pass: a stream's frame leaves at
        // most that much early, and a shard whose streams' deadlines are spread over the
        // 20 ms wakes at most once per COALESCE rather than once per stream.
        pacer.handle_timeout(Instant::now() + COALESCE);
        let mut sent = 0u64;
        while let Some(t) = pacer.poll_transmit() {
            if let Some(session) = sessions.get(&SessionId(t.stream.0)) {
                // No destination yet (c=0.0.0.0 hold, or set_remote not called): time runs
                // on, nothing is sent.
                if let Some((_, dest)) = &session.remote {
                    // Counted before the send: once the peer holds the packet, an RTCP sender
                    // report must already include it (RFC 3550 §6.4.1); a failed send is
                    // taken back.
                    let payload = t.packet.len().saturating_sub(crate::rtp::HEADER_LEN) as u32;
                    session.stats.packets.fetch_add(1, Ordering::Relaxed);
                    session.stats.octets.fetch_add(payload, Ordering::Relaxed);
                    match session.socket.send_rtp(&t.packet, dest) {
                        Ok(_) => sent += 1,
                        Err(e) => {
                            session.stats.packets.fetch_sub(1, Ordering::Relaxed);
                            session.stats.octets.fetch_sub(payload, Ordering::Relaxed);
                            dropped += 1;
                            if dropped.is_power_of_two() {
                                warn!(error = %e, dropped, "RTP send failed, packet dropped");
                            }
                        }
                    }
                }
            }
            pacer.recycle(t.packet);
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
}

fn handle(
    command: Command,
    now: Instant,
    pacer: &mut Pacer,
    sessions: &mut IdMap<SessionId, Session>,
    events: &UnboundedSender<MediaEvent>,
) {
    match command {
        Command::Open {
            id,
            socket,
            reset_latch,
            config,
            origin,
            stats,
        } => {
            pacer.add_stream(origin.min(now), StreamId(id.0), config);
            sessions.insert(
                id,
                Session {
                    socket,
                    reset_latch,
                    stats,
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
            s.remote = Some((addr, SockAddr::from(addr)));
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
        Command::SetRelaySource { id, from } => {
            pacer.set_relay_source(StreamId(id.0), from.map(|f| StreamId(f.0)))
        }
        Command::Relay {
            from,
            to,
            source,
            packet,
        } => pacer.relay_into(now, StreamId(from.0), StreamId(to.0), source, packet),
        Command::Close { id } => {
            pacer.remove_stream(StreamId(id.0));
            // The receive task ends by itself (it sees the session closing and sends the
            // RTCP BYE); the ports are freed when the last socket reference goes.
            sessions.remove(&id);
        }
        Command::Received { id, from } => {
            let Some(s) = sessions.get_mut(&id) else {
                return;
            };
            if !s.got_first_packet {
                s.got_first_packet = true;
                emit(events, id, MediaEventKind::FirstPacketReceived { from });
            }
            // A source we cannot answer (port 0, a wildcard or broadcast
            // address: some senders, SIPp's pcap player among them, emit
            // such packets) is never latched onto: replies would fail and
            // the caller would go deaf (RFC 4961 assumes a usable source).
            if !answerable(from) {
                return;
            }
            if s.remote.as_ref().map(|(a, _)| *a) != Some(from) {
                info!(session = id.0, ?from, previous = ?s.remote.as_ref().map(|r| r.0), "symmetric RTP: sending to the packets' source");
                s.remote = Some((from, SockAddr::from(from)));
            }
        }
    }
}

/// Can RTP be sent back to this source address?
fn answerable(from: std::net::SocketAddr) -> bool {
    let ip = from.ip();
    from.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod answerable_tests {
    use super::answerable;

    #[test]
    fn unanswerable_sources_are_not_latched() {
        // Regression: SIPp's pcap player sends from port 0; latching on it
        // made every later send fail (EINVAL) and the caller heard nothing.
        assert!(!answerable("127.0.0.1:0".parse().expect("addr")));
        assert!(!answerable("0.0.0.0:4000".parse().expect("addr")));
        assert!(!answerable("255.255.255.255:4000".parse().expect("addr")));
        assert!(!answerable("224.0.0.1:4000".parse().expect("addr")));
        assert!(answerable("127.0.0.1:41000".parse().expect("addr")));
    }
}

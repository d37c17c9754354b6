//! The receive task of one session: RTP parsing, symmetric-RTP latching, DTMF detection
//! (RFC 4733 or in-band), dead-call detection and, when bridged, handing packets to the
//! engine task for relaying. One task per session keeps detection work off the pacing task
//! and spreads it over the runtime's threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;
use tracing::debug;

use super::{emit, Bound, Command, MediaEvent, MediaEventKind, SessionId};
use crate::dtmf::{InbandDetector, Rfc4733Receiver};
use crate::relay::RelayPacket;
use crate::{rtp, Codec};

/// What the receive task needs to know of its session, set from the handle and the engine.
#[derive(Debug, Clone, Copy)]
pub(super) struct RxConfig {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub rtp_timeout: Option<Duration>,
    pub bridged: bool,
}

impl Default for RxConfig {
    fn default() -> Self {
        RxConfig {
            codec: Codec::Pcma,
            payload_type: Codec::Pcma.payload_type(),
            telephone_event: None,
            rtp_timeout: None,
            bridged: false,
        }
    }
}

/// Receive loop of one session. Ends when the engine aborts it (close) or the engine is gone.
pub(super) async fn receive(
    id: SessionId,
    socket: Arc<Bound>,
    reset_latch: Arc<AtomicBool>,
    mut config: watch::Receiver<RxConfig>,
    commands: UnboundedSender<Command>,
    events: UnboundedSender<MediaEvent>,
) {
    // 1500 covers any RTP packet on an Ethernet path; longer datagrams are truncated, and
    // therefore fail or pass the header checks harmlessly.
    let mut buf = vec![0u8; 1500];
    let mut reported: Option<SocketAddr> = None;
    let mut rfc4733 = Rfc4733Receiver::new();
    // Boxed and created on first use: most sessions negotiate telephone-event.
    let mut inband: Option<Box<InbandDetector>> = None;
    let mut pcm: Vec<i16> = Vec::new();
    let mut last_rx = TokioInstant::now();
    let mut timed_out = false;
    let mut config_open = true;
    loop {
        let cfg = *config.borrow_and_update();
        let dead_at = cfg.rtp_timeout.filter(|_| !timed_out).map(|t| last_rx + t);
        let dtmf_at = rfc4733.poll_timeout().map(TokioInstant::from_std);
        let wake = [dead_at, dtmf_at].into_iter().flatten().min();
        let received = tokio::select! {
            r = socket.socket.recv_from(&mut buf) => Some(r),
            changed = config.changed(), if config_open => {
                if changed.is_err() {
                    config_open = false;
                }
                // A new timeout starts counting from its setting.
                last_rx = TokioInstant::now();
                None
            }
            _ = sleep_until_opt(wake), if wake.is_some() => None,
        };
        let now = TokioInstant::now();
        if dead_at.is_some_and(|at| at <= now) {
            timed_out = true;
            emit(&events, id, MediaEventKind::RtpTimeout);
        }
        rfc4733.handle_timeout(now.into_std());
        forward_digits(&events, id, &mut rfc4733);
        let Some(received) = received else { continue };
        let (len, from) = match received {
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
        last_rx = now;
        timed_out = false;
        if reset_latch.swap(false, Ordering::AcqRel) {
            reported = None;
        }
        if reported != Some(from) {
            reported = Some(from);
            if commands.send(Command::Received { id, from }).is_err() {
                return;
            }
        }
        let is_event = cfg.telephone_event == Some(packet.payload_type);
        if is_event {
            rfc4733.handle_packet(now.into_std(), packet.timestamp, packet.payload);
            forward_digits(&events, id, &mut rfc4733);
        } else if packet.payload_type == cfg.payload_type && cfg.telephone_event.is_none() {
            // No telephone-event negotiated: the digits, if any, are tones in the audio.
            pcm.clear();
            pcm.extend(packet.payload.iter().map(|&b| cfg.codec.decode_sample(b)));
            let detector = inband.get_or_insert_with(Box::default);
            detector.process(&pcm);
            while let Some(d) = detector.poll_event() {
                emit(&events, id, MediaEventKind::Dtmf(d));
            }
        }
        if cfg.bridged && (is_event || packet.payload_type == cfg.payload_type) {
            let relay = RelayPacket {
                marker: packet.marker,
                payload_type: packet.payload_type,
                sequence: packet.sequence,
                timestamp: packet.timestamp,
                ssrc: packet.ssrc,
                payload: packet.payload.to_vec(),
            };
            if commands.send(Command::Relay { id, packet: relay }).is_err() {
                return;
            }
        }
    }
}

fn forward_digits(events: &UnboundedSender<MediaEvent>, id: SessionId, rx: &mut Rfc4733Receiver) {
    while let Some(d) = rx.poll_event() {
        emit(events, id, MediaEventKind::Dtmf(d));
    }
}

async fn sleep_until_opt(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

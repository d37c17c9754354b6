//! The receive task of one session: RTP parsing, symmetric-RTP latching, DTMF detection
//! (RFC 4733 or in-band), dead-call detection, handing packets to relay to the partner's
//! shard, and the session's RTCP (RFC 3550 §6: reports every ~5 s, BYE on close). One task
//! per session keeps this work off the pacing shards and spreads it over the runtime's
//! threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;
use tracing::debug;

use super::ports::Bound;
use super::shard::{Command, SendStats};
use super::{emit, MediaEvent, MediaEventKind, SessionId};
use crate::codec::Decoder;
use crate::dtmf::{InbandDetector, Rfc4733Receiver};
use crate::relay::{RelayPacket, RelaySource};
use crate::rtcp::{self, ReceptionStats, RtcpPacket, SenderInfo};
use crate::{rtp, Codec};

/// What the receive task needs to know of its session, set from the handle and the engine.
#[derive(Debug, Clone, Copy)]
pub(super) struct RxConfig {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub rtp_timeout: Option<Duration>,
    /// Bridged: packets received here are relayed into this session of that shard.
    pub relay_to: Option<(SessionId, usize)>,
    /// The peer's RTP address from SDP, until its packets show where it really is.
    pub remote: Option<SocketAddr>,
    /// The session is closing: send the RTCP BYE and end.
    pub closing: bool,
}

impl Default for RxConfig {
    fn default() -> Self {
        RxConfig {
            codec: Codec::Pcma,
            payload_type: Codec::Pcma.payload_type(),
            telephone_event: None,
            rtp_timeout: None,
            relay_to: None,
            remote: None,
            closing: false,
        }
    }
}

/// Everything the task owns.
pub(super) struct RxContext {
    pub id: SessionId,
    pub shard: usize,
    pub socket: Arc<Bound>,
    pub reset_latch: Arc<AtomicBool>,
    pub config: watch::Receiver<RxConfig>,
    pub shards: Arc<[UnboundedSender<Command>]>,
    pub events: UnboundedSender<MediaEvent>,
    pub stats: Arc<SendStats>,
    /// Our SSRC, for RTCP.
    pub ssrc: u32,
    /// The instant at which our RTP clock read this timestamp (for the SR, §6.4.1).
    pub ts_origin: (Instant, u32),
}

/// The RTCP side of the session.
struct Rtcp {
    stats: ReceptionStats,
    cname: String,
    next_report: TokioInstant,
    /// Where the peer's RTCP comes from (symmetric RTCP, RFC 4961).
    remote: Option<SocketAddr>,
    packets_at_last_report: u32,
    bye_reported: bool,
    buf: Vec<u8>,
}

/// Receive loop of one session. Ends when the session closes or the engine is gone.
pub(super) async fn receive(mut cx: RxContext) {
    // 1500 covers any RTP packet on an Ethernet path; longer datagrams are truncated, and
    // therefore fail or pass the header checks harmlessly.
    let mut buf = vec![0u8; 1500];
    let mut rtcp_buf = vec![0u8; 1500];
    let mut reported: Option<SocketAddr> = None;
    let mut rfc4733 = Rfc4733Receiver::new();
    // Boxed and created on first use: most sessions negotiate telephone-event.
    let mut inband: Option<Box<(InbandDetector, Decoder)>> = None;
    let mut pcm: Vec<i16> = Vec::new();
    let mut last_rx = TokioInstant::now();
    let mut timed_out = false;
    let mut rtcp = Rtcp {
        stats: ReceptionStats::new(),
        cname: format!("{:016x}@ligne-directe", rand::random::<u64>()),
        // RFC 3550 §6.2: the first report after half the minimum interval.
        next_report: TokioInstant::now() + rtcp::report_interval(rand::random()) / 2,
        remote: None,
        packets_at_last_report: 0,
        bye_reported: false,
        buf: Vec::with_capacity(256),
    };
    loop {
        let cfg = *cx.config.borrow_and_update();
        if cfg.closing {
            send_report(&mut cx, &mut rtcp, &cfg, reported, true);
            return;
        }
        let dead_at = cfg.rtp_timeout.filter(|_| !timed_out).map(|t| last_rx + t);
        let dtmf_at = rfc4733.poll_timeout().map(TokioInstant::from_std);
        let wake = [dead_at, dtmf_at, Some(rtcp.next_report)]
            .into_iter()
            .flatten()
            .min();
        let received = tokio::select! {
            r = cx.socket.recv_rtp(&mut buf) => Some(r),
            r = cx.socket.rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((len, from)) = r {
                    on_rtcp(&cx, &mut rtcp, rtcp_buf.get(..len).unwrap_or_default(), from);
                }
                None
            }
            changed = cx.config.changed() => {
                if changed.is_err() {
                    // Every handle is gone without close(): end as if closed.
                    send_report(&mut cx, &mut rtcp, &cfg, reported, true);
                    return;
                }
                // A new timeout starts counting from its setting.
                last_rx = TokioInstant::now();
                None
            }
            _ = sleep_until_opt(wake) => None,
        };
        let now = TokioInstant::now();
        if dead_at.is_some_and(|at| at <= now) {
            timed_out = true;
            emit(&cx.events, cx.id, MediaEventKind::RtpTimeout);
        }
        if rtcp.next_report <= now {
            send_report(&mut cx, &mut rtcp, &cfg, reported, false);
            rtcp.next_report = now + rtcp::report_interval(rand::random());
        }
        rfc4733.handle_timeout(now.into_std());
        forward_digits(&cx.events, cx.id, &mut rfc4733);
        let Some(received) = received else { continue };
        let (len, from) = match received {
            Ok(r) => r,
            Err(e) => {
                // E.g. ICMP port unreachable from an earlier send surfaces here on Linux.
                // Not fatal; the pause keeps a persistent error from spinning the CPU.
                debug!(session = cx.id.0, error = %e, "RTP receive error");
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
        if cx.reset_latch.swap(false, Ordering::AcqRel) {
            reported = None;
        }
        if reported != Some(from) {
            reported = Some(from);
            if cx.shards[cx.shard]
                .send(Command::Received { id: cx.id, from })
                .is_err()
            {
                return;
            }
        }
        let is_event = cfg.telephone_event == Some(packet.payload_type);
        let is_audio = packet.payload_type == cfg.payload_type;
        if is_event || is_audio {
            rtcp.stats.on_rtp(
                now.into_std(),
                packet.ssrc,
                packet.sequence,
                packet.timestamp,
                Codec::CLOCK_RATE,
            );
        }
        if is_event {
            rfc4733.handle_packet(now.into_std(), packet.timestamp, packet.payload);
            forward_digits(&cx.events, cx.id, &mut rfc4733);
        } else if is_audio && cfg.telephone_event.is_none() {
            // No telephone-event negotiated: the digits, if any, are tones in the audio.
            let state = inband.get_or_insert_with(|| {
                Box::new((InbandDetector::default(), Decoder::new(cfg.codec)))
            });
            let (detector, decoder) = &mut **state;
            if decoder.codec() != cfg.codec {
                *decoder = Decoder::new(cfg.codec);
            }
            pcm.clear();
            decoder.decode_8k(packet.payload, &mut pcm);
            detector.process(&pcm);
            while let Some(d) = detector.poll_event() {
                emit(&cx.events, cx.id, MediaEventKind::Dtmf(d));
            }
        }
        if let Some((to, shard)) = cfg.relay_to.filter(|_| is_event || is_audio) {
            let relay = Command::Relay {
                from: cx.id,
                to,
                source: RelaySource {
                    codec: cfg.codec,
                    payload_type: cfg.payload_type,
                    telephone_event: cfg.telephone_event,
                },
                packet: RelayPacket {
                    marker: packet.marker,
                    payload_type: packet.payload_type,
                    sequence: packet.sequence,
                    timestamp: packet.timestamp,
                    ssrc: packet.ssrc,
                    payload: packet.payload.to_vec(),
                },
            };
            if let Some(tx) = cx.shards.get(shard) {
                // The partner's shard only stops with the engine.
                let _ = tx.send(relay);
            }
        }
    }
}

/// A datagram on the RTCP port: garbage is dropped, an SR feeds LSR/DLSR, a BYE is reported.
fn on_rtcp(cx: &RxContext, rtcp: &mut Rtcp, datagram: &[u8], from: SocketAddr) {
    let packets = match rtcp::parse_compound(datagram) {
        Ok(p) => p,
        Err(e) => {
            debug!(session = cx.id.0, error = %e, "RTCP dropped");
            return;
        }
    };
    rtcp.remote = Some(from);
    let now = Instant::now();
    for p in packets {
        match p {
            RtcpPacket::SenderReport { ssrc, info, .. } => {
                if rtcp.stats.ssrc().is_none_or(|s| s == ssrc) {
                    rtcp.stats.on_sender_report(now, info.ntp);
                }
            }
            RtcpPacket::Bye { reason, .. } => {
                if !rtcp.bye_reported {
                    rtcp.bye_reported = true;
                    emit(&cx.events, cx.id, MediaEventKind::RtcpBye { reason });
                }
            }
            RtcpPacket::ReceiverReport { .. } | RtcpPacket::Other { .. } => {}
        }
    }
}

/// Sends our report (an SR if we sent RTP since the last one, else an RR, §6.4), followed by
/// a BYE when closing (§6.6). Sent where the peer's RTCP comes from, else to its RTP port + 1
/// (§11).
fn send_report(
    cx: &mut RxContext,
    rtcp: &mut Rtcp,
    cfg: &RxConfig,
    rtp_source: Option<SocketAddr>,
    bye: bool,
) {
    let Some(dest) = rtcp.remote.or_else(|| {
        rtp_source
            .or(cfg.remote)
            .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
    }) else {
        return;
    };
    let now = Instant::now();
    let packets = cx.stats.packets.load(Ordering::Relaxed);
    let sender = (packets != rtcp.packets_at_last_report).then(|| {
        let (origin, ts0) = cx.ts_origin;
        let units = now.saturating_duration_since(origin).as_nanos()
            * u128::from(Codec::CLOCK_RATE)
            / 1_000_000_000;
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        SenderInfo {
            ntp: rtcp::ntp_timestamp(wall),
            // Truncation is the modular arithmetic of RTP timestamps.
            rtp_ts: ts0.wrapping_add(units as u32),
            packets,
            octets: cx.stats.octets.load(Ordering::Relaxed),
        }
    });
    rtcp.packets_at_last_report = packets;
    let block = rtcp.stats.report_block(now);
    rtcp.buf.clear();
    rtcp::write_report(
        &mut rtcp.buf,
        cx.ssrc,
        sender.as_ref(),
        block.as_slice(),
        &rtcp.cname,
    );
    if bye {
        rtcp::write_bye(&mut rtcp.buf, cx.ssrc, None);
    }
    if let Err(e) = socket2::SockRef::from(&cx.socket.rtcp).send_to(&rtcp.buf, &dest.into()) {
        debug!(session = cx.id.0, error = %e, "RTCP not sent");
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

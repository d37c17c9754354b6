//! The receive task of one session: RTP parsing, symmetric-RTP latching, DTMF detection
//! (RFC 4733 or in-band), dead-call detection, handing packets to relay to the partner's
//! shard, feeding a message recording (the file is written elsewhere, `recording.rs`),
//! and the session's RTCP (RFC 3550 §6: reports every ~5 s, BYE on close). One task per
//! session keeps this work off the pacing shards and spreads it over the runtime's threads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;
use tracing::debug;

use super::ports::Bound;
use super::recording::Recording;
use super::shard::{Command, SendStats};
use super::{emit, MediaEvent, MediaEventKind, SessionId};
use crate::codec::Decoder;
use crate::dtmf::{DtmfEvent, InbandDetector, Rfc4733Receiver};
use crate::record::RecordOptions;
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

/// Orders from the session handle that are not configuration.
#[derive(Debug)]
pub(super) enum RxCommand {
    Record {
        path: PathBuf,
        options: RecordOptions,
    },
    StopRecord,
}

/// Everything the task owns.
pub(super) struct RxContext {
    pub id: SessionId,
    pub shard: usize,
    pub socket: Arc<Bound>,
    pub reset_latch: Arc<AtomicBool>,
    pub config: watch::Receiver<RxConfig>,
    pub commands: UnboundedReceiver<RxCommand>,
    pub shards: Arc<[std::sync::mpsc::Sender<Command>]>,
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

/// What the receive task keeps between datagrams.
struct Rx {
    /// 1500 covers any RTP packet on an Ethernet path; longer datagrams are truncated, and
    /// therefore fail or pass the header checks harmlessly.
    buf: Vec<u8>,
    /// The source last reported to the shard (symmetric RTP latching).
    reported: Option<SocketAddr>,
    rfc4733: Rfc4733Receiver,
    /// SSRC and timestamp of the last telephone-event packet: where the digit it reports
    /// starts on the audio timeline (RFC 4733 §2.3.1), for a recording to cut it off.
    event_start: Option<(u32, u32)>,
    /// Created on first use: most sessions negotiate telephone-event and record nothing.
    decoder: Option<Decoder>,
    inband: Option<Box<InbandDetector>>,
    pcm: Vec<i16>,
    recording: Option<Recording>,
    last_rx: TokioInstant,
    timed_out: bool,
    rtcp: Rtcp,
}

/// Most datagrams read in one go before the other branches get their turn, so a flood on
/// the RTP port cannot starve the session's commands, RTCP and timers.
const BURST: usize = 64;

/// Receive loop of one session. Ends when the session closes or the engine is gone.
pub(super) async fn receive(mut cx: RxContext) {
    let mut rtcp_buf = vec![0u8; 1500];
    let mut rx = Rx {
        buf: vec![0u8; 1500],
        reported: None,
        rfc4733: Rfc4733Receiver::new(),
        event_start: None,
        decoder: None,
        inband: None,
        pcm: Vec::new(),
        recording: None,
        last_rx: TokioInstant::now(),
        timed_out: false,
        rtcp: Rtcp {
            stats: ReceptionStats::new(),
            cname: format!("{:016x}@ligne-directe", rand::random::<u64>()),
            // RFC 3550 §6.2: the first report after half the minimum interval.
            next_report: TokioInstant::now() + rtcp::report_interval(rand::random()) / 2,
            remote: None,
            packets_at_last_report: 0,
            bye_reported: false,
            buf: Vec::with_capacity(256),
        },
    };
    let mut commands_open = true;
    loop {
        // What the last round gave the recording goes to its writer.
        if rx.recording.as_mut().is_some_and(Recording::pump) {
            rx.recording = None;
        }
        let cfg = *cx.config.borrow_and_update();
        if cfg.closing {
            rx.close(&mut cx, &cfg);
            return;
        }
        let dead_at = cfg
            .rtp_timeout
            .filter(|_| !rx.timed_out)
            .map(|t| rx.last_rx + t);
        let dtmf_at = rx.rfc4733.poll_timeout().map(TokioInstant::from_std);
        let record_at = rx
            .recording
            .as_ref()
            .and_then(|r| r.recorder.poll_timeout())
            .map(TokioInstant::from_std);
        let wake = [dead_at, dtmf_at, record_at, Some(rx.rtcp.next_report)]
            .into_iter()
            .flatten()
            .min();
        let alive = tokio::select! {
            r = cx.socket.recv_rtp(&mut rx.buf) => match r {
                Ok((len, from)) => {
                    rx.on_datagram(&cx, len, from) && rx.drain(&cx, BURST - 1)
                }
                Err(e) => {
                    // E.g. ICMP port unreachable from an earlier send surfaces here on
                    // Linux. Not fatal; the pause keeps a persistent error from spinning.
                    debug!(session = cx.id.0, error = %e, "RTP receive error");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    true
                }
            },
            r = cx.socket.rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((len, from)) = r {
                    on_rtcp(&cx, &mut rx.rtcp, rtcp_buf.get(..len).unwrap_or_default(), from);
                }
                true
            }
            command = cx.commands.recv(), if commands_open => {
                // What arrived before the order belongs to the state before it: a stopped
                // recording keeps its last packets, a new one does not get older ones.
                let alive = rx.drain(&cx, usize::MAX);
                match command {
                    Some(command) => rx.on_command(&cx, command),
                    None => commands_open = false,
                }
                alive
            }
            changed = cx.config.changed() => {
                if changed.is_err() {
                    // Every handle is gone without close(): end as if closed.
                    rx.close(&mut cx, &cfg);
                    return;
                }
                // A new timeout starts counting from its setting.
                rx.last_rx = TokioInstant::now();
                true
            }
            _ = sleep_until_opt(wake) => true,
        };
        if !alive {
            return;
        }
        let now = TokioInstant::now();
        if dead_at.is_some_and(|at| at <= now) {
            rx.timed_out = true;
            emit(&cx.events, cx.id, MediaEventKind::RtpTimeout);
        }
        if rx.rtcp.next_report <= now {
            send_report(&mut cx, &mut rx.rtcp, &cfg, rx.reported, false);
            rx.rtcp.next_report = now + rtcp::report_interval(rand::random());
        }
        rx.rfc4733.handle_timeout(now.into_std());
        forward_digits(
            &cx.events,
            cx.id,
            now.into_std(),
            &mut rx.rfc4733,
            &mut rx.recording,
            rx.event_start,
        );
        if let Some(r) = rx.recording.as_mut() {
            r.recorder.handle_timeout(now.into_std());
        }
    }
}

impl Rx {
    /// Stops the recording and sends the RTCP BYE: the session is over.
    fn close(&mut self, cx: &mut RxContext, cfg: &RxConfig) {
        if let Some(r) = self.recording.take() {
            r.stop();
        }
        send_report(cx, &mut self.rtcp, cfg, self.reported, true);
    }

    fn on_command(&mut self, cx: &RxContext, command: RxCommand) {
        match command {
            RxCommand::Record { path, options } => {
                // A new recording replaces the one in progress, which ends first.
                if let Some(r) = self.recording.take() {
                    r.stop();
                }
                let mut r =
                    Recording::start(Instant::now(), path, options, cx.id, cx.events.clone());
                // A zero `max` ends at once.
                r.recorder.handle_timeout(Instant::now());
                self.recording = Some(r);
            }
            RxCommand::StopRecord => {
                if let Some(r) = self.recording.take() {
                    r.stop();
                }
            }
        }
    }

    /// Handles the datagrams already queued on the RTP socket, at most `max`, without
    /// waiting. False when the engine is gone.
    fn drain(&mut self, cx: &RxContext, max: usize) -> bool {
        for _ in 0..max {
            // Straight on the descriptor: a WouldBlock here leaves the reactor's readiness
            // set, which costs at most one spurious wake-up of `recv_rtp`.
            match cx.socket.socket.get_ref().recv_from(&mut self.buf) {
                Ok((len, from)) => {
                    if !self.on_datagram(cx, len, from) {
                        return false;
                    }
                }
                Err(_) => break,
            }
        }
        true
    }

    /// One datagram from the RTP port. False when the engine is gone.
    fn on_datagram(&mut self, cx: &RxContext, len: usize, from: SocketAddr) -> bool {
        // The configuration as it is now, not as the loop last saw it: a packet that arrives
        // after `bridge()` or `unbridge()` returned is relayed, or not, accordingly.
        let cfg = *cx.config.borrow();
        let now = TokioInstant::now();
        let Some(datagram) = self.buf.get(..len) else {
            return true;
        };
        // Only valid RTP moves the destination: stray or hostile junk must not (RFC 4961 §3).
        let Ok(packet) = rtp::parse(datagram) else {
            return true;
        };
        self.last_rx = now;
        self.timed_out = false;
        if cx.reset_latch.swap(false, Ordering::AcqRel) {
            self.reported = None;
        }
        if self.reported != Some(from) {
            self.reported = Some(from);
            if cx.shards[cx.shard]
                .send(Command::Received { id: cx.id, from })
                .is_err()
            {
                return false;
            }
        }
        let is_event = cfg.telephone_event == Some(packet.payload_type);
        let is_audio = packet.payload_type == cfg.payload_type;
        if is_event || is_audio {
            self.rtcp.stats.on_rtp(
                now.into_std(),
                packet.ssrc,
                packet.sequence,
                packet.timestamp,
                Codec::CLOCK_RATE,
            );
        }
        // No telephone-event negotiated: the digits, if any, are tones in the audio.
        let inband_digits = is_audio && cfg.telephone_event.is_none();
        if is_audio && (inband_digits || self.recording.is_some()) {
            let decoder = self.decoder.get_or_insert_with(|| Decoder::new(cfg.codec));
            if decoder.codec() != cfg.codec {
                *decoder = Decoder::new(cfg.codec);
            }
            self.pcm.clear();
            decoder.decode_8k(packet.payload, &mut self.pcm);
            if let Some(r) = self.recording.as_mut() {
                r.recorder
                    .handle_audio(now.into_std(), packet.ssrc, packet.timestamp, &self.pcm);
            }
        }
        if is_event {
            self.event_start = Some((packet.ssrc, packet.timestamp));
            self.rfc4733
                .handle_packet(now.into_std(), packet.timestamp, packet.payload);
            forward_digits(
                &cx.events,
                cx.id,
                now.into_std(),
                &mut self.rfc4733,
                &mut self.recording,
                self.event_start,
            );
        } else if inband_digits {
            let detector = self.inband.get_or_insert_with(Box::default);
            detector.process(&self.pcm);
            while let Some(d) = detector.poll_event() {
                digit(
                    &cx.events,
                    cx.id,
                    now.into_std(),
                    d,
                    &mut self.recording,
                    None,
                );
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
        true
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

fn forward_digits(
    events: &UnboundedSender<MediaEvent>,
    id: SessionId,
    now: Instant,
    rx: &mut Rfc4733Receiver,
    recording: &mut Option<Recording>,
    event_start: Option<(u32, u32)>,
) {
    while let Some(d) = rx.poll_event() {
        digit(events, id, now, d, recording, event_start);
    }
}

/// Reports a digit, and lets a recording end on it (the stop key is still reported).
fn digit(
    events: &UnboundedSender<MediaEvent>,
    id: SessionId,
    now: Instant,
    d: DtmfEvent,
    recording: &mut Option<Recording>,
    event_start: Option<(u32, u32)>,
) {
    if let Some(r) = recording.as_mut() {
        r.recorder.handle_digit(now, &d, event_start);
    }
    emit(events, id, MediaEventKind::Dtmf(d));
}

async fn sleep_until_opt(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

use std::net::Ipv4Addr;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::*;
use crate::{rtp, DtmfSource};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(3);

fn tone(ms: usize) -> Arc<Prompt> {
    let pcm = (0..ms * 8)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin() * 10_000.0) as i16
        })
        .collect();
    Arc::new(Prompt::from_pcm("tone", pcm))
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

async fn recv_rtp(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (len, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("no RTP within 3 s")
        .unwrap();
    buf.truncate(len);
    (buf, from)
}

async fn next_event(rx: &mut UnboundedReceiver<MediaEvent>) -> MediaEvent {
    timeout(WAIT, rx.recv())
        .await
        .expect("no event within 3 s")
        .expect("engine gone")
}

#[tokio::test]
async fn plays_a_prompt_paced_and_reports_the_end() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 42_000..=42_099).unwrap();
    let session = engine.open_session().unwrap();
    assert_eq!(session.local_port() % 2, 0);
    assert!((42_000..42_099).contains(&session.local_port()));
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    let started = Instant::now();
    let play = session.play(vec![tone(200)], false);

    let mut seqs = Vec::new();
    for n in 0..10 {
        let (bytes, from) = recv_rtp(&peer).await;
        assert_eq!(from, session.local_addr());
        let p = rtp::parse(&bytes).unwrap();
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.marker, n == 0, "packet {n}: {p:?}");
        assert_eq!(p.payload.len(), 160);
        let level = rms(&Codec::Pcma.decode(p.payload));
        assert!(level > 5000.0, "packet {n} RMS {level}: not the tone");
        seqs.push(p.sequence);
    }
    // Paced, not burst: 10 frames span at least 9 intervals of 20 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(175),
        "{:?}",
        started.elapsed()
    );
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1));
    }
    let ev = next_event(&mut events).await;
    assert_eq!(
        ev,
        MediaEvent {
            session: session.id(),
            kind: MediaEventKind::PlaybackFinished(play)
        }
    );
    // Nothing more after the end of the prompt.
    let mut buf = [0u8; 256];
    assert!(
        timeout(Duration::from_millis(100), peer.recv_from(&mut buf))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn symmetric_rtp_follows_the_source_of_incoming_packets() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 42_100..=42_199).unwrap();
    let session = engine.open_session().unwrap();
    let sdp_addr = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let real = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(sdp_addr.local_addr().unwrap(), Codec::Pcmu, 0);
    let play = session.play(vec![tone(100)], true);
    let (first, _) = recv_rtp(&sdp_addr).await;
    assert_eq!(rtp::parse(&first).unwrap().payload_type, 0);

    // Junk does not latch; a real RTP packet from the other socket does.
    real.send_to(b"not rtp at all", session.local_addr())
        .await
        .unwrap();
    let mut pkt = Vec::new();
    rtp::RtpHeader {
        marker: true,
        payload_type: 0,
        sequence: 1,
        timestamp: 160,
        ssrc: 7,
    }
    .write_packet(&[0xFF; 160], &mut pkt)
    .unwrap();
    real.send_to(&pkt, session.local_addr()).await.unwrap();
    let ev = next_event(&mut events).await;
    assert_eq!(
        ev.kind,
        MediaEventKind::FirstPacketReceived {
            from: real.local_addr().unwrap()
        }
    );
    let (bytes, _) = recv_rtp(&real).await;
    assert!(rms(&Codec::Pcmu.decode(rtp::parse(&bytes).unwrap().payload)) > 5000.0);

    session.stop();
    assert_eq!(
        next_event(&mut events).await.kind,
        MediaEventKind::PlaybackStopped(play)
    );
    // Drain what was in flight, then silence.
    while timeout(Duration::from_millis(60), real.recv_from(&mut [0u8; 256]))
        .await
        .is_ok()
    {}
    assert!(
        timeout(Duration::from_millis(100), real.recv_from(&mut [0u8; 256]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ports_are_even_exhaustible_and_released_on_close() {
    let (engine, _events) = MediaEngine::start(LOCALHOST, 42_200..=42_203).unwrap();
    let a = engine.open_session().unwrap();
    let b = engine.open_session().unwrap();
    let mut ports = [a.local_port(), b.local_port()];
    ports.sort();
    assert_eq!(ports, [42_200, 42_202]);
    assert!(matches!(
        engine.open_session(),
        Err(MediaError::PortsExhausted {
            start: 42_200,
            end: 42_203
        })
    ));
    let freed = a.local_port();
    drop(a);
    // The port returns once the receive task has let go of the socket.
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(s) = engine.open_session() {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reopened.expect("port never released").local_port(), freed);
    b.close();
}

#[tokio::test]
async fn a_range_without_an_even_pair_is_refused() {
    assert!(matches!(
        MediaEngine::start(LOCALHOST, 42_301..=42_302),
        Err(MediaError::PortsExhausted { .. })
    ));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    assert!(matches!(
        MediaEngine::start(LOCALHOST, 42_400..=42_409),
        Err(MediaError::NoRuntime(_))
    ));
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rtp::RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
    }
    .write_packet(payload, &mut out)
    .unwrap();
    out
}

/// The next event that is not FirstPacketReceived.
async fn next_other_event(rx: &mut UnboundedReceiver<MediaEvent>) -> MediaEvent {
    loop {
        let ev = next_event(rx).await;
        if !matches!(ev.kind, MediaEventKind::FirstPacketReceived { .. }) {
            return ev;
        }
    }
}

#[tokio::test]
async fn rfc4733_digits_from_the_peer_are_reported_once() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 42_500..=42_599).unwrap();
    let session = engine.open_session().unwrap();
    session.set_telephone_event(Some(101));
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    let mut seq = 100u16;
    for (i, digit) in "0123456789*#ABCD".chars().enumerate() {
        let ts = 8000 * i as u32;
        for p in crate::dtmf::rfc4733_packets(digit, 60).unwrap() {
            let is_end = p.payload[1] & 0x80 != 0;
            let pkt = rtp_packet(101, seq, ts, 9, p.marker, &p.payload);
            // End packets repeat the sequence number, as sip-tester's pcaps do.
            if !is_end {
                seq = seq.wrapping_add(1);
            }
            peer.send_to(&pkt, session.local_addr()).await.unwrap();
        }
        seq = seq.wrapping_add(1);
    }
    let mut got = String::new();
    for _ in 0..16 {
        match next_other_event(&mut events).await.kind {
            MediaEventKind::Dtmf(d) => {
                assert_eq!((d.source, d.duration_ms), (DtmfSource::Rfc4733, 60));
                got.push(d.digit);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, "0123456789*#ABCD");
    // No digit twice (FirstPacketReceived travels through the engine task and may come last).
    while let Ok(Some(extra)) = timeout(Duration::from_millis(200), events.recv()).await {
        assert!(
            matches!(extra.kind, MediaEventKind::FirstPacketReceived { .. }),
            "{extra:?}"
        );
    }
}

#[tokio::test]
async fn inband_digit_in_a_pcma_stream_and_rtp_timeout() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 42_600..=42_699).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    session.set_rtp_timeout(Some(Duration::from_millis(300)));
    // 100 ms of '#' (941 + 1477 Hz) between silences, 20 ms PCMA packets.
    let mut pcm = vec![0i16; 800];
    pcm.extend((0..800).map(|i| {
        let t = f64::from(i) / 8000.0;
        (6000.0 * (2.0 * std::f64::consts::PI * 941.0 * t).sin()
            + 6000.0 * (2.0 * std::f64::consts::PI * 1477.0 * t).sin()) as i16
    }));
    pcm.extend(vec![0i16; 1600]);
    let alaw = Codec::Pcma.encode(&pcm);
    for (k, frame) in alaw.chunks(160).enumerate() {
        let pkt = rtp_packet(8, k as u16, 160 * k as u32, 5, k == 0, frame);
        peer.send_to(&pkt, session.local_addr()).await.unwrap();
    }
    let ev = next_other_event(&mut events).await;
    match ev.kind {
        MediaEventKind::Dtmf(d) => assert_eq!((d.digit, d.source), ('#', DtmfSource::Inband)),
        other => panic!("unexpected {other:?}"),
    }
    // Then silence on the wire: the dead-call event, once.
    let ev = next_other_event(&mut events).await;
    assert_eq!(ev.kind, MediaEventKind::RtpTimeout);
    assert!(timeout(Duration::from_millis(500), events.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn send_dtmf_goes_out_as_rfc4733() {
    let (engine, _events) = MediaEngine::start(LOCALHOST, 42_700..=42_799).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    session.set_telephone_event(Some(96));
    session.send_dtmf('9', 80);
    let mut rx = crate::dtmf::Rfc4733Receiver::new();
    for _ in 0..5 {
        let (bytes, _) = recv_rtp(&peer).await;
        let p = rtp::parse(&bytes).unwrap();
        assert_eq!(p.payload_type, 96);
        rx.handle_packet(Instant::now(), p.timestamp, p.payload);
    }
    let d = rx.poll_event().unwrap();
    assert_eq!((d.digit, d.duration_ms), ('9', 80));
}

#[tokio::test]
async fn bridge_relays_audio_both_ways_with_transcoding_and_digits() {
    let (engine, mut events) =
        MediaEngine::start_with_shards(LOCALHOST, 42_800..=42_899, 2).unwrap();
    let caller_leg = engine.open_session().unwrap();
    let agent_leg = engine.open_session().unwrap();
    // Round-robin: the legs live on different pacing shards, so the relay crosses threads.
    assert_ne!(caller_leg.shard, agent_leg.shard);
    let caller = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let agent = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    caller_leg.set_remote(caller.local_addr().unwrap(), Codec::Pcma, 8);
    caller_leg.set_telephone_event(Some(101));
    agent_leg.set_remote(agent.local_addr().unwrap(), Codec::Pcmu, 0);
    agent_leg.set_telephone_event(Some(96));
    assert!(matches!(
        engine.bridge(caller_leg.id(), caller_leg.id()),
        Err(MediaError::BridgeToSelf(_))
    ));
    assert!(matches!(
        engine.bridge(caller_leg.id(), SessionId(9999)),
        Err(MediaError::UnknownSession(9999))
    ));
    engine.bridge(caller_leg.id(), agent_leg.id()).unwrap();
    // Let the receive tasks learn they are bridged.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let pcm: Vec<i16> = (0..160)
        .map(|i| ((f64::from(i) * 0.5).sin() * 8000.0) as i16)
        .collect();
    // Caller -> agent: PCMA in, PCMU out, agent leg's own SSRC and numbering.
    for k in 0..5u16 {
        let pkt = rtp_packet(
            8,
            60_000 + k,
            160 * u32::from(k),
            0xCA11,
            k == 0,
            &Codec::Pcma.encode(&pcm),
        );
        caller.send_to(&pkt, caller_leg.local_addr()).await.unwrap();
    }
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let (bytes, from) = recv_rtp(&agent).await;
        assert_eq!(from, agent_leg.local_addr());
        let p = rtp::parse(&bytes).unwrap();
        assert_eq!(p.payload_type, 0);
        assert_ne!(p.ssrc, 0xCA11);
        assert!(rms(&Codec::Pcmu.decode(p.payload)) > 4000.0);
        seqs.push(p.sequence);
    }
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1));
    }
    // Agent -> caller: PCMU in, PCMA out.
    for k in 0..5u16 {
        let pkt = rtp_packet(
            0,
            k,
            160 * u32::from(k),
            0xA6E7,
            k == 0,
            &Codec::Pcmu.encode(&pcm),
        );
        agent.send_to(&pkt, agent_leg.local_addr()).await.unwrap();
    }
    for _ in 0..5 {
        let (bytes, _) = recv_rtp(&caller).await;
        let p = rtp::parse(&bytes).unwrap();
        assert_eq!(p.payload_type, 8);
        assert!(rms(&Codec::Pcma.decode(p.payload)) > 4000.0);
    }
    // A digit from the caller: forwarded to the agent under PT 96, and reported.
    for p in crate::dtmf::rfc4733_packets('4', 60).unwrap() {
        let pkt = rtp_packet(101, 61_000, 99_999, 0xCA11, p.marker, &p.payload);
        caller.send_to(&pkt, caller_leg.local_addr()).await.unwrap();
    }
    let (bytes, _) = recv_rtp(&agent).await;
    let p = rtp::parse(&bytes).unwrap();
    assert_eq!((p.payload_type, p.payload[0]), (96, 4));
    loop {
        let ev = next_event(&mut events).await;
        if let MediaEventKind::Dtmf(d) = ev.kind {
            assert_eq!((ev.session, d.digit), (caller_leg.id(), '4'));
            break;
        }
    }
    // Unbridged: nothing relayed any more.
    engine.unbridge(agent_leg.id());
    tokio::time::sleep(Duration::from_millis(50)).await;
    while timeout(Duration::from_millis(30), agent.recv_from(&mut [0u8; 256]))
        .await
        .is_ok()
    {}
    let pkt = rtp_packet(8, 7, 7, 0xCA11, false, &Codec::Pcma.encode(&pcm));
    caller.send_to(&pkt, caller_leg.local_addr()).await.unwrap();
    assert!(
        timeout(Duration::from_millis(150), agent.recv_from(&mut [0u8; 256]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn g722_session_sends_payload_type_9_with_energy() {
    let (engine, _events) = MediaEngine::start(LOCALHOST, 42_900..=42_949).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::G722, 9);
    session.play(vec![tone(200)], false);
    let mut decoder = crate::g722::Decoder::new();
    let mut pcm = Vec::new();
    for _ in 0..8 {
        let (bytes, _) = recv_rtp(&peer).await;
        let p = rtp::parse(&bytes).unwrap();
        assert_eq!((p.payload_type, p.payload.len()), (9, 160));
        decoder.decode(p.payload, &mut pcm);
    }
    assert_eq!(pcm.len(), 8 * 320, "16 kHz audio: 320 samples per 20 ms");
    assert!(rms(&pcm[640..]) > 3000.0, "rms {}", rms(&pcm[640..]));
}

#[tokio::test]
async fn rtcp_bye_both_ways_and_garbage_is_ignored() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 42_950..=42_999).unwrap();
    let session = engine.open_session().unwrap();
    assert_eq!(session.local_rtcp_addr().port(), session.local_port() + 1);
    // The peer's RTP port is even, its RTCP the next one (RFC 3550 §11).
    let (peer_rtp, peer_rtcp) = loop {
        let rtp_sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let port = rtp_sock.local_addr().unwrap().port();
        if let Ok(rtcp_sock) = UdpSocket::bind((LOCALHOST, port.wrapping_add(1))).await {
            break (rtp_sock, rtcp_sock);
        }
    };
    session.set_remote(peer_rtp.local_addr().unwrap(), Codec::Pcma, 8);
    session.play(vec![tone(2000)], true);
    let (bytes, _) = recv_rtp(&peer_rtp).await;
    let our_ssrc = rtp::parse(&bytes).unwrap().ssrc;

    // Garbage, then a BYE from the peer: reported once, nothing else breaks.
    let rtcp_addr = session.local_rtcp_addr();
    peer_rtcp.send_to(&[0xFF; 7], rtcp_addr).await.unwrap();
    peer_rtcp
        .send_to(&[0x80, 201, 0, 9], rtcp_addr)
        .await
        .unwrap();
    let mut bye = Vec::new();
    crate::rtcp::write_report(&mut bye, 0x5EE5, None, &[], "peer");
    crate::rtcp::write_bye(&mut bye, 0x5EE5, Some("raccroché"));
    peer_rtcp.send_to(&bye, rtcp_addr).await.unwrap();
    loop {
        let ev = next_event(&mut events).await;
        if let MediaEventKind::RtcpBye { reason } = ev.kind {
            assert_eq!(reason.as_deref(), Some("raccroché"));
            break;
        }
    }
    // RTP still flows after the garbage.
    recv_rtp(&peer_rtp).await;

    // Closing sends our report (an SR: we were sending) and a BYE to the peer's RTCP port,
    // which is where its RTCP came from (symmetric RTCP).
    session.close();
    let mut buf = [0u8; 1500];
    // A periodic report may come first (1.25-3.75 s after the start): skip it.
    let packets = loop {
        let (len, from) = timeout(WAIT, peer_rtcp.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, rtcp_addr);
        let packets = crate::rtcp::parse_compound(&buf[..len]).unwrap();
        if packets
            .iter()
            .any(|p| matches!(p, crate::rtcp::RtcpPacket::Bye { .. }))
        {
            break packets;
        }
    };
    match &packets[0] {
        crate::rtcp::RtcpPacket::SenderReport { ssrc, info, .. } => {
            assert_eq!(*ssrc, our_ssrc);
            // Payload octets only (RFC 3550 §6.4.1): 160 per G.711 packet.
            assert!(info.packets >= 2 && info.octets % 160 == 0, "{info:?}");
        }
        other => panic!("expected an SR first, got {other:?}"),
    }
    assert!(packets.iter().any(|p| matches!(
        p,
        crate::rtcp::RtcpPacket::Bye { sources, .. } if sources == &vec![our_ssrc]
    )));
}

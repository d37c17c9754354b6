use std::net::Ipv4Addr;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::*;
use crate::record::{RecordEnd, RecordOptions};
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
    // Effective for every packet that arrives once it returns: no settling time.
    engine.bridge(caller_leg.id(), agent_leg.id()).unwrap();

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

// --- Message recording -----------------------------------------------------------------

fn sine(freq: f64, ms: usize, amplitude: f64) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// Sends `payload` as 20 ms RTP packets (160 octets), paced in real time like a phone.
async fn send_paced(peer: &UdpSocket, to: SocketAddr, pt: u8, ssrc: u32, ts0: u32, payload: &[u8]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (k, frame) in payload.chunks(160).enumerate() {
        tick.tick().await;
        let pkt = rtp_packet(pt, k as u16, ts0 + 160 * k as u32, ssrc, k == 0, frame);
        peer.send_to(&pkt, to).await.unwrap();
    }
}

/// |X(f)|² of the samples (Goertzel).
fn power_at(samples: &[i16], freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// The next RecordFinished/RecordFailed, skipping other events.
async fn record_end(rx: &mut UnboundedReceiver<MediaEvent>) -> MediaEventKind {
    loop {
        let ev = next_event(rx).await;
        if matches!(
            ev.kind,
            MediaEventKind::RecordFinished { .. } | MediaEventKind::RecordFailed { .. }
        ) {
            return ev.kind;
        }
    }
}

/// Reads a recording back, checking the format.
fn read_wav(path: &std::path::Path) -> Vec<i16> {
    let reader = hound::WavReader::open(path).expect("a complete WAV file");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    reader.into_samples::<i16>().map(|s| s.unwrap()).collect()
}

#[tokio::test]
async fn records_the_callers_tone_until_max() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 43_000..=43_049).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.wav");
    let started = Instant::now();
    session.record(path.clone(), Duration::from_millis(1500));
    // 2 s of 440 Hz as PCMA, more than the recording takes.
    let alaw = Codec::Pcma.encode(&sine(440.0, 2000, 8000.0));
    let to = session.local_addr();
    let sender = tokio::spawn(async move { send_paced(&peer, to, 8, 0x440, 1234, &alaw).await });
    let end = record_end(&mut events).await;
    let elapsed = started.elapsed();
    let MediaEventKind::RecordFinished {
        path: got,
        duration,
        reason,
    } = end
    else {
        panic!("{end:?}");
    };
    assert_eq!(
        (got.as_path(), reason),
        (path.as_path(), RecordEnd::MaxReached)
    );
    assert!(
        (Duration::from_millis(1450)..Duration::from_millis(2500)).contains(&elapsed),
        "ended after {elapsed:?}"
    );
    assert!(
        (Duration::from_millis(1300)..=Duration::from_millis(1500)).contains(&duration),
        "{duration:?}"
    );
    // Renamed into place: no temporary file left.
    assert!(!recording::tmp_path(&path).exists());
    let samples = read_wav(&path);
    assert_eq!(
        crate::record::samples_duration(samples.len() as u64),
        duration
    );
    let tone = power_at(&samples, 440.0);
    for other in [220.0, 330.0, 550.0, 660.0, 880.0, 1000.0, 2000.0] {
        assert!(tone > 100.0 * power_at(&samples, other), "{other} Hz");
    }
    assert!(rms(&samples) > 4000.0, "rms {}", rms(&samples));
    sender.await.unwrap();
}

#[tokio::test]
async fn rfc4733_hash_ends_the_recording_and_is_not_recorded() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 43_050..=43_099).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    session.set_telephone_event(Some(101));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diese.wav");
    session.record(path.clone(), Duration::from_secs(30));
    let to = session.local_addr();
    // 500 ms of voice, then `#` as telephone-events on the same timeline (the phone mutes
    // its audio meanwhile, as most do).
    let alaw = Codec::Pcma.encode(&sine(440.0, 500, 8000.0));
    send_paced(&peer, to, 8, 0xCA11, 0, &alaw).await;
    for (k, p) in crate::dtmf::rfc4733_packets('#', 100)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let pkt = rtp_packet(101, 25 + k as u16, 4000, 0xCA11, p.marker, &p.payload);
        peer.send_to(&pkt, to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The digit is still reported, before the end of the recording.
    let mut saw_digit = false;
    let end = loop {
        let ev = next_event(&mut events).await;
        match ev.kind {
            MediaEventKind::Dtmf(d) => {
                assert_eq!(d.digit, '#');
                saw_digit = true;
            }
            k @ (MediaEventKind::RecordFinished { .. } | MediaEventKind::RecordFailed { .. }) => {
                break k
            }
            _ => {}
        }
    };
    assert!(saw_digit);
    let MediaEventKind::RecordFinished {
        duration, reason, ..
    } = end
    else {
        panic!("{end:?}");
    };
    assert_eq!(reason, RecordEnd::Key);
    assert_eq!(duration, Duration::from_millis(500));
    let samples = read_wav(&path);
    assert_eq!(samples.len(), 4000);
}

#[tokio::test]
async fn inband_hash_ends_the_recording_and_its_tone_is_cut() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 43_100..=43_149).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcma, 8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diese-inband.wav");
    session.record(path.clone(), Duration::from_secs(30));
    // 500 ms of voice, 120 ms of '#' (941 + 1477 Hz), then silence.
    let mut pcm = sine(440.0, 500, 8000.0);
    let low = sine(941.0, 120, 6000.0);
    let high = sine(1477.0, 120, 6000.0);
    pcm.extend(low.iter().zip(&high).map(|(a, b)| a + b));
    pcm.extend(vec![0i16; 8 * 300]);
    let alaw = Codec::Pcma.encode(&pcm);
    let to = session.local_addr();
    let sender = tokio::spawn(async move { send_paced(&peer, to, 8, 0xCA11, 0, &alaw).await });
    let end = record_end(&mut events).await;
    let MediaEventKind::RecordFinished {
        duration, reason, ..
    } = end
    else {
        panic!("{end:?}");
    };
    assert_eq!(reason, RecordEnd::Key);
    assert!(
        (Duration::from_millis(380)..=Duration::from_millis(500)).contains(&duration),
        "{duration:?}"
    );
    let samples = read_wav(&path);
    assert_eq!(
        crate::record::samples_duration(samples.len() as u64),
        duration
    );
    // No trace of the key's tones.
    let voice = power_at(&samples, 440.0);
    for f in [941.0, 1477.0] {
        assert!(power_at(&samples, f) * 1000.0 < voice, "{f} Hz recorded");
    }
    sender.await.unwrap();
}

#[tokio::test]
async fn silence_after_speech_ends_the_recording() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 43_150..=43_199).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::Pcmu, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    // The default is 5 s (pinned with virtual time in `record::tests`); 400 ms here.
    let options = RecordOptions {
        silence: Some(Duration::from_millis(400)),
        ..RecordOptions::new(Duration::from_secs(30))
    };
    let started = Instant::now();
    session.record_with(path.clone(), options);
    // Quiet line noise first (not speech), 300 ms of voice, then silence on the wire.
    let mut pcm: Vec<i16> = (0..8 * 300)
        .map(|i| if i % 2 == 0 { 40 } else { -40 })
        .collect();
    pcm.extend(sine(440.0, 300, 8000.0));
    pcm.extend(vec![0i16; 8 * 2000]);
    let ulaw = Codec::Pcmu.encode(&pcm);
    let to = session.local_addr();
    let sender = tokio::spawn(async move { send_paced(&peer, to, 0, 0x51, 0, &ulaw).await });
    let end = record_end(&mut events).await;
    let elapsed = started.elapsed();
    let MediaEventKind::RecordFinished {
        duration, reason, ..
    } = end
    else {
        panic!("{end:?}");
    };
    assert_eq!(reason, RecordEnd::Silence);
    // 300 ms noise + 300 ms voice + 400 ms silence.
    assert!(
        (Duration::from_millis(950)..Duration::from_millis(2000)).contains(&elapsed),
        "{elapsed:?}"
    );
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(1100)).contains(&duration),
        "{duration:?}"
    );
    assert_eq!(read_wav(&path).len() as u128, duration.as_micros() / 125);
    sender.abort();
}

#[tokio::test]
async fn stop_close_replace_and_failures_report_once_each() {
    let (engine, mut events) = MediaEngine::start(LOCALHOST, 43_200..=43_249).unwrap();
    let session = engine.open_session().unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    session.set_remote(peer.local_addr().unwrap(), Codec::G722, 9);
    let dir = tempfile::tempdir().unwrap();
    let to = session.local_addr();

    // G.722 audio is recorded as its 8 kHz lower band; stop_record keeps it.
    let first = dir.path().join("g722.wav");
    session.record(first.clone(), Duration::from_secs(30));
    let g722 = Codec::G722.encode(&sine(440.0, 400, 8000.0));
    send_paced(&peer, to, 9, 0x722, 0, &g722).await;
    // Every packet sent before the stop order is in the recording, however soon it comes.
    session.stop_record();
    let MediaEventKind::RecordFinished {
        duration, reason, ..
    } = record_end(&mut events).await
    else {
        panic!("not finished");
    };
    assert_eq!(
        (reason, duration),
        (RecordEnd::Stopped, Duration::from_millis(400))
    );
    let samples = read_wav(&first);
    assert!(power_at(&samples[400..], 440.0) > 100.0 * power_at(&samples[400..], 1000.0));
    // Nothing more when nothing records.
    session.stop_record();

    // A new recording replaces the one in progress, which ends as Stopped.
    let a = dir.path().join("a.wav");
    let b = dir.path().join("b.wav");
    session.record(a.clone(), Duration::from_secs(30));
    session.record(b.clone(), Duration::from_secs(30));
    match record_end(&mut events).await {
        MediaEventKind::RecordFinished { path, reason, .. } => {
            assert_eq!((path, reason), (a, RecordEnd::Stopped))
        }
        other => panic!("{other:?}"),
    }
    // Closing the session ends it as well, with the file in place.
    session.close();
    match record_end(&mut events).await {
        MediaEventKind::RecordFinished { path, reason, .. } => {
            assert_eq!((&path, reason), (&b, RecordEnd::Stopped));
            assert!(read_wav(&path).is_empty());
        }
        other => panic!("{other:?}"),
    }
    // On a closed session, and into a missing directory: RecordFailed, nothing left behind.
    session.record(dir.path().join("late.wav"), Duration::from_secs(1));
    assert!(matches!(
        record_end(&mut events).await,
        MediaEventKind::RecordFailed { .. }
    ));
    let other = engine.open_session().unwrap();
    let missing = dir.path().join("nope").join("m.wav");
    other.record(missing.clone(), Duration::from_secs(1));
    match record_end(&mut events).await {
        MediaEventKind::RecordFailed { path, error } => {
            assert_eq!(path, missing);
            assert!(error.contains("cannot create"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!recording::tmp_path(&missing).exists());
}

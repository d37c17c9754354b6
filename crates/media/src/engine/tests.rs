use std::net::Ipv4Addr;

use tokio::time::timeout;

use super::*;

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

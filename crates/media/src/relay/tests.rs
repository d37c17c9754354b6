use super::*;

fn pkt(seq: u16, ts: u32) -> RelayPacket {
    RelayPacket {
        marker: false,
        payload_type: 8,
        sequence: seq,
        timestamp: ts,
        ssrc: 42,
        payload: vec![seq as u8; 4],
    }
}

fn drain(jb: &mut JitterBuffer, now: Instant) -> Vec<u16> {
    std::iter::from_fn(|| jb.poll(now))
        .map(|p| p.sequence)
        .collect()
}

#[test]
fn in_order_packets_leave_at_once_across_wraparound() {
    let t = Instant::now();
    let mut jb = JitterBuffer::new();
    let mut out = Vec::new();
    for k in 0..10u16 {
        let seq = 65_530u16.wrapping_add(k);
        jb.push(t, pkt(seq, 0));
        out.extend(drain(&mut jb, t));
    }
    let expected: Vec<u16> = (0..10u16).map(|k| 65_530u16.wrapping_add(k)).collect();
    assert_eq!(out, expected);
    assert!(jb.is_empty());
}

#[test]
fn reorders_drops_duplicates_and_late_packets() {
    let t = Instant::now();
    let mut jb = JitterBuffer::new();
    jb.push(t, pkt(65_534, 0));
    assert_eq!(drain(&mut jb, t), [65_534]);
    // 65535 is late; 0 and 1 arrive first and wait.
    jb.push(t, pkt(1, 0));
    jb.push(t, pkt(0, 0));
    jb.push(t, pkt(0, 0)); // duplicate
    assert!(drain(&mut jb, t).is_empty());
    assert_eq!(jb.poll_timeout(), Some(t + JITTER_DELAY));
    jb.push(t + Duration::from_millis(10), pkt(65_535, 0));
    assert_eq!(drain(&mut jb, t), [65_535, 0, 1]);
    assert_eq!(jb.dropped, 1);
    // Very late (already released) and duplicate of a released one: dropped.
    jb.push(t, pkt(65_535, 0));
    jb.push(t, pkt(0, 0));
    assert!(drain(&mut jb, t).is_empty());
    assert_eq!(jb.dropped, 3);
}

#[test]
fn a_lost_packet_is_skipped_after_the_delay_or_when_full() {
    let t = Instant::now();
    let mut jb = JitterBuffer::new();
    jb.push(t, pkt(10, 0));
    drain(&mut jb, t);
    jb.push(t, pkt(12, 0)); // 11 lost
    assert!(drain(&mut jb, t + Duration::from_millis(59)).is_empty());
    assert_eq!(drain(&mut jb, t + JITTER_DELAY), [12]);
    // A burst after a gap: released once more than JITTER_PACKETS wait.
    for s in 14..17 {
        jb.push(t, pkt(s, 0));
    }
    assert!(drain(&mut jb, t).is_empty());
    jb.push(t, pkt(17, 0));
    assert_eq!(drain(&mut jb, t), [14, 15, 16, 17]);
    // 13 now is too late.
    jb.push(t, pkt(13, 0));
    assert!(drain(&mut jb, t).is_empty());
}

#[test]
fn a_restarted_or_new_source_is_followed() {
    let t = Instant::now();
    let mut jb = JitterBuffer::new();
    jb.push(t, pkt(100, 0));
    drain(&mut jb, t);
    jb.push(t, pkt(40_000, 0)); // jump: sender restarted
    assert_eq!(drain(&mut jb, t), [40_000]);
    let mut other = pkt(5, 0);
    other.ssrc = 43;
    jb.push(t, other);
    assert_eq!(drain(&mut jb, t), [5]);
}

#[test]
fn rewriter_is_continuous_across_wraparound_and_switches() {
    // Leg next seq 65535, clock at 0xFFFF_FF60: both wrap during the relay.
    let mut rw = Rewriter::new();
    let first = rw.rewrite(&pkt(1000, 5000), 65_535, 0xFFFF_FF60);
    assert_eq!(first, (65_535, 0xFFFF_FF60, true));
    let second = rw.rewrite(&pkt(1001, 5160), 0, 0);
    assert_eq!(second, (0, 0, false));
    // A lost packet (1002) shows as a gap; timestamps follow the source.
    let fourth = rw.rewrite(&pkt(1003, 5480), 1, 160);
    assert_eq!(fourth, (2, 320, false));
    // Source sequence and timestamp wrap too.
    let mut rw = Rewriter::new();
    assert_eq!(
        rw.rewrite(&pkt(65_535, u32::MAX - 159), 7, 1000),
        (7, 1000, true)
    );
    assert_eq!(rw.rewrite(&pkt(0, 0), 8, 0), (8, 1160, false));
    // A playback on the leg in between: resync, marker, continuous with the leg.
    rw.resync();
    assert_eq!(rw.rewrite(&pkt(50, 8001), 300, 90_000), (300, 90_000, true));
    assert_eq!(rw.rewrite(&pkt(51, 8161), 301, 0), (301, 90_160, false));
    // New SSRC: resync by itself.
    let mut p = pkt(9, 9);
    p.ssrc = 1;
    assert_eq!(rw.rewrite(&p, 302, 100_000), (302, 100_000, true));
}

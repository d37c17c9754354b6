use super::*;
use crate::rtp;
use std::collections::HashMap;

const S: StreamId = StreamId(1);

fn config() -> StreamConfig {
    StreamConfig {
        ssrc: 0xCAFE_F00D,
        initial_seq: 65_530, // wraps during the tests
        initial_ts: u32::MAX - 1000,
        codec: Codec::Pcma,
        payload_type: 8,
    }
}

fn tone(name: &str, ms: usize) -> Arc<Prompt> {
    let pcm = (0..ms * 8)
        .map(|i| ((i as f64 * 0.785).sin() * 8000.0) as i16)
        .collect();
    Arc::new(Prompt::from_pcm(name, pcm))
}

#[derive(Debug)]
struct Sent {
    at: Instant,
    stream: StreamId,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    pt: u8,
    payload: Vec<u8>,
}

/// Steps virtual time from deadline to deadline until `until`, at most `max_steps` wakes.
fn run(p: &mut Pacer, until: Instant, max_steps: usize) -> (Vec<Sent>, Vec<(Instant, PacerEvent)>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut steps = 0;
    while let Some(at) = p.poll_timeout() {
        if at > until {
            break;
        }
        steps += 1;
        assert!(steps <= max_steps, "more than {max_steps} wakes");
        p.handle_timeout(at);
        drain(p, at, &mut sent, &mut events);
    }
    (sent, events)
}

fn drain(
    p: &mut Pacer,
    at: Instant,
    sent: &mut Vec<Sent>,
    events: &mut Vec<(Instant, PacerEvent)>,
) {
    while let Some(t) = p.poll_transmit() {
        let r = rtp::parse(&t.packet).unwrap();
        sent.push(Sent {
            at,
            stream: t.stream,
            marker: r.marker,
            seq: r.sequence,
            ts: r.timestamp,
            ssrc: r.ssrc,
            pt: r.payload_type,
            payload: r.payload.to_vec(),
        });
    }
    while let Some(e) = p.poll_event() {
        events.push((at, e));
    }
}

#[test]
fn one_second_prompt_is_fifty_paced_packets_then_finished_once() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    assert_eq!(p.poll_timeout(), None, "silent stream has no deadline");
    let start = t0 + Duration::from_millis(7);
    let prompt = tone("one", 1000);
    let play = p.play(start, S, vec![prompt.clone()], false);
    let (sent, events) = run(&mut p, start + Duration::from_secs(5), 200);

    assert_eq!(sent.len(), 50);
    // Timestamp clock ran for 7 ms (56 units) before the talkspurt.
    let ts0 = config().initial_ts.wrapping_add(56);
    for (n, s) in sent.iter().enumerate() {
        assert_eq!(s.at, start + FRAME * n as u32, "deadline of frame {n}");
        assert_eq!(s.seq, config().initial_seq.wrapping_add(n as u16));
        assert_eq!(s.ts, ts0.wrapping_add(160 * n as u32));
        assert_eq!(s.marker, n == 0, "marker on frame {n}");
        assert_eq!((s.ssrc, s.pt, s.stream), (0xCAFE_F00D, 8, S));
        assert_eq!(s.payload, prompt.frame(Codec::Pcma, n).unwrap());
    }
    assert_eq!(
        events,
        vec![(
            start + Duration::from_secs(1),
            PacerEvent::PlaybackFinished { stream: S, play }
        )]
    );
    assert_eq!(p.poll_timeout(), None);
    assert!(!p.is_playing(S));
}

#[test]
fn looped_playlist_keeps_going_across_items() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let a = tone("a", 60);
    let b = tone("b", 40);
    p.play(t0, S, vec![a.clone(), b.clone()], true);
    let (sent, events) = run(&mut p, t0 + Duration::from_secs(10), 1000);
    assert_eq!(sent.len(), 501);
    assert!(events.is_empty());
    let cycle: Vec<&[u8]> = a.frames(Codec::Pcma).chain(b.frames(Codec::Pcma)).collect();
    for (n, s) in sent.iter().enumerate() {
        assert_eq!(s.payload, cycle[n % 5], "frame {n}");
        assert_eq!(s.marker, n == 0);
    }
    assert!(p.is_playing(S));
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(10_020)));
}

#[test]
fn late_wake_sends_the_missed_frames_at_once() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    p.play(t0, S, vec![tone("x", 1000)], false);
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    p.handle_timeout(t0);
    drain(&mut p, t0, &mut sent, &mut events);
    assert_eq!(sent.len(), 1);
    assert_eq!(p.poll_timeout(), Some(t0 + FRAME));
    // The edge wakes 65 ms late: frames 1..=4 (20, 40, 60, 80 ms) are all due.
    let late = t0 + FRAME + Duration::from_millis(65);
    p.handle_timeout(late);
    drain(&mut p, late, &mut sent, &mut events);
    assert_eq!(sent.len(), 5);
    for (n, s) in sent.iter().enumerate() {
        assert_eq!(s.ts, sent[0].ts.wrapping_add(160 * n as u32));
        assert_eq!(s.seq, sent[0].seq.wrapping_add(n as u16));
    }
    // Back on the grid: next deadline is start + 5 * 20 ms, not late + 20 ms.
    assert_eq!(p.poll_timeout(), Some(t0 + FRAME * 5));
}

#[test]
fn overload_sends_no_catch_up_bursts_but_a_single_stall_does() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    p.play(t0, S, vec![tone("x", 5000)], true);
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    let mut pass = |p: &mut Pacer, at_ms: u64, sent: &mut Vec<Sent>| {
        let before = sent.len();
        let now = t0 + Duration::from_millis(at_ms);
        p.handle_timeout(now);
        drain(p, now, sent, &mut events);
        sent[before..].iter().map(|s| s.ts).collect::<Vec<u32>>()
    };
    let ts0 = pass(&mut p, 0, &mut sent)[0];
    let frames =
        |ts: Vec<u32>| -> Vec<u32> { ts.iter().map(|t| t.wrapping_sub(ts0) / 160).collect() };
    // On time, then a 100 ms stall: frames 1..=5 were missed and all go out.
    assert_eq!(frames(pass(&mut p, 20, &mut sent)), vec![1]);
    assert_eq!(frames(pass(&mut p, 120, &mut sent)), vec![2, 3, 4, 5, 6]);
    // Late again right after: overload. Only the current frame, the others are skipped.
    assert_eq!(frames(pass(&mut p, 240, &mut sent)), vec![12]);
    assert_eq!(frames(pass(&mut p, 330, &mut sent)), vec![16]);
    // Back on time, then a new stall: catching up is allowed again.
    assert_eq!(frames(pass(&mut p, 340, &mut sent)), vec![17]);
    assert_eq!(frames(pass(&mut p, 420, &mut sent)), vec![18, 19, 20, 21]);
    // Sequence numbers never jump: skipped frames were never sent (RFC 3550 §5.1).
    for w in sent.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
}

#[test]
fn very_late_wake_is_bounded_and_skips_ahead_keeping_timestamps() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let prompt = tone("x", 2000);
    p.play(t0, S, vec![prompt.clone()], false);
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    p.handle_timeout(t0);
    drain(&mut p, t0, &mut sent, &mut events);
    // 500 ms stall: frames 1..=25 are due, only the last MAX_CATCH_UP go out.
    let late = t0 + Duration::from_millis(500);
    p.handle_timeout(late);
    drain(&mut p, late, &mut sent, &mut events);
    assert_eq!(sent.len(), 1 + MAX_CATCH_UP as usize);
    let first_after = &sent[1];
    assert_eq!(
        first_after.seq,
        sent[0].seq.wrapping_add(1),
        "no sequence gap"
    );
    assert_eq!(
        first_after.ts,
        sent[0].ts.wrapping_add(160 * 21),
        "timestamp = wall clock"
    );
    assert_eq!(first_after.payload, prompt.frame(Codec::Pcma, 21).unwrap());
    assert!(!first_after.marker);
    assert_eq!(sent.last().unwrap().ts, sent[0].ts.wrapping_add(160 * 25));
    assert_eq!(p.poll_timeout(), Some(t0 + FRAME * 26));
}

#[test]
fn stop_stops_and_a_new_play_continues_timestamps_with_a_marker() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let first = p.play(t0, S, vec![tone("x", 1000)], true);
    let (sent, _) = run(&mut p, t0 + Duration::from_millis(100), 100);
    assert_eq!(sent.len(), 6);
    p.stop(t0 + Duration::from_millis(105), S);
    assert_eq!(
        p.poll_event(),
        Some(PacerEvent::PlaybackStopped {
            stream: S,
            play: first
        })
    );
    assert_eq!(p.poll_timeout(), None);
    let (more, _) = run(&mut p, t0 + Duration::from_secs(2), 100);
    assert!(more.is_empty(), "sent after stop");

    // Silence for ~1 s, then a new talkspurt: marker set, timestamp advanced with time.
    let restart = t0 + Duration::from_millis(1105);
    p.play(restart, S, vec![tone("y", 40)], false);
    let (again, _) = run(&mut p, restart + Duration::from_secs(1), 100);
    assert_eq!(again.len(), 2);
    assert!(again[0].marker && !again[1].marker);
    assert_eq!(again[0].seq, sent[5].seq.wrapping_add(1));
    assert_eq!(again[0].ts, sent[0].ts.wrapping_add(1105 * 8));
}

#[test]
fn replacing_a_play_reports_it_stopped_and_never_reuses_timestamps() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let first = p.play(t0, S, vec![tone("x", 1000)], false);
    p.handle_timeout(t0);
    let a = rtp::parse(&p.poll_transmit().unwrap().packet)
        .unwrap()
        .timestamp;
    // Immediately replaced, 1 ms later: the new talkspurt must not overlap frame 0.
    let second = p.play(t0 + Duration::from_millis(1), S, vec![tone("y", 20)], false);
    assert_eq!(
        p.poll_event(),
        Some(PacerEvent::PlaybackStopped {
            stream: S,
            play: first
        })
    );
    let (sent, events) = run(&mut p, t0 + Duration::from_secs(1), 10);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ts, a.wrapping_add(160));
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].1,
        PacerEvent::PlaybackFinished {
            stream: S,
            play: second
        }
    );
}

#[test]
fn empty_playlist_finishes_at_once_even_looped() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let play = p.play(t0, S, vec![], true);
    let (sent, events) = run(&mut p, t0 + Duration::from_secs(1), 5);
    assert!(sent.is_empty());
    assert_eq!(
        events,
        vec![(t0, PacerEvent::PlaybackFinished { stream: S, play })]
    );
}

#[test]
fn codec_change_applies_to_the_next_frame() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let prompt = tone("x", 100);
    p.play(t0, S, vec![prompt.clone()], false);
    let (a, _) = run(&mut p, t0, 2);
    p.set_codec(S, Codec::Pcmu, 0);
    let (b, _) = run(&mut p, t0 + FRAME, 2);
    assert_eq!((a[0].pt, b[0].pt), (8, 0));
    assert_eq!(b[0].payload, prompt.frame(Codec::Pcmu, 1).unwrap());
}

#[test]
fn remove_stream_reports_stop_and_unknown_ids_are_ignored() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t0, S, config());
    let play = p.play(t0, S, vec![tone("x", 100)], false);
    p.remove_stream(S);
    assert_eq!(
        p.poll_event(),
        Some(PacerEvent::PlaybackStopped { stream: S, play })
    );
    assert_eq!(p.poll_timeout(), None);
    p.play(t0, StreamId(99), vec![tone("x", 100)], false);
    p.stop(t0, StreamId(99));
    p.set_codec(StreamId(99), Codec::Pcmu, 0);
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(p.stream_count(), 0);
}

#[test]
fn thousand_streams_are_served_in_deadline_order_on_their_own_grid() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    let prompt = tone("x", 200);
    let mut starts = HashMap::new();
    for i in 0..1000u64 {
        let id = StreamId(i);
        // Deterministic, scattered start offsets within 20 ms, inserted in shuffled order.
        let start = t0 + Duration::from_micros((i * 7919) % 20_000);
        p.add_stream(
            t0,
            id,
            StreamConfig {
                ssrc: i as u32,
                ..config()
            },
        );
        p.play(start, id, vec![prompt.clone()], false);
        starts.insert(id, start);
    }
    // One in ten is stopped half-way: their stale timers must not show in poll_timeout.
    // Every packet going out exactly at its own start + n*20ms proves that poll_timeout was
    // never later than the earliest live deadline.
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut last = t0;
    let mut steps = 0;
    while let Some(at) = p.poll_timeout() {
        steps += 1;
        assert!(steps < 20_000, "runaway");
        assert!(at >= last, "poll_timeout went back in time");
        last = at;
        let before = sent.len() + events.len();
        p.handle_timeout(at);
        drain(&mut p, at, &mut sent, &mut events);
        // No spurious wake: a deadline from a stopped stream must never surface.
        assert!(
            sent.len() + events.len() > before,
            "wake at {at:?} did nothing"
        );
        if steps == 3000 {
            for i in (0..1000).step_by(10) {
                p.stop(at, StreamId(i));
            }
            while p.poll_event().is_some() {}
        }
    }
    let mut per_stream: HashMap<StreamId, Vec<&Sent>> = HashMap::new();
    for s in &sent {
        per_stream.entry(s.stream).or_default().push(s);
    }
    for (id, list) in &per_stream {
        let start = starts[id];
        for (n, s) in list.iter().enumerate() {
            assert_eq!(
                s.at,
                start + FRAME * n as u32,
                "stream {id:?} frame {n} sent off-grid"
            );
        }
        if id.0 % 10 != 0 {
            assert_eq!(list.len(), 10, "stream {id:?}");
        } else {
            assert!(list.len() < 10, "stopped stream {id:?} kept sending");
        }
    }
    assert_eq!(events.len(), 900);
}

#[test]
fn per_stream_state_is_small() {
    // Budget: < 20 KB per stream; the audio itself is shared through Arc.
    let per_stream = std::mem::size_of::<Stream>()
        + std::mem::size_of::<Playing>()
        + 4 * std::mem::size_of::<Arc<Prompt>>()
        + 2 * std::mem::size_of::<Reverse<(Instant, StreamId)>>();
    assert!(per_stream < 1024, "{per_stream} bytes");
}

fn collect(p: &mut Pacer, at: Instant, sent: &mut Vec<Sent>) {
    let mut events = Vec::new();
    drain(p, at, sent, &mut events);
}

#[test]
fn send_dtmf_replaces_audio_with_rfc4733_events_then_resumes() {
    let t = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t, S, config());
    assert!(
        !p.send_dtmf(t, S, '5', 100),
        "no telephone-event negotiated"
    );
    p.set_telephone_event(S, Some(101));
    assert!(!p.send_dtmf(t, S, 'x', 100));
    p.play(t, S, vec![tone("m", 2000)], false);
    let (mut sent, _) = run(&mut p, t + Duration::from_millis(100), 100);
    assert!(p.send_dtmf(t + Duration::from_millis(100), S, '5', 100));
    collect(&mut p, t + Duration::from_millis(100), &mut sent);
    let (more, _) = run(&mut p, t + Duration::from_millis(600), 100);
    sent.extend(more);
    // One SSRC, sequence numbers without a hole across audio and events.
    for w in sent.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
    let events: Vec<&Sent> = sent.iter().filter(|s| s.pt == 101).collect();
    assert_eq!(events.len(), 2 + 3, "updates at 0 and 50 ms, three ends");
    assert!(events[0].marker);
    assert!(events.iter().all(|e| e.ts == events[0].ts));
    let (first, last) = (events[0].at, events[4].at);
    assert_eq!(last - first, Duration::from_millis(200));
    // No audio while the digit is sent; audio after it opens a talkspurt.
    assert!(!sent
        .iter()
        .any(|s| s.pt == 8 && s.at > first && s.at < last));
    let resumed = sent.iter().find(|s| s.pt == 8 && s.at >= last).unwrap();
    assert!(resumed.marker);
    assert!((resumed.ts.wrapping_sub(events[0].ts) as i32) > 0);
    // The receiver side sees exactly one '5' of 100 ms.
    let mut rx = crate::dtmf::Rfc4733Receiver::new();
    for e in &events {
        rx.handle_packet(e.at, e.ts, &e.payload);
    }
    let got = rx.poll_event().unwrap();
    assert_eq!((got.digit, got.duration_ms), ('5', 100));
    assert_eq!(rx.poll_event(), None);
}

#[test]
fn queued_digits_are_sent_one_after_the_other() {
    let t = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t, S, config());
    p.set_telephone_event(S, Some(101));
    for d in "1#9".chars() {
        assert!(p.send_dtmf(t, S, d, 60));
    }
    let mut sent = Vec::new();
    collect(&mut p, t, &mut sent);
    let (more, _) = run(&mut p, t + Duration::from_secs(2), 100);
    sent.extend(more);
    let mut rx = crate::dtmf::Rfc4733Receiver::new();
    for e in &sent {
        rx.handle_packet(e.at, e.ts, &e.payload);
    }
    let digits: String = std::iter::from_fn(|| rx.poll_event())
        .map(|e| e.digit)
        .collect();
    assert_eq!(digits, "1#9");
    assert_eq!(p.poll_timeout(), None, "nothing left to do");
}

const A: StreamId = StreamId(10);
const B: StreamId = StreamId(11);

fn relay_pkt(seq: u16, ts: u32, pt: u8, payload: Vec<u8>) -> RelayPacket {
    RelayPacket {
        marker: false,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0x1111,
        payload,
    }
}

#[test]
fn relay_rewrites_transcodes_and_pauses_for_a_playback() {
    let t = Instant::now();
    let mut p = Pacer::new();
    p.add_stream(t, A, config());
    let b_config = StreamConfig {
        ssrc: 0xB0B0,
        initial_seq: 65_534,
        initial_ts: u32::MAX - 100,
        codec: Codec::Pcmu,
        payload_type: 0,
    };
    p.add_stream(t, B, b_config);
    p.set_telephone_event(A, Some(101));
    p.set_telephone_event(B, Some(96));
    assert!(!p.bridge(A, A));
    assert!(p.bridge(A, B));
    assert_eq!(p.partner(B), Some(A));
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i as f64 * 0.3).sin() * 9000.0) as i16)
        .collect();
    let alaw = Codec::Pcma.encode(&pcm);
    let mut sent = Vec::new();
    // Source sequence wraps too.
    for k in 0..4u16 {
        let at = t + Duration::from_millis(20 * u64::from(k));
        p.relay_packet(
            at,
            A,
            relay_pkt(
                65_534u16.wrapping_add(k),
                1000 + 160 * u32::from(k),
                8,
                alaw.clone(),
            ),
        );
        collect(&mut p, at, &mut sent);
    }
    assert_eq!(sent.len(), 4);
    assert!(sent
        .iter()
        .all(|s| s.stream == B && s.ssrc == 0xB0B0 && s.pt == 0));
    assert!(sent[0].marker && !sent[1].marker);
    let seqs: Vec<u16> = sent.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [65_534, 65_535, 0, 1]);
    for w in sent.windows(2) {
        assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 160);
    }
    assert_eq!(
        sent[0].payload,
        Codec::Pcmu.encode(&Codec::Pcma.decode(&alaw))
    );
    // RFC 4733 from A goes out under B's telephone-event type, same mapping.
    p.relay_packet(
        t + Duration::from_millis(80),
        A,
        relay_pkt(2, 1640, 101, vec![5, 0x8A, 0, 160]),
    );
    collect(&mut p, t, &mut sent);
    assert_eq!((sent[4].pt, sent[4].seq, sent[4].payload[0]), (96, 2, 5));
    // A packet type A did not negotiate (comfort noise 13) is not relayed.
    p.relay_packet(
        t + Duration::from_millis(90),
        A,
        relay_pkt(3, 1800, 13, vec![40]),
    );
    collect(&mut p, t, &mut sent);
    assert_eq!(sent.len(), 5);

    // A beep on B: the relay to B pauses, then resumes continuous and with a marker.
    let beep_at = t + Duration::from_millis(100);
    p.play(beep_at, B, vec![tone("beep", 60)], false);
    let mut k = 4u16;
    let mut at = beep_at;
    while at < beep_at + Duration::from_millis(200) {
        p.handle_timeout(at);
        p.relay_packet(
            at,
            A,
            relay_pkt(k, 1000 + 160 * u32::from(k), 8, alaw.clone()),
        );
        collect(&mut p, at, &mut sent);
        k += 1;
        at += Duration::from_millis(20);
    }
    let after: Vec<&Sent> = sent[5..].iter().collect();
    let beep: Vec<&&Sent> = after
        .iter()
        .filter(|s| s.at < beep_at + Duration::from_millis(60))
        .collect();
    assert_eq!(beep.len(), 3, "only the beep while it plays");
    assert!(beep.iter().all(|s| s.payload != sent[0].payload));
    let resumed = after
        .iter()
        .find(|s| s.at >= beep_at + Duration::from_millis(60))
        .unwrap();
    assert!(resumed.marker);
    for w in sent.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{:?}",
            (w[0].seq, w[1].seq)
        );
        assert!((w[1].ts.wrapping_sub(w[0].ts) as i32) >= 0);
    }
    // Unbridged: nothing relayed any more.
    assert_eq!(p.unbridge(B), Some(A));
    let n = sent.len();
    p.relay_packet(at, A, relay_pkt(k, 0, 8, alaw.clone()));
    collect(&mut p, at, &mut sent);
    assert_eq!(sent.len(), n);
}

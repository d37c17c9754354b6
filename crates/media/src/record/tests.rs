//! The recorder with virtual time: 20 ms packets stepped by hand.

use super::*;

const FRAME: usize = 160;
const STEP: Duration = Duration::from_millis(20);

fn tone(n: usize, amplitude: f64) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16
        })
        .collect()
}

/// Feeds `frames` packets of `pcm_of(k)` from `(t, ts)` on, one every 20 ms; returns the
/// next instant and timestamp.
fn feed(
    r: &mut Recorder,
    t: Instant,
    ts: u32,
    frames: usize,
    pcm_of: impl Fn(usize) -> Vec<i16>,
) -> (Instant, u32) {
    let (mut t, mut ts) = (t, ts);
    for k in 0..frames {
        r.handle_audio(t, 7, ts, &pcm_of(k));
        t += STEP;
        ts = ts.wrapping_add(FRAME as u32);
    }
    (t, ts)
}

fn drain_all(r: &mut Recorder) -> Vec<i16> {
    r.take_samples()
}

#[test]
fn max_ends_by_wall_time_and_caps_a_burst() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_millis(500)));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(500)));
    let (t, _) = feed(&mut r, t0, 1000, 10, |_| tone(FRAME, 8000.0));
    assert_eq!(r.ended(), None);
    // Held back until the end (less than HOLDBACK so far).
    assert!(r.take_samples().is_empty());
    r.handle_timeout(t + Duration::from_millis(300));
    assert_eq!(r.ended(), Some(RecordEnd::MaxReached));
    assert_eq!(drain_all(&mut r).len(), 10 * FRAME);
    assert_eq!(r.poll_timeout(), None);

    // A burst faster than real time stops at max worth of audio, exactly.
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_millis(500)));
    for k in 0..100u32 {
        r.handle_audio(t0, 7, k * FRAME as u32, &tone(FRAME, 8000.0));
    }
    assert_eq!(r.ended(), Some(RecordEnd::MaxReached));
    assert_eq!(drain_all(&mut r).len(), 4000);
    assert_eq!(r.recorded(), Duration::from_millis(500));
}

#[test]
fn holdback_releases_older_samples_in_order() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(60)));
    // Each frame carries its index, so order can be checked.
    let (t, _) = feed(&mut r, t0, 0, 100, |k| vec![k as i16; FRAME]);
    let early = r.take_samples();
    assert_eq!(early.len(), 100 * FRAME - HOLDBACK);
    r.stop();
    assert_eq!(r.ended(), Some(RecordEnd::Stopped));
    let mut all = early;
    all.extend(r.take_samples());
    assert_eq!(all.len(), 100 * FRAME);
    for (k, frame) in all.chunks(FRAME).enumerate() {
        assert!(frame.iter().all(|&s| s == k as i16), "frame {k}");
    }
    // Nothing is taken after the end.
    r.handle_audio(t, 7, 100 * FRAME as u32, &[1; FRAME]);
    assert!(r.take_samples().is_empty());
}

#[test]
fn lost_packets_become_silence_and_late_ones_are_dropped() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(60)));
    let ts0 = u32::MAX - 200; // across the timestamp wrap
    r.handle_audio(t0, 7, ts0, &[100; FRAME]);
    // Packets 1 and 2 lost; 3 arrives.
    r.handle_audio(
        t0 + 3 * STEP,
        7,
        ts0.wrapping_add(3 * FRAME as u32),
        &[300; FRAME],
    );
    // Packet 2 arrives late, then a duplicate of 3: both already covered.
    r.handle_audio(
        t0 + 3 * STEP,
        7,
        ts0.wrapping_add(2 * FRAME as u32),
        &[200; FRAME],
    );
    r.handle_audio(
        t0 + 3 * STEP,
        7,
        ts0.wrapping_add(3 * FRAME as u32),
        &[300; FRAME],
    );
    // A new source (SSRC) starts its own timeline: no fill.
    r.handle_audio(t0 + 4 * STEP, 8, 5, &[400; FRAME]);
    // A jump of 10 s on it is a new timeline too, not 10 s of silence.
    r.handle_audio(t0 + 5 * STEP, 8, 5 + 80_000, &[500; FRAME]);
    r.stop();
    let all = r.take_samples();
    let frames: Vec<i16> = all.chunks(FRAME).map(|f| f[0]).collect();
    assert_eq!(frames, vec![100, 0, 0, 300, 400, 500]);
    assert!(all.chunks(FRAME).all(|f| f.iter().all(|&s| s == f[0])));
}

#[test]
fn silence_after_speech_ends_it() {
    let t0 = Instant::now();
    let opts = RecordOptions::new(Duration::from_secs(120));
    let mut r = Recorder::new(t0, opts);
    // Silence first: the caller has not spoken yet, so no silence deadline.
    let (t, ts) = feed(&mut r, t0, 0, 300, |_| vec![3; FRAME]);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    r.handle_timeout(t);
    assert_eq!(r.ended(), None);
    // A click (one loud frame) does not arm the detector either.
    let (t, ts) = feed(&mut r, t, ts, 1, |_| tone(FRAME, 8000.0));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    // One second of speech, then silence: ends 5 s after the last loud frame.
    let (t, ts) = feed(&mut r, t, ts, 50, |_| tone(FRAME, 8000.0));
    let last_loud = t - STEP;
    assert_eq!(r.poll_timeout(), Some(last_loud + DEFAULT_SILENCE));
    let (t, _) = feed(&mut r, t, ts, 249, |_| vec![3; FRAME]);
    assert!(t - STEP < last_loud + DEFAULT_SILENCE);
    assert_eq!(r.ended(), None);
    r.handle_timeout(last_loud + DEFAULT_SILENCE);
    assert_eq!(r.ended(), Some(RecordEnd::Silence));
    // Even when the caller's phone stops sending (silence suppression): wall time counts.
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(120)));
    let (t, _) = feed(&mut r, t0, 0, 10, |_| tone(FRAME, 8000.0));
    r.handle_timeout(t - STEP + Duration::from_secs(5));
    assert_eq!(r.ended(), Some(RecordEnd::Silence));
    // And with no silence detection, only max ends it.
    let mut opts = RecordOptions::new(Duration::from_secs(120));
    opts.silence = None;
    let mut r = Recorder::new(t0, opts);
    let (t, _) = feed(&mut r, t0, 0, 10, |_| tone(FRAME, 8000.0));
    r.handle_timeout(t + Duration::from_secs(60));
    assert_eq!(r.ended(), None);
}

#[test]
fn inband_hash_is_cut_off_the_end() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(60)));
    // 1 s of voice, then 120 ms of the key's tone (marked 9999), then 60 ms of silence by
    // which the detector reports it.
    let (t, ts) = feed(&mut r, t0, 0, 50, |_| vec![1000; FRAME]);
    let (t, ts) = feed(&mut r, t, ts, 6, |_| vec![9999; FRAME]);
    let (t, _) = feed(&mut r, t, ts, 3, |_| vec![0; FRAME]);
    // Another digit is recorded as is and does not stop.
    let five = DtmfEvent {
        digit: '5',
        duration_ms: 100,
        source: DtmfSource::Inband,
    };
    r.handle_digit(t, &five, None);
    assert_eq!(r.ended(), None);
    let hash = DtmfEvent {
        digit: '#',
        duration_ms: 114,
        source: DtmfSource::Inband,
    };
    r.handle_digit(t, &hash, None);
    assert_eq!(r.ended(), Some(RecordEnd::Key));
    let all = r.take_samples();
    assert!(!all.contains(&9999), "the key's tone was recorded");
    // Only the margin's worth of voice is lost: at most 60 ms.
    assert!(all.len() >= 50 * FRAME - 480, "{}", all.len());
    assert_eq!(r.recorded(), samples_duration(all.len() as u64));
}

#[test]
fn rfc4733_hash_cuts_from_the_event_start() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(60)));
    let (t, ts) = feed(&mut r, t0, 0, 25, |_| vec![1000; FRAME]);
    // The phone keeps sending audio (with the tone) while the event runs from `ts`.
    let (t, _) = feed(&mut r, t, ts, 4, |_| vec![9999; FRAME]);
    let hash = DtmfEvent {
        digit: '#',
        duration_ms: 80,
        source: DtmfSource::Rfc4733,
    };
    r.handle_digit(t, &hash, Some((7, ts)));
    assert_eq!(r.ended(), Some(RecordEnd::Key));
    assert_eq!(r.take_samples(), vec![1000; 25 * FRAME]);

    // A phone that mutes audio during events: nothing after the start to cut.
    let mut r = Recorder::new(t0, RecordOptions::new(Duration::from_secs(60)));
    let (t, ts) = feed(&mut r, t0, 0, 25, |_| vec![1000; FRAME]);
    r.handle_digit(t + Duration::from_millis(100), &hash, Some((7, ts)));
    assert_eq!(r.take_samples(), vec![1000; 25 * FRAME]);

    // No stop key: `#` is just audio.
    let mut opts = RecordOptions::new(Duration::from_secs(60));
    opts.stop_key = None;
    let mut r = Recorder::new(t0, opts);
    r.handle_digit(t0, &hash, None);
    assert_eq!(r.ended(), None);
}

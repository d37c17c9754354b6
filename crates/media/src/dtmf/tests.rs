use super::*;
use crate::Codec;

const DIGITS: &str = "0123456789*#ABCD";

fn t0() -> Instant {
    Instant::now()
}

#[test]
fn codes_and_digits_round_trip() {
    for (code, digit) in DIGITS.chars().enumerate() {
        let expected = match digit {
            '*' => 10,
            '#' => 11,
            'A'..='D' => 12 + (digit as u8 - b'A'),
            d => d as u8 - b'0',
        };
        assert_eq!(digit_to_code(digit), Some(expected), "{code} {digit}");
        assert_eq!(code_to_digit(expected), Some(digit));
    }
    assert_eq!(digit_to_code('b'), Some(13));
    assert_eq!(digit_to_code('E'), None);
    assert_eq!(code_to_digit(16), None); // flash is not a digit
}

#[test]
fn sip_info_bodies() {
    let ev = parse_dtmf_relay("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
    assert_eq!(
        ev,
        DtmfEvent {
            digit: '5',
            duration_ms: 160,
            source: DtmfSource::SipInfo
        }
    );
    let ev = parse_dtmf_relay(
        "Application/DTMF-Relay; charset=x",
        b"signal = #\nDuration= 250",
    )
    .unwrap();
    assert_eq!((ev.digit, ev.duration_ms), ('#', 250));
    // Event code instead of the character, and no duration.
    let ev = parse_dtmf_relay("application/dtmf-relay", b"Signal=10").unwrap();
    assert_eq!((ev.digit, ev.duration_ms), ('*', DEFAULT_INFO_DURATION_MS));
    let ev = parse_dtmf_relay("application/dtmf", b"7\r\n").unwrap();
    assert_eq!(ev.digit, '7');
    assert_eq!(
        parse_dtmf_relay("application/dtmf", b"11").unwrap().digit,
        '#'
    );
    // Every one of the 16 digits through both formats.
    for d in DIGITS.chars() {
        let body = format!("Signal={d}\r\nDuration=100\r\n");
        assert_eq!(
            parse_dtmf_relay("application/dtmf-relay", body.as_bytes()).map(|e| e.digit),
            Some(d)
        );
        let body = d.to_string();
        assert_eq!(
            parse_dtmf_relay("application/dtmf", body.as_bytes()).map(|e| e.digit),
            Some(d)
        );
    }
    for (ct, body) in [
        ("application/sdp", &b"Signal=5"[..]),
        ("application/dtmf-relay", b"Signal=E"),
        ("application/dtmf-relay", b"Signal=16"),
        ("application/dtmf-relay", b"Duration=100"),
        ("application/dtmf-relay", b"\xff\xfe"),
        ("application/dtmf", b""),
        ("application/dtmf", b"55"),
        ("", b"5"),
    ] {
        assert_eq!(parse_dtmf_relay(ct, body), None, "{ct} {body:?}");
    }
}

#[test]
fn sip_info_parser_survives_garbage() {
    let mut x: u32 = 12345;
    for len in 0..200 {
        let body: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                [b'S', b'=', b'\n', b'5', b'D', 0xff, b'#', b'\r'][(x >> 16) as usize % 8]
            })
            .collect();
        let _ = parse_dtmf_relay("application/dtmf-relay", &body);
        let _ = parse_dtmf_relay("application/dtmf", &body);
    }
}

/// Feeds a digit's packets at their offsets, each end packet `copies` times.
fn feed(rx: &mut Rfc4733Receiver, start: Instant, ts: u32, packets: &[EventPacket]) {
    for p in packets {
        rx.handle_packet(start + p.offset, ts, &p.payload);
    }
}

fn drain(rx: &mut Rfc4733Receiver) -> Vec<DtmfEvent> {
    std::iter::from_fn(|| rx.poll_event()).collect()
}

#[test]
fn rfc4733_send_layout() {
    let p = rfc4733_packets('#', 120).unwrap();
    // Updates at 0, 50, 100 ms, then three end packets 50 ms apart (RFC 4733 §2.5.1.4).
    let offsets: Vec<u64> = p.iter().map(|p| p.offset.as_millis() as u64).collect();
    assert_eq!(offsets, [0, 50, 100, 120, 170, 220]);
    assert!(p[0].marker && p[1..].iter().all(|p| !p.marker));
    assert!(p
        .iter()
        .all(|p| p.payload[0] == 11 && p.payload[1] & 0x3F == SEND_VOLUME));
    assert_eq!(p.iter().filter(|p| p.payload[1] & 0x80 != 0).count(), 3);
    for e in &p[3..] {
        assert_eq!(u16::from_be_bytes([e.payload[2], e.payload[3]]), 960);
    }
    assert_eq!(rfc4733_packets('x', 100), None);
    // Clamped to Q.24's minimum.
    let short = rfc4733_packets('1', 5).unwrap();
    assert_eq!(
        u16::from_be_bytes([short[1].payload[2], short[1].payload[3]]),
        320
    );
}

#[test]
fn rfc4733_all_sixteen_digits_once_each() {
    let start = t0();
    let mut rx = Rfc4733Receiver::new();
    for (i, d) in DIGITS.chars().enumerate() {
        let at = start + Duration::from_millis(400 * i as u64);
        feed(
            &mut rx,
            at,
            1000 + 3200 * i as u32,
            &rfc4733_packets(d, 100).unwrap(),
        );
    }
    let got = drain(&mut rx);
    let digits: String = got.iter().map(|e| e.digit).collect();
    assert_eq!(digits, DIGITS);
    assert!(got
        .iter()
        .all(|e| e.duration_ms == 100 && e.source == DtmfSource::Rfc4733));
}

#[test]
fn rfc4733_dedups_retransmitted_updates_and_ends() {
    let start = t0();
    let mut rx = Rfc4733Receiver::new();
    let p = rfc4733_packets('5', 200).unwrap();
    // Every packet twice (retransmissions), then a late update after the end.
    for pkt in &p {
        rx.handle_packet(start + pkt.offset, 777, &pkt.payload);
        rx.handle_packet(start + pkt.offset, 777, &pkt.payload);
    }
    rx.handle_packet(start + Duration::from_millis(400), 777, &p[1].payload);
    let got = drain(&mut rx);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].digit, got[0].duration_ms), ('5', 200));
    // The same digit pressed again is a new event (new timestamp).
    feed(&mut rx, start + Duration::from_secs(1), 9000, &p);
    assert_eq!(drain(&mut rx).len(), 1);
}

#[test]
fn rfc4733_only_end_packets_sharing_a_sequence_number() {
    // sip-tester's pcaps: three end packets, same seq (seq is not even looked at) and ts.
    let start = t0();
    let mut rx = Rfc4733Receiver::new();
    let end = [3u8, 0x80 | 10, 0x03, 0x20];
    for _ in 0..3 {
        rx.handle_packet(start, 0xFFFF_FF00, &end);
    }
    let got = drain(&mut rx);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].digit, got[0].duration_ms), ('3', 100));
}

#[test]
fn rfc4733_lost_end_is_reported_by_the_next_event_or_the_timeout() {
    let start = t0();
    let mut rx = Rfc4733Receiver::new();
    let p1 = rfc4733_packets('1', 100).unwrap();
    let p2 = rfc4733_packets('2', 100).unwrap();
    // '1' without its end packets, then '2' complete.
    for pkt in p1.iter().filter(|p| p.payload[1] & 0x80 == 0) {
        rx.handle_packet(start + pkt.offset, 100, &pkt.payload);
    }
    feed(&mut rx, start + Duration::from_millis(300), 2500, &p2);
    let digits: String = drain(&mut rx).iter().map(|e| e.digit).collect();
    assert_eq!(digits, "12");
    // '3' without end, then nothing: the timeout reports it once.
    let p3 = rfc4733_packets('3', 100).unwrap();
    rx.handle_packet(start + Duration::from_secs(2), 9999, &p3[0].payload);
    let deadline = rx.poll_timeout().unwrap();
    rx.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut rx).is_empty());
    rx.handle_timeout(deadline);
    assert_eq!(drain(&mut rx)[0].digit, '3');
    assert_eq!(rx.poll_timeout(), None);
}

#[test]
fn rfc4733_ignores_non_digits_and_garbage() {
    let start = t0();
    let mut rx = Rfc4733Receiver::new();
    rx.handle_packet(start, 1, &[16, 0x80, 0, 160]); // flash
    rx.handle_packet(start, 2, &[1, 0x80]); // truncated
    rx.handle_packet(start, 3, &[]);
    let mut x: u32 = 7;
    for i in 0..5000u32 {
        let payload: Vec<u8> = (0..(i % 9))
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        rx.handle_packet(start + Duration::from_millis(u64::from(i)), x, &payload);
    }
    // Whatever the garbage reported, it never panicked and no flash was taken for a digit.
    assert!(drain(&mut rx).iter().all(|e| e.digit != 'F'));
}

// ---- in-band ----

/// A dual tone at `amp` peak per tone (default level about -10 dBm0 per tone).
fn dual_tone(digit: char, ms: usize, low_amp: f64, high_amp: f64) -> Vec<i16> {
    let code = digit_to_code(digit).unwrap() as usize;
    let pos = "123A456B789C*0#D".find(digit).unwrap();
    let _ = code;
    let (f1, f2) = (
        [697.0, 770.0, 852.0, 941.0][pos / 4],
        [1209.0, 1336.0, 1477.0, 1633.0][pos % 4],
    );
    (0..ms * 8)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let s = low_amp * (2.0 * std::f64::consts::PI * f1 * t).sin()
                + high_amp * (2.0 * std::f64::consts::PI * f2 * t).sin();
            s as i16
        })
        .collect()
}

/// Through PCMA and back, as the engine sees it.
fn via_pcma(pcm: &[i16]) -> Vec<i16> {
    Codec::Pcma.decode(&Codec::Pcma.encode(pcm))
}

fn detect(pcm: &[i16]) -> Vec<DtmfEvent> {
    let mut d = InbandDetector::new();
    // Odd chunk sizes: the detector must not care how audio is cut.
    for chunk in pcm.chunks(160) {
        d.process(chunk);
    }
    d.process(&[0; 400]); // let the last digit end
    std::iter::from_fn(|| d.poll_event()).collect()
}

#[test]
fn inband_all_sixteen_digits_through_pcma() {
    let mut pcm = Vec::new();
    for d in DIGITS.chars() {
        pcm.extend(dual_tone(d, 80, 7000.0, 7000.0));
        pcm.extend(std::iter::repeat_n(0, 60 * 8));
    }
    let got = detect(&via_pcma(&pcm));
    let digits: String = got.iter().map(|e| e.digit).collect();
    assert_eq!(digits, DIGITS);
    for e in &got {
        assert_eq!(e.source, DtmfSource::Inband);
        assert!((50..=90).contains(&e.duration_ms), "{e:?}");
    }
}

#[test]
fn inband_minimum_timing_and_levels() {
    // Q.24: 40 ms on / 40 ms off must be seen as two presses.
    let mut pcm = dual_tone('5', 40, 5000.0, 5000.0);
    pcm.extend(std::iter::repeat_n(0, 40 * 8));
    pcm.extend(dual_tone('5', 40, 5000.0, 5000.0));
    assert_eq!(detect(&via_pcma(&pcm)).len(), 2);
    // A 15 ms blip is not a digit.
    assert!(detect(&via_pcma(&dual_tone('5', 15, 7000.0, 7000.0))).is_empty());
    // Weak (about -30 dBov per tone) is still a digit; very weak is not.
    assert_eq!(
        detect(&via_pcma(&dual_tone('9', 100, 1100.0, 1100.0))).len(),
        1
    );
    assert!(detect(&via_pcma(&dual_tone('9', 100, 200.0, 200.0))).is_empty());
    // Twist: low 6 dB louder accepted, high 6 dB louder refused (reverse limit 4 dB).
    assert_eq!(detect(&dual_tone('#', 100, 8000.0, 4000.0)).len(), 1);
    assert!(detect(&dual_tone('#', 100, 4000.0, 8000.0)).is_empty());
    // A single tone is not a digit.
    assert!(detect(&dual_tone('1', 200, 8000.0, 0.0)).is_empty());
}

#[test]
fn inband_never_panics_on_noise() {
    let mut x: u32 = 99;
    let pcm: Vec<i16> = (0..80_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as i16
        })
        .collect();
    assert!(detect(&pcm).is_empty());
    assert!(detect(&[i16::MAX; 4000]).is_empty());
    assert!(detect(&[i16::MIN; 4000]).is_empty());
}

fn french_prompts() -> Vec<(String, Vec<i16>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts/fr");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("prompts/fr") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wav") {
            let p = crate::load_wav(&path, "x").unwrap();
            out.push((path.display().to_string(), p.pcm().to_vec()));
        }
    }
    assert!(out.len() >= 3, "prompts missing in {}", dir.display());
    out
}

/// Chords and arpeggios with rich harmonics, a little vibrato and a noise-modulated melody:
/// the kind of hold music that trips naive detectors.
pub(crate) fn synth_music(seconds: usize) -> Vec<i16> {
    let n = seconds * 8000;
    let mut out = vec![0f64; n];
    // Equal temperament around A4; a progression C - Am - F - G and its arpeggios.
    let note = |semitones: i32| 440.0 * 2f64.powf(f64::from(semitones) / 12.0);
    let chords: [[i32; 3]; 4] = [[-9, -5, -2], [-12, -9, -5], [-16, -12, -9], [-14, -10, -7]];
    let mut x: u32 = 1;
    for (i, s) in out.iter_mut().enumerate() {
        let t = i as f64 / 8000.0;
        let bar = (t / 1.0) as usize % 4;
        let mut v = 0.0;
        for &semi in &chords[bar] {
            for oct in [0, 12] {
                let f = note(semi + oct);
                for h in 1..=6 {
                    let fh = f * f64::from(h);
                    if fh < 3800.0 {
                        v += 900.0 / f64::from(h) * (2.0 * std::f64::consts::PI * fh * t).sin();
                    }
                }
            }
        }
        // Arpeggio: one chord note per 125 ms, two octaves up, with decay.
        let step = (t / 0.125) as usize;
        let f = note(chords[bar][step % 3] + 24) * (1.0 + 0.003 * (2.0 * 5.0 * t).sin());
        let env = (-((t % 0.125) * 20.0)).exp();
        for h in 1..=3 {
            v += env * 2500.0 / f64::from(h)
                * (2.0 * std::f64::consts::PI * f * f64::from(h) * t).sin();
        }
        // Noise-modulated melody (breathy flute).
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let noise = f64::from((x >> 16) as i16) / 32768.0;
        let mel = note([3, 5, 7, 8, 10, 12, 10, 7][(t / 0.5) as usize % 8]);
        v += (1500.0 + 600.0 * noise) * (2.0 * std::f64::consts::PI * mel * t).sin();
        *s = v;
    }
    out.iter()
        .map(|&v| v.clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[test]
fn inband_no_false_digit_on_french_speech_in_pcma() {
    for (name, pcm) in french_prompts() {
        let got = detect(&via_pcma(&pcm));
        assert!(got.is_empty(), "{name}: false digits {got:?}");
    }
}

#[test]
fn inband_no_false_digit_on_music_in_pcma() {
    let music = synth_music(20);
    let level =
        (music.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / music.len() as f64).sqrt();
    assert!(level > 2000.0, "music too quiet to mean anything: {level}");
    let got = detect(&via_pcma(&music));
    assert!(got.is_empty(), "false digits on music: {got:?}");
}

#[test]
fn inband_digit_inside_a_pcma_speech_stream() {
    let speech = french_prompts().swap_remove(0).1;
    let mut pcm: Vec<i16> = speech.iter().take(16_000).map(|&s| s / 2).collect();
    pcm.extend(dual_tone('7', 90, 6000.0, 5000.0));
    pcm.extend(speech.iter().skip(16_000).take(16_000).map(|&s| s / 2));
    let got = detect(&via_pcma(&pcm));
    assert_eq!(
        got.iter().map(|e| e.digit).collect::<String>(),
        "7",
        "{got:?}"
    );
}

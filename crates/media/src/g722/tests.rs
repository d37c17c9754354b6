use super::*;

fn sine(freq: f64, rate: f64, n: usize, amp: f64) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16)
        .collect()
}

/// SNR of `out` against `input` at the best delay in 0..64 samples (the QMF pair delays the
/// signal), skipping the ADPCM's adaptation at the start. Returns (snr_db, delay).
fn best_snr(input: &[i16], out: &[i16]) -> (f64, usize) {
    let skip = 400;
    (0..64)
        .map(|lag| {
            let (mut sig, mut err) = (0.0, 0.0);
            for i in skip..input.len() - 64 {
                let x = f64::from(input[i]);
                let y = f64::from(out[i + lag]);
                sig += x * x;
                err += (x - y) * (x - y);
            }
            (10.0 * (sig / err.max(1e-9)).log10(), lag)
        })
        .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a })
}

/// Power of `freq` in `x` (Goertzel), to check which frequency came out.
fn power_at(x: &[i16], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
}

fn round_trip(pcm: &[i16]) -> (Vec<u8>, Vec<i16>) {
    let mut bytes = Vec::new();
    Encoder::new().encode(pcm, &mut bytes);
    let mut out = Vec::new();
    Decoder::new().decode(&bytes, &mut out);
    (bytes, out)
}

#[test]
fn a_1khz_sine_keeps_its_frequency_with_snr_over_20_db() {
    let input = sine(1000.0, 16_000.0, 16_000, 10_000.0);
    let (bytes, out) = round_trip(&input);
    assert_eq!(
        bytes.len(),
        8000,
        "one octet per pair of samples: 64 kbit/s"
    );
    assert_eq!(out.len(), input.len());
    let (snr, delay) = best_snr(&input, &out);
    assert!(snr > 20.0, "SNR {snr:.1} dB at delay {delay}");
    let tail = &out[1000..];
    let at_1k = power_at(tail, 1000.0, 16_000.0);
    for other in [500.0, 1500.0, 3000.0, 7000.0] {
        assert!(
            at_1k > 100.0 * power_at(tail, other, 16_000.0),
            "{other} Hz"
        );
    }
}

/// Three tones that do not share a period shorter than the lag search: the best lag is the
/// codec's real delay.
fn chord(rate: f64, n: usize) -> Vec<i16> {
    let a = sine(440.0, rate, n, 4000.0);
    let b = sine(1230.0, rate, n, 4000.0);
    let c = sine(2710.0, rate, n, 3000.0);
    (0..n).map(|i| a[i] + b[i] + c[i]).collect()
}

#[test]
fn speech_band_audio_survives_with_the_qmf_delay() {
    let input = chord(16_000.0, 16_000);
    let (_, out) = round_trip(&input);
    let (snr, delay) = best_snr(&input, &out);
    assert!(snr > 20.0, "SNR {snr:.1} dB at delay {delay}");
    // The QMF analysis + synthesis pair delays by 22 samples (two 24-tap filters, G.722 §2).
    assert_eq!(delay, 22);
    // The lower band alone has no QMF, hence no delay.
    let input = chord(8000.0, 8000);
    let mut bytes = Vec::new();
    Encoder::new().encode_narrowband(&input, &mut bytes);
    let mut out = Vec::new();
    Decoder::new().decode_narrowband(&bytes, &mut out);
    let (snr, delay) = best_snr(&input, &out);
    assert!(snr > 20.0, "SNR {snr:.1} dB");
    assert_eq!(delay, 0);
}

#[test]
fn the_upper_band_carries_a_6khz_tone() {
    // Above 4 kHz only the upper sub-band and the QMF can carry it: G.711 could not.
    let input = sine(6000.0, 16_000.0, 16_000, 8000.0);
    let (_, out) = round_trip(&input);
    let tail = &out[2000..];
    let at_6k = power_at(tail, 6000.0, 16_000.0);
    assert!(at_6k > 50.0 * power_at(tail, 2000.0, 16_000.0));
    assert!(at_6k > 50.0 * power_at(tail, 1000.0, 16_000.0));
    let rms = (tail.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
    assert!(rms > 8000.0 / 2f64.sqrt() * 0.5, "rms {rms}");
}

#[test]
fn silence_stays_silent() {
    let (bytes, out) = round_trip(&[0i16; 3200]);
    assert!(out.iter().all(|&s| s.abs() <= 4), "{:?}", out.iter().max());
    assert_eq!(bytes.len(), 1600);
    let mut nb = Vec::new();
    Encoder::new().encode_narrowband(&[0i16; 1600], &mut nb);
    let mut back = Vec::new();
    Decoder::new().decode_narrowband(&nb, &mut back);
    assert!(back.iter().all(|&s| s.abs() <= 4));
}

#[test]
fn narrowband_round_trip_of_an_8khz_sine() {
    let input = sine(1000.0, 8000.0, 8000, 10_000.0);
    let mut bytes = Vec::new();
    Encoder::new().encode_narrowband(&input, &mut bytes);
    assert_eq!(bytes.len(), input.len());
    let mut out = Vec::new();
    Decoder::new().decode_narrowband(&bytes, &mut out);
    let (snr, _) = best_snr(&input, &out);
    assert!(snr > 20.0, "SNR {snr:.1} dB");
    // And a full-band decoder hears the same 1 kHz tone (at 16 kHz).
    let mut wide = Vec::new();
    Decoder::new().decode(&bytes, &mut wide);
    let tail = &wide[2000..];
    assert!(power_at(tail, 1000.0, 16_000.0) > 100.0 * power_at(tail, 3000.0, 16_000.0));
}

#[test]
fn decoder_never_panics_on_random_bytes_and_stays_in_range() {
    // A xorshift generator: deterministic, no dependency.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let mut dec = Decoder::new();
    let mut nb = Decoder::new();
    let mut out = Vec::new();
    for _ in 0..2000 {
        let data: Vec<u8> = (0..160).map(|_| next()).collect();
        out.clear();
        dec.decode(&data, &mut out);
        assert_eq!(out.len(), 320);
        out.clear();
        nb.decode_narrowband(&data, &mut out);
        assert_eq!(out.len(), 160);
    }
    // Extreme constant inputs too: the adaptation saturates instead of overflowing.
    for b in [0x00u8, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF] {
        let mut d = Decoder::new();
        let mut o = Vec::new();
        d.decode(&[b; 4000], &mut o);
        assert_eq!(o.len(), 8000);
    }
    // And the encoder on full-scale square waves.
    let square: Vec<i16> = (0..8000)
        .map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
        .collect();
    let (bytes, out) = round_trip(&square);
    assert_eq!((bytes.len(), out.len()), (4000, 8000));
}

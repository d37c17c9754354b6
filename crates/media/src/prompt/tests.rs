use std::f64::consts::PI;

use super::*;

fn write_wav(path: &Path, rate: u32, channels: u16, float: bool, secs: f64, tones: &[(f64, f64)]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (secs * f64::from(rate)).round() as usize;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let x: f64 = tones
            .iter()
            .map(|(f, a)| a * (2.0 * PI * f * t).sin())
            .sum();
        for _ in 0..channels {
            if float {
                w.write_sample(x as f32).unwrap();
            } else {
                w.write_sample((x * 32767.0).round() as i16).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// Power of `freq` in `x` (Goertzel), normalised so that a full-scale sine gives ~0.25.
fn goertzel(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = x.len() as f64;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

fn mean_power(x: &[i16]) -> f64 {
    x.iter()
        .map(|&v| (f64::from(v) / 32768.0).powi(2))
        .sum::<f64>()
        / x.len() as f64
}

fn zero_crossings(x: &[i16]) -> usize {
    x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

fn check_1khz_tone(p: &Prompt) {
    // 1 s of input: 50 frames, within one frame.
    let frames = p.frame_count() as i64;
    assert!((frames - 50).abs() <= 1, "{frames} frames");
    assert!(
        p.duration() >= Duration::from_millis(980) && p.duration() <= Duration::from_millis(1020)
    );
    // Skip 10 ms at each end (edge of the resampler's filter).
    let body = &p.pcm()[80..7920];
    // A 1 kHz sine crosses zero 2000 times a second.
    let zc = zero_crossings(body) as f64 / (body.len() as f64 / 8000.0);
    assert!((zc - 2000.0).abs() < 20.0, "{zc} crossings/s");
    // Almost all the energy is at 1 kHz, and the amplitude (0.5) survived.
    let total = mean_power(body);
    let tone = goertzel(body, 1000.0) * 2.0; // Goertzel gives A²/4; mean power of a sine is A²/2.
    assert!((total - 0.125).abs() < 0.01, "mean power {total}");
    assert!(tone / total > 0.95, "tone {tone} of {total}");
    assert!(goertzel(body, 2000.0) * 2.0 < 0.001 * total);
    // G.711 round trip stays close to the linear signal (>= 30 dB SNR).
    for codec in [Codec::Pcma, Codec::Pcmu] {
        let decoded = codec.decode(p.encoded(codec));
        assert_eq!(decoded.len(), p.pcm().len());
        let noise: f64 = decoded
            .iter()
            .zip(p.pcm())
            .map(|(&d, &s)| ((f64::from(d) - f64::from(s)) / 32768.0).powi(2))
            .sum::<f64>()
            / decoded.len() as f64;
        let snr_db = 10.0 * (mean_power(p.pcm()) / noise).log10();
        assert!(snr_db > 30.0, "{codec:?} SNR {snr_db} dB");
    }
}

#[test]
fn loads_16khz_and_22050hz_with_the_tone_intact() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [16_000, 22_050] {
        let path = dir.path().join(format!("tone{rate}.wav"));
        write_wav(&path, rate, 1, false, 1.0, &[(1000.0, 0.5)]);
        let p = load_wav(&path, "tone").unwrap();
        assert_eq!(p.name(), "tone");
        check_1khz_tone(&p);
    }
}

#[test]
fn loads_stereo_float_48khz_and_8khz_mono() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.wav");
    write_wav(&path, 48_000, 2, true, 1.0, &[(1000.0, 0.5)]);
    check_1khz_tone(&load_wav(&path, "s").unwrap());
    let path = dir.path().join("m.wav");
    write_wav(&path, 8_000, 1, false, 1.0, &[(1000.0, 0.5)]);
    check_1khz_tone(&load_wav(&path, "m").unwrap());
}

#[test]
fn content_above_4khz_is_filtered_not_aliased() {
    // A 5 kHz tone at 16 kHz would alias to 3 kHz with a naive decimator.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hi.wav");
    write_wav(
        &path,
        16_000,
        1,
        false,
        1.0,
        &[(1000.0, 0.3), (5000.0, 0.3)],
    );
    let p = load_wav(&path, "hi").unwrap();
    let body = &p.pcm()[80..7920];
    let alias = goertzel(body, 3000.0) * 2.0;
    let tone = goertzel(body, 1000.0) * 2.0;
    assert!(tone > 0.04, "1 kHz lost: {tone}");
    assert!(alias < tone * 1e-3, "alias {alias} vs tone {tone}");
}

#[test]
fn odd_lengths_are_padded_to_whole_frames_with_silence() {
    let p = Prompt::from_pcm("x", vec![1000; 161]);
    assert_eq!(p.frame_count(), 2);
    assert_eq!(p.frames(Codec::Pcma).count(), 2);
    let last = p.frame(Codec::Pcma, 1).unwrap();
    assert_eq!(last[0], crate::g711::alaw_encode(1000));
    assert!(last[1..].iter().all(|&b| b == 0xD5), "A-law silence");
    assert_eq!(p.frames(Codec::G722).count(), 2);
    assert!(p.frame(Codec::Pcmu, 2).is_none());
    assert!(p.frame(Codec::Pcmu, usize::MAX).is_none());
    assert_eq!(p.duration(), Duration::from_millis(40));
}

#[test]
fn bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_wav(&dir.path().join("missing.wav"), "m"),
        Err(MediaError::Io { .. })
    ));
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").unwrap();
    assert!(load_wav(&junk, "j").is_err());
    std::fs::write(&junk, b"").unwrap();
    assert!(load_wav(&junk, "j").is_err());
}

#[test]
fn cache_loads_once_and_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fr")).unwrap();
    write_wav(
        &dir.path().join("fr/bienvenue.wav"),
        8000,
        1,
        false,
        0.2,
        &[(440.0, 0.3)],
    );
    let cache = PromptCache::new(dir.path().to_owned());
    let a = cache.get_or_load("fr/bienvenue").unwrap();
    let b = cache.get_or_load("fr/bienvenue").unwrap();
    assert!(Arc::ptr_eq(&a, &b), "loaded twice");
    assert_eq!(a.frame_count(), 10);
    for bad in [
        "",
        "../etc/passwd",
        "/etc/passwd",
        "fr/../../x",
        "./fr/bienvenue",
    ] {
        assert!(
            matches!(
                cache.get_or_load(bad),
                Err(MediaError::InvalidPromptName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(cache.get_or_load("fr/absent").is_err());
    let tts = Arc::new(Prompt::from_pcm("tts/1", vec![0; 320]));
    cache.insert("tts/1", tts.clone());
    assert!(Arc::ptr_eq(&cache.get_or_load("tts/1").unwrap(), &tts));
}

#[test]
fn g722_is_encoded_from_16khz_audio_and_keeps_the_upper_band() {
    // 1 kHz + 6 kHz at 16 kHz: G.711 (8 kHz) can only keep the first, G.722 keeps both.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.wav");
    write_wav(
        &path,
        16_000,
        1,
        false,
        1.0,
        &[(1000.0, 0.3), (6000.0, 0.3)],
    );
    let p = load_wav(&path, "wide").unwrap();
    assert_eq!(p.encoded(Codec::G722).len(), p.encoded(Codec::Pcma).len());
    let mut wide = Vec::new();
    crate::g722::Decoder::new().decode(p.encoded(Codec::G722), &mut wide);
    assert_eq!(wide.len(), 2 * p.pcm().len());
    let body: Vec<f64> = wide[800..15_200]
        .iter()
        .map(|&s| f64::from(s) / 32768.0)
        .collect();
    let g = |f: f64| goertzel_at(&body, f, 16_000.0);
    assert!(
        g(6000.0) > 0.2 * g(1000.0),
        "6 kHz lost: {} vs {}",
        g(6000.0),
        g(1000.0)
    );
    assert!(g(1000.0) > 100.0 * g(3000.0));
    // The 8 kHz prompt itself has no 6 kHz (it would alias to 2 kHz).
    let narrow: Vec<f64> = p.pcm()[400..7600]
        .iter()
        .map(|&s| f64::from(s) / 32768.0)
        .collect();
    assert!(goertzel_at(&narrow, 2000.0, 8000.0) < 1e-3 * goertzel_at(&narrow, 1000.0, 8000.0));

    // A prompt made from 8 kHz samples only still plays in G.722 (lower band).
    let p8 = Prompt::from_pcm("n", p.pcm().to_vec());
    let back = Codec::G722.decode(p8.encoded(Codec::G722));
    let e = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let ratio = e(&back[400..]) / e(&p.pcm()[400..]);
    assert!((0.7..1.3).contains(&ratio), "{ratio}");
}

/// Relative power of `f` in `x` sampled at `rate` (Goertzel, normalised by length).
fn goertzel_at(x: &[f64], f: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / rate;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = x.len() as f64;
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (n * n)
}

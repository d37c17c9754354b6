//! Rendering with the real espeak-ng: a valid, non-silent 8 kHz WAV, then a cache hit.
//! Skipped (with a message) only where espeak-ng is not installed.

use std::path::Path;

use ld_tts::{cache_key, render, render_all, render_with_program, TtsError, DEFAULT_VOICE};

fn espeak_or_skip() -> bool {
    if ld_tts::is_available() {
        true
    } else {
        eprintln!("SKIPPED: espeak-ng is not installed (apt-get install espeak-ng)");
        false
    }
}

#[test]
fn renders_a_valid_non_silent_wav_and_caches_it() {
    if !espeak_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("tts");
    let text = "Le service est ouvert du lundi au vendredi de 18 heures à 22 heures.";
    let path = render(text, DEFAULT_VOICE, &cache).expect("render");
    assert_eq!(
        path,
        cache.join(format!("{}.wav", cache_key(text, DEFAULT_VOICE)))
    );
    let mut reader = hound::WavReader::open(&path).expect("valid WAV");
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(spec.channels, 1);
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let secs = samples.len() as f64 / 8000.0;
    assert!((2.0..15.0).contains(&secs), "{secs} s for a sentence");
    let rms =
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 500.0, "too quiet: rms {rms}");
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        (20_000..=23_500).contains(&peak),
        "peak {peak} not near -3 dBFS"
    );
    // No temp file left behind.
    let names: Vec<_> = std::fs::read_dir(&cache)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Second call: same path, not rendered again (mtime unchanged, even with a broken
    // synthesizer).
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = render(text, DEFAULT_VOICE, &cache).expect("cached");
    assert_eq!(again, path);
    let again = render_with_program(
        Path::new("/nonexistent/espeak"),
        text,
        DEFAULT_VOICE,
        &cache,
    )
    .expect("cache hit needs no program");
    assert_eq!(again, path);
    assert_eq!(
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime"),
        mtime
    );
}

#[test]
fn render_all_reports_progress() {
    if !espeak_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let texts = ["Bonjour.", "Il rouvrira demain", "à 18 heures."];
    let mut seen = Vec::new();
    let paths = render_all(&texts, DEFAULT_VOICE, dir.path(), |done, total| {
        seen.push((done, total))
    })
    .expect("render");
    assert_eq!(seen, vec![(1, 3), (2, 3), (3, 3)]);
    assert_eq!(paths.len(), 3);
    assert!(paths.iter().all(|p| p.is_file()));
}

#[test]
fn missing_program_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = render_with_program(
        Path::new("/nonexistent/espeak-ng"),
        "Bonjour",
        "fr",
        dir.path(),
    )
    .expect_err("no program");
    assert!(matches!(err, TtsError::EspeakMissing), "{err:?}");
    assert!(
        err.to_string().contains("espeak-ng is not installed"),
        "{err}"
    );
    assert!(matches!(
        render_with_program(Path::new("/nonexistent"), "  ", "fr", dir.path()),
        Err(TtsError::EmptyText)
    ));
}

//! French speech synthesis for prompts: `say` texts rendered once with espeak-ng (run as a
//! program, not linked) to 8 kHz mono 16-bit WAV, cached by a hash of voice and text.
//!
//! Contract: [`render`] returns `cache_dir/<cache_key(text, voice)>.wav`, rendering it only
//! when it is not there yet; the file appears atomically (temp file + rename), so a
//! reader never sees half a prompt and two renders of the same text are harmless.
//! [`render_all`] does a whole plan's texts with a progress callback (`acdd prompts
//! render`). The daemon maps `PromptItem::Say(text)` to the prompt name
//! [`prompt_name`]`(text, voice)` (`fr/tts/<hash>`, under the prompts directory); shipped
//! plans come with their files pre-rendered, so espeak-ng is not needed at run time.
//!
//! espeak-ng writes 22.05 kHz; the output is resampled here to 8 kHz (the telephone rate,
//! like the other shipped prompts: 2.75 times smaller, and the media loader has nothing
//! to resample) and normalized to a peak of -3 dBFS, as `prompts/render.sh` does with sox.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use rubato::{FftFixedInOut, Resampler};
use sha2::{Digest, Sha256};

/// The French voice of espeak-ng.
pub const DEFAULT_VOICE: &str = "fr";

/// Where rendered prompts live under the prompts directory (`prompts/fr/tts/`).
pub const PROMPT_SUBDIR: &str = "fr/tts";

/// The program run to synthesize speech.
pub const ESPEAK: &str = "espeak-ng";

/// Speaking rate in words per minute: a little slower than espeak's 175 for the phone.
const RATE_WPM: &str = "150";

/// Output sample rate.
pub const SAMPLE_RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng is not installed (apt-get install espeak-ng) or not in PATH; `say` prompts need it to be rendered once")]
    EspeakMissing,
    #[error("espeak-ng failed ({status}): {stderr}")]
    Espeak { status: String, stderr: String },
    #[error("nothing to say: empty text")]
    EmptyText,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: bad WAV from espeak-ng: {message}")]
    Wav { path: PathBuf, message: String },
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// The cache key of a text in a voice: lowercase hex SHA-256 of `voice`, a NUL byte, and
/// the text as given (no trimming: what is hashed is what is said).
pub fn cache_key(text: &str, voice: &str) -> String {
    let mut h = Sha256::new();
    h.update(voice.as_bytes());
    h.update([0u8]);
    h.update(text.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The prompt name of a text, relative to the prompts directory and without `.wav`
/// (`fr/tts/<cache_key>`), as the prompt cache loads it.
pub fn prompt_name(text: &str, voice: &str) -> String {
    format!("{PROMPT_SUBDIR}/{}", cache_key(text, voice))
}

/// The file [`render`] writes for a text in `cache_dir`.
pub fn cached_path(text: &str, voice: &str, cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("{}.wav", cache_key(text, voice)))
}

/// True when espeak-ng can be run.
pub fn is_available() -> bool {
    Command::new(ESPEAK)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Renders `text` with espeak-ng into `cache_dir` (created if needed), or returns the
/// cached file without running anything.
pub fn render(text: &str, voice: &str, cache_dir: &Path) -> Result<PathBuf, TtsError> {
    render_with_program(Path::new(ESPEAK), text, voice, cache_dir)
}

/// [`render`] with another synthesizer program taking espeak-ng's arguments.
pub fn render_with_program(
    program: &Path,
    text: &str,
    voice: &str,
    cache_dir: &Path,
) -> Result<PathBuf, TtsError> {
    if text.trim().is_empty() {
        return Err(TtsError::EmptyText);
    }
    let out = cached_path(text, voice, cache_dir);
    if out.is_file() {
        return Ok(out);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TtsError::Io { path, source }
    };
    std::fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    let raw = temp_path(cache_dir, "espeak");
    let result = synthesize(program, text, voice, &raw).and_then(|()| {
        let (samples, rate) = read_wav(&raw)?;
        let pcm = to_8k_normalized(&samples, rate)?;
        let tmp = temp_path(cache_dir, "8k");
        let written = write_wav(&tmp, &pcm).and_then(|()| {
            // Atomic on the same file system: readers see the old state or the whole file.
            std::fs::rename(&tmp, &out).map_err(io(&out))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    });
    let _ = std::fs::remove_file(&raw);
    result.map(|()| out)
}

/// Renders every text (already cached ones cost nothing), calling `progress(done, total)`
/// after each. Stops at the first error.
pub fn render_all<S: AsRef<str>>(
    texts: &[S],
    voice: &str,
    cache_dir: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<PathBuf>, TtsError> {
    let total = texts.len();
    let mut out = Vec::with_capacity(total);
    for (i, t) in texts.iter().enumerate() {
        out.push(render(t.as_ref(), voice, cache_dir)?);
        progress(i + 1, total);
    }
    Ok(out)
}

fn temp_path(dir: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp-{what}-{}-{n}.wav", std::process::id()))
}

fn synthesize(program: &Path, text: &str, voice: &str, wav: &Path) -> Result<(), TtsError> {
    // The text goes through stdin, so a text starting with `-` is never taken for an option.
    let mut child = Command::new(program)
        .args(["-v", voice, "-s", RATE_WPM, "-w"])
        .arg(wav)
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TtsError::EspeakMissing,
            _ => TtsError::Io {
                path: program.to_path_buf(),
                source: e,
            },
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .map_err(|source| TtsError::Io {
                path: program.to_path_buf(),
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| TtsError::Io {
        path: program.to_path_buf(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    // Note: espeak-ng falls back to its default voice for an unknown one, silently.
    if !output.status.success() || !wav.is_file() {
        return Err(TtsError::Espeak {
            status: output.status.to_string(),
            stderr,
        });
    }
    Ok(())
}

fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), TtsError> {
    let bad = |message: String| TtsError::Wav {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(bad(format!("unexpected format {spec:?}")));
    }
    let channels = usize::from(spec.channels.max(1));
    let all: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    // Mono by averaging channels (espeak writes mono already).
    let samples = all
        .chunks(channels)
        .map(|c| c.iter().map(|&s| f32::from(s)).sum::<f32>() / (channels as f32 * 32768.0))
        .collect::<Vec<f32>>();
    if samples.is_empty() {
        return Err(bad("no samples".into()));
    }
    Ok((samples, spec.sample_rate))
}

/// Resamples to 8 kHz (rubato's synchronous FFT resampler, delay compensated), trims the
/// silence at both ends and normalizes the peak to -3 dBFS.
fn to_8k_normalized(input: &[f32], rate: u32) -> Result<Vec<i16>, TtsError> {
    let mut out = if rate == SAMPLE_RATE {
        input.to_vec()
    } else {
        let want = (input.len() as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(rate)) as usize;
        let mut resampler = FftFixedInOut::<f32>::new(rate as usize, SAMPLE_RATE as usize, 1024, 1)
            .map_err(|e| TtsError::Resample(e.to_string()))?;
        let delay = resampler.output_delay();
        let mut out = Vec::with_capacity(want + delay + 2048);
        let mut pos = 0;
        let mut chunk = Vec::new();
        while out.len() < want + delay {
            let n = resampler.input_frames_next();
            chunk.clear();
            chunk.resize(n, 0.0);
            let take = n.min(input.len().saturating_sub(pos));
            chunk[..take].copy_from_slice(&input[pos..pos + take]);
            pos += take;
            let produced = resampler
                .process(&[&chunk[..]], None)
                .map_err(|e| TtsError::Resample(e.to_string()))?;
            match produced.into_iter().next() {
                Some(ch) if !ch.is_empty() => out.extend_from_slice(&ch),
                _ => return Err(TtsError::Resample("no output".into())),
            }
        }
        out.drain(..delay.min(out.len()));
        out.truncate(want);
        out
    };
    let peak = out.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    // Trim espeak's silence at both ends (keeping 40 ms), so that fragments played one
    // after the other (the closed message) sound like one sentence.
    let floor = peak * 0.02;
    let pad = (SAMPLE_RATE / 25) as usize;
    if let (Some(first), Some(last)) = (
        out.iter().position(|x| x.abs() > floor),
        out.iter().rposition(|x| x.abs() > floor),
    ) {
        let end = (last + 1 + pad).min(out.len());
        out.truncate(end);
        out.drain(..first.saturating_sub(pad));
    }
    if peak > 0.0 {
        // -3 dBFS.
        let gain = 0.707_945_8 / peak;
        for x in &mut out {
            *x *= gain;
        }
    }
    Ok(out
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

fn write_wav(path: &Path, pcm: &[i16]) -> Result<(), TtsError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let bad = |e: hound::Error| TtsError::Wav {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(bad)?;
    for &s in pcm {
        w.write_sample(s).map_err(bad)?;
    }
    w.finalize().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_voice_and_text() {
        let k = cache_key("Bonjour", "fr");
        assert_eq!(k.len(), 64);
        assert!(k
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(k, cache_key("Bonjour", "en"));
        assert_ne!(k, cache_key("Bonjour.", "fr"));
        // The separator keeps ("fr", "x") and ("f", "rx") apart.
        assert_ne!(cache_key("x", "fr"), cache_key("rx", "f"));
        // SHA-256 of "fr\0Bonjour", pinned so shipped file names never change by accident.
        assert_eq!(
            k,
            "13539b291215f301830e32a801b974dd978dc69d1dc666932e677aff71d30905"
        );
        assert_eq!(prompt_name("Bonjour", "fr"), format!("fr/tts/{k}"));
    }
}

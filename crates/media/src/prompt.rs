//! Prompts: WAV files decoded, resampled to 8 kHz (G.711) and 16 kHz (G.722) and encoded in
//! every codec ONCE at load, then shared by every call through `Arc` (a call holds a
//! reference, never a copy).
//!
//! Resampling uses `rubato`'s `FftFixedInOut` (synchronous FFT resampler with a
//! Blackman-Harris windowed-sinc anti-aliasing filter), which handles any integer rate ratio
//! exactly (e.g. 22050 -> 8000 is 441:160).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use rubato::{FftFixedInOut, Resampler};

use crate::{Codec, MediaError};

/// Samples per 20 ms frame at 8 kHz (RFC 3551 §4.5.14 default packetisation).
pub const FRAME_SAMPLES: usize = 160;
/// Rate of every prompt's linear samples and of its G.711 encodings.
pub const SAMPLE_RATE: u32 = 8000;
/// Rate of the audio a prompt's G.722 encoding is made from.
pub const WIDEBAND_RATE: u32 = 16_000;
/// Longest prompt accepted (hold music included): a sanity bound against corrupt headers.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// One prompt, at 8 kHz, padded with silence to whole 20 ms frames, encoded in every codec.
/// A 20 ms frame is 160 octets in all of them (G.722 at 64 kbit/s: 1280 bits).
#[derive(Debug)]
pub struct Prompt {
    name: String,
    pcma: Arc<[u8]>,
    pcmu: Arc<[u8]>,
    /// Encoded at load from 16 kHz audio when the source has it; for an 8 kHz source (all
    /// the shipped and TTS prompts), on first use by a G.722 call: most calls are G.711, and
    /// the daemon's start should not pay for a codec no caller may use.
    g722: OnceLock<Arc<[u8]>>,
    pcm: Arc<[i16]>,
}

impl Prompt {
    /// Builds a prompt from 8 kHz linear samples: pads to whole frames, encodes every codec
    /// (G.722 from the 8 kHz audio as its lower band: there is nothing above 4 kHz to code).
    pub fn from_pcm(name: impl Into<String>, mut pcm: Vec<i16>) -> Prompt {
        pad_to_frames(&mut pcm, FRAME_SAMPLES);
        Prompt {
            name: name.into(),
            pcma: Codec::Pcma.encode(&pcm).into(),
            pcmu: Codec::Pcmu.encode(&pcm).into(),
            g722: OnceLock::new(),
            pcm: pcm.into(),
        }
    }

    /// Builds a prompt from the same audio at 8 kHz (for G.711) and at 16 kHz (for G.722,
    /// which then carries the 4-7 kHz band too). The 16 kHz audio is cut or padded to twice
    /// the 8 kHz length so that every codec has the same frames.
    pub fn from_pcm_wideband(
        name: impl Into<String>,
        mut pcm: Vec<i16>,
        mut pcm16k: Vec<i16>,
    ) -> Prompt {
        pad_to_frames(&mut pcm, FRAME_SAMPLES);
        pcm16k.resize(pcm.len() * 2, 0);
        let mut g722 = Vec::with_capacity(pcm.len());
        crate::g722::Encoder::new().encode(&pcm16k, &mut g722);
        Prompt {
            name: name.into(),
            pcma: Codec::Pcma.encode(&pcm).into(),
            pcmu: Codec::Pcmu.encode(&pcm).into(),
            g722: OnceLock::from(Arc::from(g722)),
            pcm: pcm.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 8 kHz linear samples (a whole number of frames).
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }

    /// The whole prompt encoded in `codec`.
    pub fn encoded(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcma => &self.pcma,
            Codec::Pcmu => &self.pcmu,
            Codec::G722 => self
                .g722
                .get_or_init(|| Codec::G722.encode(&self.pcm).into()),
        }
    }

    /// Makes sure the encoding for `codec` exists, so that the pacing thread never has to
    /// encode (called by [`crate::SessionHandle::play`] on the caller's thread).
    pub fn prepare(&self, codec: Codec) {
        let _ = self.encoded(codec);
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.pcm.len() / FRAME_SAMPLES
    }

    /// One 20 ms frame (160 bytes) of the encoded prompt, `None` past the end. G.722 frames
    /// are cut from one continuous encoding: a playback starting mid-prompt (or looping) meets
    /// a decoder state from other audio, which its ADPCM re-adapts to within milliseconds.
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(FRAME_SAMPLES)?;
        self.encoded(codec).get(start..start + FRAME_SAMPLES)
    }

    /// The 20 ms frames of the encoded prompt, in order.
    pub fn frames(&self, codec: Codec) -> std::slice::ChunksExact<'_, u8> {
        self.encoded(codec).chunks_exact(FRAME_SAMPLES)
    }

    /// Playing time (whole frames).
    pub fn duration(&self) -> Duration {
        Duration::from_millis(20 * self.frame_count() as u64)
    }
}

/// Loads a WAV file (mono, or mixed down from any channel count; 16/24/32-bit integer or
/// 32-bit float; any rate), resamples it once to 8 kHz (PCMA, PCMU) and 16 kHz (G.722) and
/// pre-encodes all three.
pub fn load_wav(path: &Path, name: &str) -> Result<Prompt, MediaError> {
    let reader = hound::WavReader::open(path).map_err(|source| match source {
        hound::Error::IoError(source) => MediaError::Io {
            path: path.to_owned(),
            source,
        },
        source => MediaError::Wav {
            path: path.to_owned(),
            source,
        },
    })?;
    let spec = reader.spec();
    let unsupported = |reason: String| MediaError::UnsupportedAudio {
        path: path.to_owned(),
        reason,
    };
    if spec.channels == 0 {
        return Err(unsupported("zero channels".into()));
    }
    if !(4000..=192_000).contains(&spec.sample_rate) {
        return Err(unsupported(format!("sample rate {} Hz", spec.sample_rate)));
    }
    let frames = u64::from(reader.duration());
    if frames > MAX_DURATION.as_secs() * u64::from(spec.sample_rate) {
        return Err(unsupported(format!("longer than {MAX_DURATION:?}")));
    }

    let wav_err = |source| MediaError::Wav {
        path: path.to_owned(),
        source,
    };
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_err)?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            // Full scale of a `bits`-bit signed sample (hound returns 8-bit WAV as signed too).
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_err)?
        }
        (format, bits) => return Err(unsupported(format!("{format:?} {bits}-bit samples"))),
    };

    // Mix down: the mean of the channels keeps full scale and cannot clip.
    let channels = usize::from(spec.channels);
    let mono: Vec<f32> = interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();

    let to_pcm = |samples: Vec<f32>| -> Vec<i16> {
        samples
            .iter()
            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    };
    let resample_err = |reason| MediaError::Resample {
        path: path.to_owned(),
        reason,
    };
    let pcm = to_pcm(resample(&mono, spec.sample_rate, SAMPLE_RATE).map_err(resample_err)?);
    if spec.sample_rate <= SAMPLE_RATE {
        // Nothing above 4 kHz to keep: G.722 codes the 8 kHz audio as its lower band.
        return Ok(Prompt::from_pcm(name, pcm));
    }
    let pcm16k = to_pcm(resample(&mono, spec.sample_rate, WIDEBAND_RATE).map_err(resample_err)?);
    Ok(Prompt::from_pcm_wideband(name, pcm, pcm16k))
}

fn pad_to_frames(pcm: &mut Vec<i16>, frame: usize) {
    let rem = pcm.len() % frame;
    if rem != 0 {
        pcm.resize(pcm.len() + frame - rem, 0);
    }
}

/// Resamples mono audio to `out_rate`, compensating the filter delay so that output sample k
/// is input time k/out_rate s, and trimming to the input's duration. An 8 kHz source
/// upsampled to 16 kHz simply has nothing above 4 kHz.
fn resample(input: &[f32], rate: u32, out_rate: u32) -> Result<Vec<f32>, String> {
    if rate == out_rate {
        return Ok(input.to_vec());
    }
    let want = (input.len() as u64 * u64::from(out_rate)).div_ceil(u64::from(rate)) as usize;
    if input.is_empty() {
        return Ok(Vec::new());
    }
    // About 1024 input frames per chunk; rubato rounds up to a whole number of rate ratios.
    let mut resampler = FftFixedInOut::<f32>::new(rate as usize, out_rate as usize, 1024, 1)
        .map_err(|e| e.to_string())?;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(want + delay + 2048);
    let mut pos = 0;
    let mut chunk = vec![0.0f32; resampler.input_frames_next()];
    // Feed the input, then zeros until the delayed tail is out.
    while out.len() < want + delay {
        let n = resampler.input_frames_next();
        chunk.clear();
        chunk.resize(n, 0.0);
        let take = n.min(input.len().saturating_sub(pos));
        chunk[..take].copy_from_slice(&input[pos..pos + take]);
        pos += take;
        let produced = resampler
            .process(&[&chunk[..]], None)
            .map_err(|e| e.to_string())?;
        match produced.into_iter().next() {
            Some(ch) if !ch.is_empty() => out.extend_from_slice(&ch),
            _ => return Err("resampler produced no output".into()),
        }
    }
    out.drain(..delay.min(out.len()));
    out.truncate(want);
    Ok(out)
}

/// Thread-safe cache of prompts by name (`"fr/bienvenue"` -> `<root>/fr/bienvenue.wav`).
#[derive(Debug)]
pub struct PromptCache {
    root: PathBuf,
    prompts: RwLock<HashMap<String, Arc<Prompt>>>,
}

impl PromptCache {
    pub fn new(root: PathBuf) -> PromptCache {
        PromptCache {
            root,
            prompts: RwLock::new(HashMap::new()),
        }
    }

    /// The cached prompt, or loads `<root>/<name>.wav` once. The file is decoded outside the
    /// lock; if two callers race, the first one inserted wins and both get the same `Arc`.
    pub fn get_or_load(&self, name: &str) -> Result<Arc<Prompt>, MediaError> {
        if let Some(p) = self.get(name) {
            return Ok(p);
        }
        let path = self.path_of(name)?;
        let loaded = Arc::new(load_wav(&path, name)?);
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut map = self.prompts.write().unwrap_or_else(|e| e.into_inner());
        Ok(map.entry(name.to_owned()).or_insert(loaded).clone())
    }

    /// The cached prompt, without loading.
    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        let map = self.prompts.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }

    /// Adds or replaces a prompt (TTS renderings, reloads).
    pub fn insert(&self, name: impl Into<String>, prompt: Arc<Prompt>) {
        let mut map = self.prompts.write().unwrap_or_else(|e| e.into_inner());
        map.insert(name.into(), prompt);
    }

    /// Forgets every cached prompt (calls playing them keep their `Arc`).
    pub fn clear(&self) {
        self.prompts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `<root>/<name>.wav`, refusing names that are empty, absolute or contain `..`, so a
    /// dialplan cannot read outside the prompt directory.
    fn path_of(&self, name: &str) -> Result<PathBuf, MediaError> {
        let rel = Path::new(name);
        let ok = !name.is_empty()
            && !name.contains('\0')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(MediaError::InvalidPromptName(name.to_owned()));
        }
        Ok(self.root.join(format!("{name}.wav")))
    }
}

#[cfg(test)]
mod tests;

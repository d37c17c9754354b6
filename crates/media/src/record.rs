//! Message recording ("dépôt de message"), the pure part: what goes into the file and when
//! the recording ends. No IO and no clock reads: `now` is a parameter. The engine's receive
//! task feeds it the caller's decoded audio and digits, and hands [`Recorder::take_samples`]
//! to a writer on a blocking thread (`engine/recording.rs`), never to the pacer.
//!
//! - Audio is 8 kHz 16-bit mono (G.722 contributes its lower band), in arrival order. A
//!   packet whose RTP timestamp jumps ahead of the previous one's end (lost packets, or
//!   silence suppression) is preceded by that much silence, up to [`MAX_GAP_FILL`]; a late
//!   or duplicated packet, whose time is already covered, is dropped (RFC 3550 §5.1: the
//!   timestamp, not the arrival, places a packet in time).
//! - It ends when `max` has elapsed (or that much audio was taken, should packets come in
//!   faster than real time), after `silence` without speech once the caller has spoken,
//!   on the stop key (`#`), or on [`Recorder::stop`].
//! - The stop key is not part of the message: the last [`HOLDBACK`] samples are held back
//!   so that the key's audio, detected only once the key is released, can be cut off.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dtmf::{DtmfEvent, DtmfSource};

/// Sampling rate of recordings (and of the RTP clock of every codec we speak).
pub const RECORD_RATE: u32 = 8000;
/// Silence after speech that ends a recording by default.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(5);
/// A 20 ms frame whose RMS reaches this counts as speech: about -36 dBov, well above the
/// noise of a phone line (-60 to -50 dBov) and below quiet speech (-30 to -20 dBov).
pub const SPEECH_RMS: f64 = 500.0;
/// Speech heard for this long (100 ms) arms the silence detector, so a click does not.
const SPEECH_ARM_SAMPLES: u64 = 800;
/// Samples held back from the writer (1 s), to cut the stop key's tone off the end.
pub const HOLDBACK: usize = RECORD_RATE as usize;
/// The longest timestamp gap filled with silence (1 s); a longer jump is a new timeline.
pub const MAX_GAP_FILL: u32 = RECORD_RATE;
/// Cut after an in-band key beyond its reported duration: the detector reports a key two
/// 12.75 ms blocks after its end, within a 20 ms packet already taken, plus tone edges.
const INBAND_KEY_MARGIN_MS: u32 = 100;
/// Cut after an RFC 4733 key whose start cannot be placed on the audio timeline.
const RFC4733_KEY_MARGIN_MS: u32 = 20;

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordEnd {
    /// `max` elapsed.
    MaxReached,
    /// The caller spoke, then was silent for the silence timeout (5 s by default).
    Silence,
    /// The caller pressed the stop key (`#`); the key itself is not recorded.
    Key,
    /// `stop_record()`, a new `record()`, or the session closed.
    Stopped,
}

/// How a recording ends; [`RecordOptions::new`] gives the usual voicemail settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOptions {
    /// Longest recording (wall time from its start).
    pub max: Duration,
    /// Silence after speech that ends the recording; `None`: never.
    pub silence: Option<Duration>,
    /// Key that ends the recording (not recorded); `None`: none.
    pub stop_key: Option<char>,
}

impl RecordOptions {
    /// At most `max`, ended by 5 s of silence after speech or by `#`.
    pub fn new(max: Duration) -> RecordOptions {
        RecordOptions {
            max,
            silence: Some(DEFAULT_SILENCE),
            stop_key: Some('#'),
        }
    }
}

/// One recording's state machine.
#[derive(Debug)]
pub struct Recorder {
    options: RecordOptions,
    /// Start + max (`None` if that Instant cannot be represented: only the cap applies).
    deadline: Option<Instant>,
    /// Most samples taken: `max` worth of audio.
    cap: u64,
    /// SSRC of the audio and the RTP timestamp where its last packet ended.
    timeline: Option<(u32, u32)>,
    held: VecDeque<i16>,
    ready: Vec<i16>,
    /// Samples taken so far (handed out and held).
    total: u64,
    speech: u64,
    last_speech: Option<Instant>,
    end: Option<RecordEnd>,
}

impl Recorder {
    pub fn new(now: Instant, options: RecordOptions) -> Recorder {
        let cap = u64::try_from(options.max.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(RECORD_RATE / 1000));
        Recorder {
            options,
            deadline: now.checked_add(options.max),
            cap,
            timeline: None,
            held: VecDeque::with_capacity(HOLDBACK + 320),
            ready: Vec::new(),
            total: 0,
            speech: 0,
            last_speech: None,
            end: None,
        }
    }

    /// One audio packet from the caller, decoded to 8 kHz, with its RTP SSRC and timestamp.
    pub fn handle_audio(&mut self, now: Instant, ssrc: u32, timestamp: u32, pcm: &[i16]) {
        self.handle_timeout(now);
        if self.end.is_some() {
            return;
        }
        if let Some((_, next)) = self.timeline.filter(|(s, _)| *s == ssrc) {
            // Modular difference (RFC 3550 §5.1: timestamps wrap).
            let delta = timestamp.wrapping_sub(next) as i32;
            if delta < 0 && delta.unsigned_abs() <= MAX_GAP_FILL {
                return; // late or duplicated: its time is already in the file
            }
            if delta > 0 && delta.unsigned_abs() <= MAX_GAP_FILL {
                self.push(std::iter::repeat_n(0, delta.unsigned_abs() as usize));
            }
            // A longer jump either way: a new timeline, nothing to fill.
        }
        let len = u32::try_from(pcm.len()).unwrap_or(u32::MAX);
        self.timeline = Some((ssrc, timestamp.wrapping_add(len)));
        if !pcm.is_empty() && rms(pcm) >= SPEECH_RMS {
            self.speech += pcm.len() as u64;
            self.last_speech = Some(now);
        }
        self.push(pcm.iter().copied());
    }

    /// A digit from the caller. For RFC 4733, `event_start` is the SSRC and RTP timestamp
    /// of its event packets (RFC 4733 §2.3.1: the audio's timeline), so the audio from the
    /// key's start on is cut exactly.
    pub fn handle_digit(&mut self, now: Instant, ev: &DtmfEvent, event_start: Option<(u32, u32)>) {
        self.handle_timeout(now);
        if self.end.is_some() || self.options.stop_key != Some(ev.digit) {
            return;
        }
        let ms = |ms: u32| ms as usize * (RECORD_RATE / 1000) as usize;
        let cut = match (ev.source, event_start, self.timeline) {
            (DtmfSource::Rfc4733, Some((ssrc, ts)), Some((s, next))) if ssrc == s => {
                let after_start = next.wrapping_sub(ts) as i32;
                if after_start > 0 {
                    after_start.unsigned_abs() as usize
                } else {
                    0 // no audio since the key went down
                }
            }
            (DtmfSource::Rfc4733, _, _) => ms(ev.duration_ms.saturating_add(RFC4733_KEY_MARGIN_MS)),
            _ => ms(ev.duration_ms.saturating_add(INBAND_KEY_MARGIN_MS)),
        };
        let cut = cut.min(self.held.len());
        self.held.truncate(self.held.len() - cut);
        self.total -= cut as u64;
        self.finish(RecordEnd::Key);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.end.is_some() {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.finish(RecordEnd::MaxReached);
        } else if self.silence_deadline().is_some_and(|d| d <= now) {
            self.finish(RecordEnd::Silence);
        }
    }

    /// The next instant [`Recorder::handle_timeout`] must be called (none once ended).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        [self.deadline, self.silence_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Ends the recording now ([`RecordEnd::Stopped`]), keeping everything taken.
    pub fn stop(&mut self) {
        self.finish(RecordEnd::Stopped);
    }

    /// Samples ready for the file, in order; everything once ended.
    pub fn take_samples(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.ready)
    }

    /// Why the recording ended, once it has.
    pub fn ended(&self) -> Option<RecordEnd> {
        self.end
    }

    /// Length of the audio taken so far (handed out or held).
    pub fn recorded(&self) -> Duration {
        samples_duration(self.total)
    }

    fn silence_deadline(&self) -> Option<Instant> {
        let silence = self.options.silence?;
        if self.speech < SPEECH_ARM_SAMPLES {
            return None;
        }
        self.last_speech?.checked_add(silence)
    }

    fn push(&mut self, samples: impl Iterator<Item = i16>) {
        let room = usize::try_from(self.cap.saturating_sub(self.total)).unwrap_or(usize::MAX);
        let before = self.held.len();
        self.held.extend(samples.take(room));
        self.total += (self.held.len() - before) as u64;
        if self.held.len() > HOLDBACK {
            let over = self.held.len() - HOLDBACK;
            self.ready.extend(self.held.drain(..over));
        }
        if self.total >= self.cap {
            self.finish(RecordEnd::MaxReached);
        }
    }

    fn finish(&mut self, reason: RecordEnd) {
        if self.end.is_none() {
            self.end = Some(reason);
            self.ready.extend(self.held.drain(..));
        }
    }
}

/// Duration of `samples` at 8 kHz (125 µs each).
pub fn samples_duration(samples: u64) -> Duration {
    Duration::from_micros(samples.saturating_mul(1_000_000 / u64::from(RECORD_RATE)))
}

fn rms(pcm: &[i16]) -> f64 {
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}

#[cfg(test)]
mod tests;

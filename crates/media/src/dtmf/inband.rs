//! In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 acceptance) with the Goertzel
//! algorithm over 102-sample blocks of 8 kHz audio (12.75 ms, the block size spandsp uses: its
//! 78 Hz resolution puts the neighbouring row tones, 73-89 Hz apart, near a null of each
//! other's filter).
//!
//! A block counts as a digit only if every test below passes; a digit needs two consecutive
//! blocks (≥ 25.5 ms of tone, so a 40 ms tone is always seen: Q.24 accepts ≥ 40 ms) and ends
//! after two blocks without it (so a 40 ms pause always separates two presses).
//! Used only when the peer offered no telephone-event.

use std::collections::VecDeque;

use super::{DtmfEvent, DtmfSource};

/// Samples per analysis block.
pub const BLOCK: usize = 102;
const RATE: f32 = 8000.0;
/// Q.23 low group (rows) and high group (columns), Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Q.23 keypad layout: rows x columns.
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Weakest tone accepted, as a peak amplitude on the 16-bit scale: about -38 dBov, below
/// Q.24's weakest required level (-25 to -30 dBm0 by administration).
const MIN_AMPLITUDE: f32 = 400.0;
/// Twist limits (Q.24 §4.4 style): the low tone may be up to 8 dB louder than the high tone
/// ("normal" twist, lines attenuate high frequencies) and up to 4 dB weaker ("reverse").
const NORMAL_TWIST_DB: f32 = 8.0;
const REVERSE_TWIST_DB: f32 = 4.0;
/// The best row (column) must stand this far above the other rows (columns).
const RELATIVE_PEAK_DB: f32 = 8.0;
/// Share of the block's energy that the two tones must hold: speech and music spread theirs.
const MIN_TONE_SHARE: f32 = 0.70;
/// Second harmonic of the high tone must be this far below it: pure tones have none, voiced
/// speech has many.
const HARMONIC_REJECT_DB: f32 = 12.0;

fn db(x: f32) -> f32 {
    10f32.powf(x / 10.0)
}

/// Goertzel filter coefficient 2·cos(2πf/fs).
fn coeff(freq: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * freq / RATE).cos()
}

/// |X(f)|² of the block at `freq`, for a real input (second-order Goertzel recursion).
fn goertzel(block: &[f32], k: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// Classifies one block: the digit whose two tones it holds, if all checks pass.
fn classify(block: &[f32]) -> Option<char> {
    let energy: f32 = block.iter().map(|x| x * x).sum();
    let n = block.len() as f32;
    // A sinusoid of peak A gives |X|² = (A·N/2)² at its frequency.
    let min_power = (MIN_AMPLITUDE * n / 2.0).powi(2);
    if energy * n / 2.0 < 2.0 * min_power {
        return None;
    }
    let rows: Vec<f32> = ROWS.iter().map(|&f| goertzel(block, coeff(f))).collect();
    let cols: Vec<f32> = COLS.iter().map(|&f| goertzel(block, coeff(f))).collect();
    let best = |v: &[f32]| {
        let mut i = 0;
        for (j, &p) in v.iter().enumerate() {
            if p > v[i] {
                i = j;
            }
        }
        i
    };
    let (r, c) = (best(&rows), best(&cols));
    let (pr, pc) = (rows[r], cols[c]);
    if pr < min_power || pc < min_power {
        return None;
    }
    if pr > pc * db(NORMAL_TWIST_DB) || pc > pr * db(REVERSE_TWIST_DB) {
        return None;
    }
    let peak = db(RELATIVE_PEAK_DB);
    let stands_out = |v: &[f32], i: usize| {
        v.iter()
            .enumerate()
            .all(|(j, &p)| j == i || p * peak < v[i])
    };
    if !stands_out(&rows, r) || !stands_out(&cols, c) {
        return None;
    }
    // For a pure dual tone, (|X(f1)|² + |X(f2)|²) / (E·N/2) is 1; anything else lowers it.
    if (pr + pc) / (energy * n / 2.0) < MIN_TONE_SHARE {
        return None;
    }
    if goertzel(block, coeff(2.0 * COLS[c])) * db(HARMONIC_REJECT_DB) > pc {
        return None;
    }
    Some(KEYS[r][c])
}

/// Streaming in-band detector; feed decoded 8 kHz audio in any chunk sizes.
#[derive(Debug)]
pub struct InbandDetector {
    block: Vec<f32>,
    /// Digit seen in the previous block(s) but not yet confirmed, and how many blocks.
    candidate: Option<(char, u32)>,
    /// Confirmed digit being held, blocks with it, consecutive blocks without it.
    held: Option<(char, u32, u32)>,
    events: VecDeque<DtmfEvent>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector {
            block: Vec::with_capacity(BLOCK),
            candidate: None,
            held: None,
            events: VecDeque::new(),
        }
    }
}

/// Blocks of tone needed to accept a digit, and of absence to end it.
const ON_BLOCKS: u32 = 2;
const OFF_BLOCKS: u32 = 2;

impl InbandDetector {
    pub fn new() -> InbandDetector {
        InbandDetector::default()
    }

    /// Feeds samples; digits come out of [`InbandDetector::poll_event`] when they end.
    pub fn process(&mut self, samples: &[i16]) {
        for &s in samples {
            self.block.push(f32::from(s));
            if self.block.len() == BLOCK {
                let hit = classify(&self.block);
                self.block.clear();
                self.step(hit);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn step(&mut self, hit: Option<char>) {
        if let Some((digit, on, off)) = self.held {
            if hit == Some(digit) {
                self.held = Some((digit, on + 1, 0));
                return;
            }
            if off + 1 < OFF_BLOCKS {
                self.held = Some((digit, on, off + 1));
                return;
            }
            self.held = None;
            self.events.push_back(DtmfEvent {
                digit,
                duration_ms: on * BLOCK as u32 * 1000 / RATE as u32,
                source: DtmfSource::Inband,
            });
            // The block that ended the digit may start the next one.
        }
        self.candidate = match (hit, self.candidate) {
            (None, _) => None,
            (Some(d), Some((c, n))) if d == c => Some((c, n + 1)),
            (Some(d), _) => Some((d, 1)),
        };
        if let Some((digit, n)) = self.candidate {
            if n >= ON_BLOCKS {
                self.held = Some((digit, n, 0));
                self.candidate = None;
            }
        }
    }
}

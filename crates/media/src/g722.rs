//! ITU-T G.722 at 64 kbit/s (mode 1): 16 kHz audio split by a 24-tap QMF into two 8 kHz
//! sub-bands, the lower coded with 6-bit and the upper with 2-bit ADPCM; one octet per pair of
//! input samples (G.722 §1.4: upper-band bits in the two MSBs). RFC 3551 §4.5.2: the RTP
//! clock is 8000 Hz although the audio is sampled at 16 kHz, so a 20 ms frame is 160 octets
//! and 160 timestamp units, exactly as G.711.
//!
//! Written from the block diagrams of G.722 §3-§4 (block names in the comments: SUBTRA,
//! QUANTL, INVQAL, LOGSCL, SCALEL, RECONS, PARREC, UPPOL1/2, UPZERO, FILTEP, FILTEZ, PREDIC,
//! and their upper-band twins), with the standard's quantizer and scale-factor tables.
//!
//! "Narrowband" helpers run the lower band alone at 8 kHz, which is how a G.711 leg is
//! bridged to a G.722 one without resampling: the lower sub-band IS the 0-4 kHz signal at
//! 8 kHz (the QMF's gain makes it half the input level, hence the one-bit shifts).

/// QMF coefficients (G.722 Table 11), for the even and odd taps of the 24-tap filter.
const QMF_FWD: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const QMF_REV: [i32; 12] = [-11, 53, -156, 362, -805, 3876, 951, -210, 32, 12, -11, 3];

/// Lower band: inverse quantizer outputs of the 6-bit code (Table 14, scaled by 8).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Lower band: the 4-bit truncated code's inverse quantizer (feeds the predictor).
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Lower band decision levels (Table 12, scaled) and the codes for negative / positive
/// differences per interval.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Lower band log scale factor: magnitude class of the 4-bit code, and its multiplier.
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Inverse log table of the scale factor (Table 15).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Upper band: inverse quantizer, codes, log scale factor (Tables 16-17).
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];
const RH2: [usize; 4] = [2, 1, 2, 1];
const WH: [i32; 3] = [0, -214, 798];

fn sat16(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// LIMIT blocks: the reconstructed sub-band signal is 15 bits.
fn sat15(v: i32) -> i32 {
    v.clamp(-16384, 16383)
}

/// The adaptive predictor and scale factor of one sub-band (G.722 §3.6 blocks 3 and 4).
#[derive(Debug, Clone)]
struct Band {
    /// Predicted signal (PREDIC) and its zero-section part (FILTEZ).
    s: i32,
    sz: i32,
    /// Previous reconstructed signal.
    r: i32,
    /// Pole coefficients and the last two partially reconstructed signals.
    a: [i32; 2],
    p: [i32; 2],
    /// Zero coefficients and the last quantized differences (d[0] newest).
    b: [i32; 6],
    d: [i32; 7],
    /// Log scale factor and the scale factor (det).
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: 0,
            a: [0; 2],
            p: [0; 2],
            b: [0; 6],
            d: [0; 7],
            nb: 0,
            det,
        }
    }

    /// LOGSCL/LOGSCH then SCALEL/SCALEH: adapt the scale factor. `max_nb` and `shift_base`
    /// differ between the bands (18432 / 8 lower, 22528 / 10 upper).
    fn adapt_scale(&mut self, w: i32, max_nb: i32, shift_base: i32) {
        self.nb = (((self.nb * 127) >> 7) + w).clamp(0, max_nb);
        let idx = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let v = if shift < 0 {
            ILB[idx] << -shift
        } else {
            ILB[idx] >> shift
        };
        self.det = v << 2;
    }

    /// Block 4: reconstruct, adapt the pole and zero predictors, predict the next sample.
    fn update(&mut self, dx: i32) {
        // RECONS and PARREC.
        let r = sat16(self.s + dx);
        let p = sat16(self.sz + dx);
        let sign_differs = |x: i32, y: i32| (x ^ y) & 0x8000 != 0;

        // UPPOL2: second pole coefficient.
        let wd1 = sat16(self.a[0] << 2);
        let wd2 = if sign_differs(p, self.p[0]) {
            wd1
        } else {
            -wd1
        }
        .min(32767);
        let a2 = (if sign_differs(p, self.p[1]) {
            -128
        } else {
            128
        }) + (wd2 >> 7)
            + ((self.a[1] * 32512) >> 15);
        let a2 = a2.clamp(-12288, 12288);

        // UPPOL1: first pole coefficient, limited by the stability bound 15360 - |a2|.
        let a1 = sat16(
            (if sign_differs(p, self.p[0]) {
                -192
            } else {
                192
            }) + ((self.a[0] * 32640) >> 15),
        );
        let bound = sat16(15360 - a2);
        let a1 = a1.clamp(-bound, bound);

        // FILTEP: pole section of the predictor.
        let sp = sat16(((a1 * sat16(r + r)) >> 15) + ((a2 * sat16(self.r + self.r)) >> 15));
        self.r = r;
        self.a = [a1, a2];
        self.p = [p, self.p[0]];

        // UPZERO and FILTEZ: sign-sign adaptation of the six zero coefficients.
        let step = if dx == 0 { 0 } else { 128 };
        self.d[0] = dx;
        let mut sz = 0;
        for i in (0..6).rev() {
            let g = if sign_differs(self.d[i + 1], dx) {
                -step
            } else {
                step
            };
            self.b[i] = sat16(g + ((self.b[i] * 32640) >> 15));
            sz += (self.b[i] * sat16(self.d[i] + self.d[i])) >> 15;
            self.d[i + 1] = self.d[i];
        }
        self.sz = sat16(sz);
        // PREDIC.
        self.s = sat16(sp + self.sz);
    }
}

/// The 12-sample delay lines of a QMF (transmit or receive).
#[derive(Debug, Clone, Default)]
struct Qmf {
    x: [i32; 12],
    y: [i32; 12],
    pos: usize,
}

impl Qmf {
    fn push(&mut self, x: i32, y: i32) {
        self.x[self.pos] = x;
        self.y[self.pos] = y;
        self.pos = (self.pos + 1) % 12;
    }

    /// Σ line[oldest + k] * coeffs[k].
    fn dot(line: &[i32; 12], pos: usize, coeffs: &[i32; 12]) -> i32 {
        (0..12).map(|k| line[(pos + k) % 12] * coeffs[k]).sum()
    }
}

/// Lower-band ADPCM step shared by the full and narrowband encoders: returns the 6-bit code.
fn encode_low(band: &mut Band, xlow: i32) -> u8 {
    // SUBTRA, then QUANTL: find the decision interval of |el|.
    let el = sat16(xlow - band.s);
    let wd = if el >= 0 { el } else { -(el + 1) };
    let mut i = 1;
    while i < 30 && wd >= (Q6[i] * band.det) >> 12 {
        i += 1;
    }
    let ilow = if el < 0 { ILN[i] } else { ILP[i] };
    // INVQAL with the 4-bit truncated code: what the decoder's predictor will also see.
    let ril = usize::from(ilow >> 2);
    let dlow = (band.det * QM4[ril]) >> 15;
    band.adapt_scale(WL[RL42[ril]], 18432, 8);
    band.update(dlow);
    ilow
}

/// Lower-band decoding of a 6-bit code: the reconstructed 15-bit signal.
fn decode_low(band: &mut Band, ilow: u8) -> i32 {
    let code = usize::from(ilow & 0x3F);
    let rlow = sat15(band.s + ((band.det * QM6[code]) >> 15));
    let ril = code >> 2;
    let dlow = (band.det * QM4[ril]) >> 15;
    band.adapt_scale(WL[RL42[ril]], 18432, 8);
    band.update(dlow);
    rlow
}

/// G.722 encoder state (one direction of one call).
#[derive(Debug, Clone)]
pub struct Encoder {
    low: Band,
    high: Band,
    qmf: Qmf,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        // G.722 §6.1 reset values of the scale factors.
        Encoder {
            low: Band::new(32),
            high: Band::new(8),
            qmf: Qmf::default(),
        }
    }

    /// Encodes 16 kHz samples, appending one octet per pair (an odd last sample is dropped).
    pub fn encode(&mut self, pcm16k: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm16k.len() / 2);
        for pair in pcm16k.chunks_exact(2) {
            // Transmit QMF: split into the two 8 kHz sub-bands.
            self.qmf.push(i32::from(pair[0]), i32::from(pair[1]));
            let odd = Qmf::dot(&self.qmf.x, self.qmf.pos, &QMF_FWD);
            let even = Qmf::dot(&self.qmf.y, self.qmf.pos, &QMF_REV);
            // >> 14: the filters' DC gain of 4096, the sum of two filters, and the
            // algorithm's 15-bit input.
            let xlow = sat16((even + odd) >> 14);
            let xhigh = sat16((even - odd) >> 14);
            let ilow = encode_low(&mut self.low, xlow);

            // Upper band: SUBTRA, QUANTH (2 bits), INVQAH, LOGSCH, SCALEH.
            let eh = sat16(xhigh - self.high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * self.high.det) >> 12 {
                2
            } else {
                1
            };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            let dhigh = (self.high.det * QM2[usize::from(ihigh)]) >> 15;
            self.high
                .adapt_scale(WH[RH2[usize::from(ihigh)]], 22528, 10);
            self.high.update(dhigh);
            out.push((ihigh << 6) | ilow);
        }
    }

    /// Encodes 8 kHz samples as the lower band alone (the upper band stays at its smallest
    /// code): one octet per sample, for G.711 audio sent to a G.722 peer.
    pub fn encode_narrowband(&mut self, pcm8k: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm8k.len());
        for &s in pcm8k {
            let ilow = encode_low(&mut self.low, i32::from(s) >> 1);
            out.push(0xC0 | ilow);
        }
    }
}

/// G.722 decoder state (one direction of one call).
#[derive(Debug, Clone)]
pub struct Decoder {
    low: Band,
    high: Band,
    qmf: Qmf,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            low: Band::new(32),
            high: Band::new(8),
            qmf: Qmf::default(),
        }
    }

    /// Decodes to 16 kHz samples, two per octet. Every octet is a valid code, so any input
    /// decodes (to noise if it is not G.722).
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) {
        out.reserve(data.len() * 2);
        for &code in data {
            let rlow = decode_low(&mut self.low, code & 0x3F);
            // Upper band: INVQAH, RECONS, LIMIT, LOGSCH, SCALEH.
            let ihigh = usize::from(code >> 6);
            let dhigh = (self.high.det * QM2[ihigh]) >> 15;
            let rhigh = sat15(dhigh + self.high.s);
            self.high.adapt_scale(WH[RH2[ihigh]], 22528, 10);
            self.high.update(dhigh);
            // Receive QMF: interleave the sub-bands back to 16 kHz (>> 11: DC gain 4096,
            // less one bit for the 15-bit sub-band signals).
            self.qmf.push(rlow + rhigh, rlow - rhigh);
            let a = Qmf::dot(&self.qmf.y, self.qmf.pos, &QMF_REV) >> 11;
            let b = Qmf::dot(&self.qmf.x, self.qmf.pos, &QMF_FWD) >> 11;
            out.push(sat16(a) as i16);
            out.push(sat16(b) as i16);
        }
    }

    /// Decodes the lower band alone: the 0-4 kHz audio at 8 kHz, one sample per octet (for
    /// transcoding to G.711 and for in-band DTMF detection).
    pub fn decode_narrowband(&mut self, data: &[u8], out: &mut Vec<i16>) {
        out.reserve(data.len());
        for &code in data {
            let rlow = decode_low(&mut self.low, code & 0x3F);
            out.push(sat16(rlow << 1) as i16);
        }
    }
}

#[cfg(test)]
mod tests;

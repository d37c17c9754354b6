//! ITU-T G.711 A-law and µ-law, table-free.
//!
//! This is the classic segment-search formulation of the ITU reference (the same arithmetic as
//! the Sun Microsystems public-domain `g711.c`, which is bit-exact with G.711 and G.191's
//! reference software). A-law works on the 13 most significant bits of the linear sample,
//! µ-law on the 14 most significant bits.

/// Upper bounds of the 8 A-law segments on the 13-bit magnitude (G.711 Table 1a).
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// Upper bounds of the 8 µ-law segments on the biased 14-bit magnitude (G.711 Table 2a).
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// µ-law bias (33 on the 14-bit scale, 0x84 on the 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// µ-law clip level on the 14-bit scale: larger magnitudes saturate to the top code.
const ULAW_CLIP: i32 = 8159;

fn segment(value: i32, table: &[i32; 8]) -> usize {
    table.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Encodes one 16-bit linear sample to A-law (even bits inverted, as sent on the wire).
pub fn alaw_encode(pcm: i16) -> u8 {
    let mut value = i32::from(pcm) >> 3;
    // Sign bit set (0x80) means positive in A-law; 0x55 is the even-bit inversion.
    let mask: i32 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = (seg as i32) << 4;
    aval |= if seg < 2 {
        (value >> 1) & 0x0F
    } else {
        (value >> seg) & 0x0F
    };
    (aval ^ mask) as u8
}

/// Decodes one A-law byte to a 16-bit linear sample (the centre of the quantisation step).
pub fn alaw_decode(alaw: u8) -> i16 {
    let a = i32::from(alaw ^ 0x55);
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    // Largest magnitude is 0x7E00 = 32256: always fits in i16.
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Encodes one 16-bit linear sample to µ-law (all bits inverted, as sent on the wire).
pub fn ulaw_encode(pcm: i16) -> u8 {
    // G.191 (ITU-T STL) takes the one's complement of negative samples, so that -1 encodes as
    // "negative zero" 0x7F (the Sun g711.c negation would give 0x7E).
    let pcm = i32::from(pcm);
    let mut value = pcm >> 2;
    let mask: i32 = if pcm < 0 {
        value = !pcm >> 2;
        0x7F
    } else {
        0xFF
    };
    value = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(value, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((value >> (seg + 1)) & 0x0F);
    (uval ^ mask) as u8
}

/// Decodes one µ-law byte to a 16-bit linear sample.
pub fn ulaw_decode(ulaw: u8) -> i16 {
    let u = i32::from(!ulaw);
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    // Largest magnitude is 32124: always fits in i16.
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values_alaw() {
        // Silence and the extremes, from G.711 Table 1a / G.191 reference output.
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        // Segment boundaries: 13-bit value 32 (linear 256) opens segment 2.
        // Segment boundary: linear 256 opens segment 1 (step 16), decoded at its centre 264.
        assert_eq!(alaw_encode(256), 0xC5);
        assert_eq!(alaw_decode(0xC5), 264);
        // First entries of the standard alaw-to-linear table (SpanDSP, Asterisk, G.191).
        let table = [
            -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, //
            -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
        ];
        for (code, want) in table.iter().enumerate() {
            assert_eq!(alaw_decode(code as u8), *want, "A-law {code:#04x}");
        }
        assert_eq!(alaw_decode(0x80), 5504);
    }

    #[test]
    fn reference_values_ulaw() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // First and last entries of the standard ulaw-to-linear table (SpanDSP, Asterisk, G.191).
        let table = [
            -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956,
        ];
        for (code, want) in table.iter().enumerate() {
            assert_eq!(ulaw_decode(code as u8), *want, "µ-law {code:#04x}");
        }
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0xF0), 120);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
            if code != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(code)), code, "µ-law {code:#04x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded_and_monotonic() {
        let mut prev_a = i16::MIN;
        let mut prev_u = i16::MIN;
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let a = alaw_decode(alaw_encode(x));
            let u = ulaw_decode(ulaw_encode(x));
            assert!(a >= prev_a && u >= prev_u, "not monotonic at {x}");
            prev_a = a;
            prev_u = u;
            // Step size of the top segment is 1024 (A-law) / 1024 (µ-law): error <= half a step,
            // plus the clipping region at the very top.
            let tol = 1024 + 512;
            assert!(
                (i32::from(a) - i32::from(x)).abs() <= tol,
                "A-law error at {x}: {a}"
            );
            assert!(
                (i32::from(u) - i32::from(x)).abs() <= tol,
                "µ-law error at {x}: {u}"
            );
            // Relative error is below 1/32 + bias effects in the companded range (the point of G.711).
            if x.unsigned_abs() > 256 && x.unsigned_abs() < 31_000 {
                let rel = (f64::from(a) - f64::from(x)).abs() / f64::from(x).abs();
                assert!(rel < 0.04, "A-law relative error {rel} at {x}");
                let rel = (f64::from(u) - f64::from(x)).abs() / f64::from(x).abs();
                assert!(rel < 0.04, "µ-law relative error {rel} at {x}");
            }
        }
    }
}

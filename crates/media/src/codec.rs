//! The audio codecs the engine speaks: G.711 A-law and µ-law (RFC 3551 §4.5.14) and G.722
//! (RFC 3551 §4.5.2). All three use an 8000 Hz RTP clock and 160-octet 20 ms frames, so the
//! pacer treats them alike; only G.722 carries 16 kHz audio and keeps coder state.

use crate::{g711, g722};

/// A codec, with its static RTP payload type (RFC 3551 §6, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 A-law, static payload type 8. Preferred: France's PSTN uses A-law.
    Pcma,
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.722 at 64 kbit/s, static payload type 9: 16 kHz audio, 8 kHz RTP clock.
    G722,
}

impl Codec {
    /// RTP clock rate of all three (RFC 3551 §4.5.2 keeps 8000 for G.722 although it samples
    /// at 16 kHz, an error of the original RFC 1890 kept for compatibility).
    pub const CLOCK_RATE: u32 = 8000;

    /// The static payload type (RFC 3551 §6).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcma => 8,
            Codec::Pcmu => 0,
            Codec::G722 => 9,
        }
    }

    /// The encoding name as written in `a=rtpmap` (RFC 3551 §6).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
            Codec::G722 => "G722",
        }
    }

    /// The audio sampling rate (not the RTP clock).
    pub const fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcma | Codec::Pcmu => 8000,
            Codec::G722 => 16_000,
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            8 => Some(Codec::Pcma),
            0 => Some(Codec::Pcmu),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    /// The codec for an `a=rtpmap` encoding name (case-insensitive, RFC 4566 §6).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcma, Codec::Pcmu, Codec::G722]
            .into_iter()
            .find(|c| name.eq_ignore_ascii_case(c.name()))
    }

    /// Encodes 8 kHz linear samples from a fresh coder state: one octet per sample for all
    /// three (G.722 codes them as its lower band).
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pcm.len());
        Encoder::new(self).encode_8k(pcm, &mut out);
        out
    }

    /// Decodes a payload to 8 kHz linear samples from a fresh coder state.
    pub fn decode(self, payload: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(payload.len());
        Decoder::new(self).decode_8k(payload, &mut out);
        out
    }
}

/// An encoder for one direction of a stream: stateless for G.711, stateful for G.722.
#[derive(Debug, Clone)]
pub enum Encoder {
    G711(Codec),
    G722(Box<g722::Encoder>),
}

impl Encoder {
    pub fn new(codec: Codec) -> Encoder {
        match codec {
            Codec::G722 => Encoder::G722(Box::default()),
            other => Encoder::G711(other),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            Encoder::G711(c) => *c,
            Encoder::G722(_) => Codec::G722,
        }
    }

    /// Appends the encoding of 8 kHz samples (one octet per sample).
    pub fn encode_8k(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            Encoder::G711(Codec::Pcmu) => out.extend(pcm.iter().map(|&s| g711::ulaw_encode(s))),
            Encoder::G711(_) => out.extend(pcm.iter().map(|&s| g711::alaw_encode(s))),
            Encoder::G722(e) => e.encode_narrowband(pcm, out),
        }
    }
}

/// A decoder for one direction of a stream: stateless for G.711, stateful for G.722.
#[derive(Debug, Clone)]
pub enum Decoder {
    G711(Codec),
    G722(Box<g722::Decoder>),
}

impl Decoder {
    pub fn new(codec: Codec) -> Decoder {
        match codec {
            Codec::G722 => Decoder::G722(Box::default()),
            other => Decoder::G711(other),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            Decoder::G711(c) => *c,
            Decoder::G722(_) => Codec::G722,
        }
    }

    /// Appends the 8 kHz samples of a payload (G.722: its lower band, the 0-4 kHz audio).
    pub fn decode_8k(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::G711(Codec::Pcmu) => out.extend(payload.iter().map(|&b| g711::ulaw_decode(b))),
            Decoder::G711(_) => out.extend(payload.iter().map(|&b| g711::alaw_decode(b))),
            Decoder::G722(d) => d.decode_narrowband(payload, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_stays_silent_in_every_codec() {
        for codec in [Codec::Pcma, Codec::Pcmu, Codec::G722] {
            let enc = codec.encode(&[0i16; 160]);
            assert_eq!(enc.len(), 160, "{codec:?}");
            assert!(
                codec.decode(&enc).iter().all(|&s| s.abs() <= 8),
                "{codec:?}"
            );
        }
        assert!(Codec::Pcma.encode(&[0; 4]).iter().all(|&b| b == 0xD5));
        assert!(Codec::Pcmu.encode(&[0; 4]).iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn payload_types_and_names() {
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::G722.payload_type(), 9);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(9), Some(Codec::G722));
        assert_eq!(Codec::from_payload_type(18), None);
        assert_eq!(Codec::from_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("g722"), Some(Codec::G722));
        assert_eq!(Codec::from_name("G729"), None);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::G722.sample_rate(), 16_000);
    }

    #[test]
    fn stateful_coders_follow_their_codec() {
        let pcm: Vec<i16> = (0..320)
            .map(|i| ((f64::from(i) * 0.3).sin() * 6000.0) as i16)
            .collect();
        for codec in [Codec::Pcma, Codec::Pcmu, Codec::G722] {
            let mut enc = Encoder::new(codec);
            let mut dec = Decoder::new(codec);
            assert_eq!((enc.codec(), dec.codec()), (codec, codec));
            let mut bytes = Vec::new();
            enc.encode_8k(&pcm, &mut bytes);
            let mut back = Vec::new();
            dec.decode_8k(&bytes, &mut back);
            assert_eq!(back.len(), pcm.len());
            // Energy survives (G.722's ADPCM needs a few samples to adapt).
            let e = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
            let ratio = e(&back[80..]) / e(&pcm[80..]);
            assert!((0.7..1.3).contains(&ratio), "{codec:?}: {ratio}");
        }
    }
}

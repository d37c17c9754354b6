//! The audio codecs the engine speaks: G.711 A-law and µ-law at 8 kHz (RFC 3551 §4.5.14).

use crate::g711;

/// A G.711 codec, with its static RTP payload type (RFC 3551 §6, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 A-law, static payload type 8. Preferred: France's PSTN uses A-law.
    Pcma,
    /// G.711 µ-law, static payload type 0.
    Pcmu,
}

impl Codec {
    /// Clock rate of both codecs (RFC 3551 §4.5.14): one sample per 125 µs.
    pub const CLOCK_RATE: u32 = 8000;

    /// The static payload type (RFC 3551 §6).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcma => 8,
            Codec::Pcmu => 0,
        }
    }

    /// The encoding name as written in `a=rtpmap` (RFC 3551 §6).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            8 => Some(Codec::Pcma),
            0 => Some(Codec::Pcmu),
            _ => None,
        }
    }

    /// The codec for an `a=rtpmap` encoding name (case-insensitive, RFC 4566 §6).
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else {
            None
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(self, pcm: i16) -> u8 {
        match self {
            Codec::Pcma => g711::alaw_encode(pcm),
            Codec::Pcmu => g711::ulaw_encode(pcm),
        }
    }

    /// Decodes one byte.
    pub fn decode_sample(self, byte: u8) -> i16 {
        match self {
            Codec::Pcma => g711::alaw_decode(byte),
            Codec::Pcmu => g711::ulaw_decode(byte),
        }
    }

    /// Encodes 8 kHz linear samples, one byte per sample.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        pcm.iter().map(|&s| self.encode_sample(s)).collect()
    }

    /// Decodes a G.711 payload to linear samples.
    pub fn decode(self, payload: &[u8]) -> Vec<i16> {
        payload.iter().map(|&b| self.decode_sample(b)).collect()
    }

    /// The code of linear zero: 0xD5 in A-law, 0xFF in µ-law.
    pub const fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcma => 0xD5,
            Codec::Pcmu => 0xFF,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_encodes_to_the_silence_byte() {
        for codec in [Codec::Pcma, Codec::Pcmu] {
            let enc = codec.encode(&[0i16; 160]);
            assert_eq!(enc.len(), 160);
            assert!(enc.iter().all(|&b| b == codec.silence_byte()), "{codec:?}");
            assert!(codec.decode(&enc).iter().all(|&s| s.abs() <= 8));
        }
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
    }

    #[test]
    fn payload_types_and_names() {
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(18), None);
        assert_eq!(Codec::from_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::Pcmu.name(), "PCMU");
    }
}

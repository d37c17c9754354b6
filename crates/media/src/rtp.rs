//! RTP fixed header (RFC 3550 §5.1): build and parse, never panicking on input.
//!
//! Hand-written rather than through `rtp-rs`: the header is 12 bytes, and building it into a
//! caller's buffer keeps the send path free of extra allocations.

/// Length of the fixed header without CSRCs (RFC 3550 §5.1).
pub const HEADER_LEN: usize = 12;
/// The only RTP version (RFC 3550 §5.1, "V").
pub const VERSION: u8 = 2;

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet of {0} bytes is shorter than the RTP fixed header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("CSRC list overruns the packet")]
    CsrcOverrun,
    #[error("header extension overruns the packet")]
    ExtensionOverrun,
    #[error("invalid padding length {0}")]
    BadPadding(u8),
    #[error("payload type {0} does not fit in 7 bits")]
    BadPayloadType(u8),
}

/// The fields of a fixed header we send: no padding, no extension, no CSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// The 12 header bytes, network order (RFC 3550 §5.1).
    pub fn to_bytes(&self) -> Result<[u8; HEADER_LEN], RtpError> {
        if self.payload_type > 0x7F {
            return Err(RtpError::BadPayloadType(self.payload_type));
        }
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION << 6; // P = 0, X = 0, CC = 0
        b[1] = (u8::from(self.marker) << 7) | self.payload_type;
        b[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        b[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(b)
    }

    /// Appends header and payload to `out` (cleared first), ready for `send_to`.
    pub fn write_packet(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        let header = self.to_bytes()?;
        out.clear();
        out.reserve(HEADER_LEN + payload.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
        Ok(())
    }
}

/// A parsed RTP packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Number of CSRC identifiers that preceded the payload (skipped).
    pub csrc_count: u8,
    /// Whether a header extension was present (skipped, RFC 3550 §5.3.1).
    pub has_extension: bool,
    /// The payload without CSRCs, extension and padding.
    pub payload: &'a [u8],
}

/// Parses one datagram as RTP (RFC 3550 §5.1). Every length field is checked against the
/// datagram before use, so a hostile packet yields an error, never a panic.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if buf.len() < HEADER_LEN {
        return Err(RtpError::TooShort(buf.len()));
    }
    let version = buf[0] >> 6;
    if version != VERSION {
        return Err(RtpError::BadVersion(version));
    }
    let padding = buf[0] & 0x20 != 0;
    let has_extension = buf[0] & 0x10 != 0;
    let csrc_count = buf[0] & 0x0F;
    let marker = buf[1] & 0x80 != 0;
    let payload_type = buf[1] & 0x7F;
    let sequence = u16::from_be_bytes([buf[2], buf[3]]);
    let timestamp = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);

    let mut start = HEADER_LEN + 4 * usize::from(csrc_count);
    if start > buf.len() {
        return Err(RtpError::CsrcOverrun);
    }
    if has_extension {
        // RFC 3550 §5.3.1: 16-bit profile field, 16-bit length in 32-bit words, then the words.
        let ext = buf
            .get(start..start + 4)
            .ok_or(RtpError::ExtensionOverrun)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
        if start > buf.len() {
            return Err(RtpError::ExtensionOverrun);
        }
    }
    let mut end = buf.len();
    if padding {
        // RFC 3550 §5.1 (P): the last octet counts the padding octets, itself included.
        let count = buf[buf.len() - 1];
        if count == 0 || usize::from(count) > end - start {
            return Err(RtpError::BadPadding(count));
        }
        end -= usize::from(count);
    }
    Ok(RtpPacket {
        marker,
        payload_type,
        sequence,
        timestamp,
        ssrc,
        csrc_count,
        has_extension,
        payload: &buf[start..end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xBEEF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
        }
    }

    #[test]
    fn build_then_parse_round_trips() {
        let mut out = Vec::new();
        header().write_packet(&[0xD5; 160], &mut out).unwrap();
        assert_eq!(out.len(), 172);
        assert_eq!(&out[..2], &[0x80, 0x88]);
        let p = parse(&out).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 0xBEEF);
        assert_eq!(p.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.ssrc, 0x1234_5678);
        assert_eq!(p.payload.len(), 160);
    }

    #[test]
    fn rejects_bad_payload_type_on_build() {
        let h = RtpHeader {
            payload_type: 200,
            ..header()
        };
        assert_eq!(h.to_bytes(), Err(RtpError::BadPayloadType(200)));
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert_eq!(parse(&[]), Err(RtpError::TooShort(0)));
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut p = header().to_bytes().unwrap().to_vec();
        p[0] = 0x40; // version 1
        assert_eq!(parse(&p), Err(RtpError::BadVersion(1)));
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped_or_rejected() {
        let base = header().to_bytes().unwrap();
        // Two CSRCs, then a 1-word extension, then 3 payload bytes and 2 padding bytes.
        let mut p = base.to_vec();
        p[0] = 0x80 | 0x20 | 0x10 | 2;
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // extension header + 1 word
        p.extend_from_slice(&[1, 2, 3, 0, 2]);
        let parsed = parse(&p).unwrap();
        assert_eq!(parsed.csrc_count, 2);
        assert!(parsed.has_extension);
        assert_eq!(parsed.payload, &[1, 2, 3]);

        // CSRC count overrunning the packet.
        let mut q = base.to_vec();
        q[0] = 0x80 | 15;
        assert_eq!(parse(&q), Err(RtpError::CsrcOverrun));
        // Extension length overrunning the packet.
        let mut q = base.to_vec();
        q[0] = 0x90;
        q.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        assert_eq!(parse(&q), Err(RtpError::ExtensionOverrun));
        // Extension header itself cut short.
        let mut q = base.to_vec();
        q[0] = 0x90;
        q.extend_from_slice(&[0, 0]);
        assert_eq!(parse(&q), Err(RtpError::ExtensionOverrun));
        // Padding longer than the payload, and zero padding.
        let mut q = base.to_vec();
        q[0] = 0xA0;
        q.extend_from_slice(&[1, 200]);
        assert_eq!(parse(&q), Err(RtpError::BadPadding(200)));
        let mut q = base.to_vec();
        q[0] = 0xA0;
        q.push(0);
        assert_eq!(parse(&q), Err(RtpError::BadPadding(0)));
        // Padding with only a header: count points past the header.
        let mut q = base.to_vec();
        q[0] = 0xA0;
        q[11] = 5;
        assert_eq!(parse(&q), Err(RtpError::BadPadding(5)));
    }

    #[test]
    fn never_panics_on_any_short_datagram() {
        // Exhaustive over the first byte and the last byte for every length up to 40.
        for len in 0..40usize {
            for first in 0..=255u8 {
                for last in [0u8, 1, 4, 255] {
                    let mut b = vec![0u8; len];
                    if let Some(x) = b.first_mut() {
                        *x = first;
                    }
                    if len > 1 {
                        b[len - 1] = last;
                    }
                    let _ = parse(&b);
                }
            }
        }
    }
}

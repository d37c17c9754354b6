//! SDP offer/answer for one audio stream (RFC 3264 over RFC 4566): G.711, G.722 and
//! telephone-event.
//!
//! Parsing uses the `sdp` crate; the choice of codec and the answer text are ours.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use sdp::description::common::Attribute;
use sdp::description::media::MediaDescription;
use sdp::SessionDescription;

use crate::Codec;

/// Payload type we offer for telephone-event (RFC 4733 §7.1.1; dynamic range, RFC 3551 §6).
pub const OFFER_TELEPHONE_EVENT_PT: u8 = 101;
/// Packetisation time we send, in ms (RFC 3551 §4.5.14: 20 ms is the G.711 default).
pub const PTIME_MS: u32 = 20;

/// Why an offer cannot be answered. `NoCommonCodec` and `NoAudio` map to SIP 488.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no active RTP/AVP audio stream in the offer")]
    NoAudio,
    #[error("no common codec: none of PCMA, PCMU, G722 offered")]
    NoCommonCodec,
    #[error("no usable connection address (c=) for the audio stream")]
    NoConnection,
}

/// Media direction attribute (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction to answer with (RFC 3264 §6.1): sendonly is answered recvonly, etc.
    pub const fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The attribute name (RFC 4566 §6).
    pub const fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// An offered m-line we do not use; RFC 3264 §6 requires the answer to carry it back with
/// port 0, in the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMedia {
    /// Position of the m-line in the offer.
    pub index: usize,
    pub media: String,
    pub proto: String,
    pub format: String,
}

/// The result of negotiating an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type the offerer uses for `codec` (8/0, or a dynamic one bound by rtpmap).
    pub payload_type: u8,
    /// Payload type of `telephone-event/8000` if offered (RFC 4733 §7.1.1).
    pub telephone_event: Option<u8>,
    /// Where to send RTP; `None` when `c=` is 0.0.0.0 (hold, RFC 3264 §8.4) or a host name
    /// (this pure parser resolves nothing; symmetric RTP will latch on the first packet).
    pub remote_rtp: Option<SocketAddr>,
    /// `a=ptime` of the offer if any, else 20. We always send 20 ms frames (RFC 4566 §6 makes
    /// ptime a hint), and answer `a=ptime:20`.
    pub ptime_ms: u32,
    /// Direction offered (RFC 3264 §6.1); the answer carries `direction.answer()`.
    pub direction: Direction,
    /// Position of the chosen audio m-line in the offer.
    pub media_index: usize,
    /// Other m-lines, answered with port 0.
    pub rejected: Vec<RejectedMedia>,
}

/// Negotiates an SDP offer (RFC 3264 §6): the first active RTP/AVP audio stream carrying
/// PCMA, PCMU or G722; PCMA is preferred whatever the offer's order (French PSTN is A-law),
/// then PCMU, then G722 (wideband is only chosen when the peer has no G.711: prompts are
/// 8 kHz recordings and most calls reach the PSTN, where G.722 would be transcoded anyway).
pub fn negotiate(offer: &[u8]) -> Result<Negotiated, SdpError> {
    let text = std::str::from_utf8(offer).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    // An empty body is the common "no SDP" case (offerless INVITE): say so plainly.
    if text.trim().is_empty() {
        return Err(SdpError::Malformed("empty body".into()));
    }
    let session = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    if session.media_descriptions.is_empty() {
        return Err(SdpError::NoAudio);
    }

    let mut chosen: Option<(usize, Choice)> = None;
    let mut saw_audio = false;
    for (index, media) in session.media_descriptions.iter().enumerate() {
        if chosen.is_some() || !is_active_avp_audio(media) {
            continue;
        }
        saw_audio = true;
        if let Some(choice) = choose_codec(media) {
            chosen = Some((index, choice));
        }
    }
    let Some((media_index, choice)) = chosen else {
        return Err(if saw_audio {
            SdpError::NoCommonCodec
        } else {
            SdpError::NoAudio
        });
    };
    let media = &session.media_descriptions[media_index];

    // RFC 4566 §5.7: a media-level c= overrides the session-level one; one of them must exist.
    let connection = media
        .connection_information
        .as_ref()
        .or(session.connection_information.as_ref())
        .ok_or(SdpError::NoConnection)?;
    let address = connection.address.as_ref().ok_or(SdpError::NoConnection)?;
    // The address may carry "/ttl" for multicast (RFC 4566 §5.7); we only take the host part.
    let host = address.address.split('/').next().unwrap_or_default();
    let port = u16::try_from(media.media_name.port.value)
        .map_err(|_| SdpError::Malformed(format!("bad port {}", media.media_name.port.value)))?;
    let remote_rtp = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || port == 0 => None,
        Ok(ip) => Some(SocketAddr::new(ip, port)),
        Err(_) => None,
    };

    let ptime_ms = attribute(&media.attributes, "ptime")
        .or_else(|| attribute(&session.attributes, "ptime"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&p| (10..=200).contains(&p))
        .unwrap_or(PTIME_MS);

    let direction = direction_of(&media.attributes)
        .or_else(|| direction_of(&session.attributes))
        .unwrap_or_default();

    let rejected = session
        .media_descriptions
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != media_index)
        .map(|(index, m)| RejectedMedia {
            index,
            media: m.media_name.media.clone(),
            proto: m.media_name.protos.join("/"),
            format: m
                .media_name
                .formats
                .first()
                .cloned()
                .unwrap_or_else(|| "0".into()),
        })
        .collect();

    Ok(Negotiated {
        codec: choice.codec,
        payload_type: choice.payload_type,
        telephone_event: choice.telephone_event,
        remote_rtp,
        ptime_ms,
        direction,
        media_index,
        rejected,
    })
}

struct Choice {
    codec: Codec,
    payload_type: u8,
    telephone_event: Option<u8>,
}

fn is_active_avp_audio(media: &MediaDescription) -> bool {
    // RFC 3264 §6: a port of zero means the offerer disabled that stream.
    media.media_name.media == "audio"
        && media.media_name.port.value != 0
        && media.media_name.protos.len() == 2
        && media.media_name.protos[0] == "RTP"
        && media.media_name.protos[1] == "AVP"
}

fn choose_codec(media: &MediaDescription) -> Option<Choice> {
    let mut pcma = None;
    let mut pcmu = None;
    let mut g722 = None;
    let mut telephone_event = None;
    for format in &media.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        if pt > 127 {
            continue;
        }
        match rtpmap(media, pt) {
            // RFC 4566 §6: an rtpmap binds the payload type, static or dynamic. G722 is
            // written with 8000 too (RFC 3551 §4.5.2).
            Some((name, rate)) => {
                if rate != Codec::CLOCK_RATE {
                    continue;
                }
                if name.eq_ignore_ascii_case("telephone-event") {
                    telephone_event.get_or_insert(pt);
                }
                match Codec::from_name(&name) {
                    Some(Codec::Pcma) => _ = pcma.get_or_insert(pt),
                    Some(Codec::Pcmu) => _ = pcmu.get_or_insert(pt),
                    Some(Codec::G722) => _ = g722.get_or_insert(pt),
                    None => {}
                }
            }
            // RFC 3551 §6: static payload types need no rtpmap.
            None => match Codec::from_payload_type(pt) {
                Some(Codec::Pcma) => _ = pcma.get_or_insert(pt),
                Some(Codec::Pcmu) => _ = pcmu.get_or_insert(pt),
                Some(Codec::G722) => _ = g722.get_or_insert(pt),
                None => {}
            },
        }
    }
    let (codec, payload_type) = match (pcma, pcmu, g722) {
        (Some(pt), _, _) => (Codec::Pcma, pt),
        (None, Some(pt), _) => (Codec::Pcmu, pt),
        (None, None, Some(pt)) => (Codec::G722, pt),
        (None, None, None) => return None,
    };
    Some(Choice {
        codec,
        payload_type,
        telephone_event,
    })
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]` (RFC 4566 §6) for one payload type.
fn rtpmap(media: &MediaDescription, pt: u8) -> Option<(String, u32)> {
    media
        .attributes
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| a.value.as_deref())
        .find_map(|v| {
            let (num, rest) = v.trim().split_once(char::is_whitespace)?;
            if num.parse::<u8>().ok()? != pt {
                return None;
            }
            let mut parts = rest.trim().split('/');
            let name = parts.next()?.to_string();
            let rate = parts.next()?.trim().parse::<u32>().ok()?;
            Some((name, rate))
        })
}

fn attribute<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_deref())
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a.key.as_str() {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
}

fn ip_line(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    }
}

fn session_header(out: &mut String, ip: IpAddr, session_id: u64, session_version: u64) {
    // RFC 4566 §5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>.
    // RFC 3264 §8: the version must grow by one for each new offer/answer in the session.
    let ip = ip_line(ip);
    out.push_str("v=0\r\n");
    out.push_str(&format!(
        "o=ligne-directe {session_id} {session_version} {ip}\r\n"
    ));
    out.push_str("s=Ligne Directe\r\n");
    out.push_str(&format!("c={ip}\r\n"));
    out.push_str("t=0 0\r\n");
}

/// Builds the full SDP answer for `n` (RFC 3264 §6), CRLF line endings (RFC 4566 §5).
pub fn answer(
    n: &Negotiated,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    session_version: u64,
) -> String {
    let mut out = String::with_capacity(320);
    session_header(&mut out, local_ip, session_id, session_version);
    let total = n.rejected.len() + 1;
    for index in 0..total {
        if let Some(r) = n.rejected.iter().find(|r| r.index == index) {
            // RFC 3264 §6: streams we do not accept are answered with port 0.
            out.push_str(&format!("m={} 0 {} {}\r\n", r.media, r.proto, r.format));
            continue;
        }
        out.push_str(&format!("m=audio {local_port} RTP/AVP {}", n.payload_type));
        if let Some(te) = n.telephone_event {
            out.push_str(&format!(" {te}"));
        }
        out.push_str("\r\n");
        out.push_str(&format!(
            "a=rtpmap:{} {}/8000\r\n",
            n.payload_type,
            n.codec.name()
        ));
        if let Some(te) = n.telephone_event {
            // RFC 4733 §7.1.1: events 0-15 are DTMF digits, 16 is flash.
            out.push_str(&format!("a=rtpmap:{te} telephone-event/8000\r\n"));
            out.push_str(&format!("a=fmtp:{te} 0-16\r\n"));
        }
        out.push_str(&format!("a=ptime:{PTIME_MS}\r\n"));
        out.push_str(&format!("a={}\r\n", n.direction.answer().attribute()));
    }
    out
}

/// Builds an SDP offer for an outbound leg: PCMA, PCMU, G722, telephone-event 101 (RFC 3264
/// §5), in our order of preference.
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64, session_version: u64) -> String {
    let te = OFFER_TELEPHONE_EVENT_PT;
    let mut out = String::with_capacity(320);
    session_header(&mut out, local_ip, session_id, session_version);
    out.push_str(&format!("m=audio {local_port} RTP/AVP 8 0 9 {te}\r\n"));
    out.push_str("a=rtpmap:8 PCMA/8000\r\n");
    out.push_str("a=rtpmap:0 PCMU/8000\r\n");
    // RFC 3551 §4.5.2: 8000 is G.722's RTP clock, though it samples at 16 kHz.
    out.push_str("a=rtpmap:9 G722/8000\r\n");
    out.push_str(&format!("a=rtpmap:{te} telephone-event/8000\r\n"));
    out.push_str(&format!("a=fmtp:{te} 0-16\r\n"));
    out.push_str(&format!("a=ptime:{PTIME_MS}\r\n"));
    out.push_str("a=sendrecv\r\n");
    out
}

#[cfg(test)]
mod tests;

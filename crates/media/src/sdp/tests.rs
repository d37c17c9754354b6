use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The offer `peers/sipp/caller.xml` sends, as SIPp renders it on loopback.
const SIPP_OFFER: &str = "v=0\r\n\
o=caller 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=sipp caller\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 41000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=sendrecv\r\n\r\n";

fn offer_with(m_line: &str, attrs: &str) -> String {
    format!(
        "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{m_line}\r\n{attrs}"
    )
}

#[test]
fn sipp_offer_picks_pcma_and_telephone_event() {
    let n = negotiate(SIPP_OFFER.as_bytes()).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, Some("127.0.0.1:41000".parse().unwrap()));
    assert_eq!(n.ptime_ms, 20);
    assert_eq!(n.direction, Direction::SendRecv);
    assert!(n.rejected.is_empty());
}

#[test]
fn lf_only_line_endings_are_accepted() {
    let lf = SIPP_OFFER.replace("\r\n", "\n");
    assert_eq!(negotiate(lf.as_bytes()).unwrap().codec, Codec::Pcma);
}

#[test]
fn pcma_is_preferred_even_when_offered_second() {
    let o = offer_with("m=audio 5000 RTP/AVP 0 8", "");
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcma, 8, None)
    );
}

#[test]
fn pcmu_only_offer() {
    let o = offer_with(
        "m=audio 6000 RTP/AVP 0 96",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=ptime:30\r\n",
    );
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    assert_eq!(n.payload_type, 0);
    assert_eq!(n.telephone_event, Some(96));
    assert_eq!(n.remote_rtp, Some("10.0.0.1:6000".parse().unwrap()));
    assert_eq!(n.ptime_ms, 30);
}

#[test]
fn g729_only_offer_is_refused() {
    let o = offer_with("m=audio 6000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoCommonCodec));
    // A dynamic PT bound to something else is not PCMA even if its number is 8... and a
    // wideband PCMA (rate 16000) is not ours either.
    let o = offer_with("m=audio 6000 RTP/AVP 8", "a=rtpmap:8 PCMA/16000\r\n");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoCommonCodec));
}

#[test]
fn dynamic_payload_type_bound_to_pcma_is_used() {
    let o = offer_with("m=audio 6000 RTP/AVP 97", "a=rtpmap:97 pcma/8000\r\n");
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 97));
}

#[test]
fn video_only_and_disabled_audio_are_no_audio() {
    let o = offer_with("m=video 6000 RTP/AVP 96", "a=rtpmap:96 H264/90000\r\n");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoAudio));
    let o = offer_with("m=audio 0 RTP/AVP 8", "");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoAudio));
    let o = offer_with("m=audio 6000 RTP/SAVP 8", "");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoAudio));
}

#[test]
fn hold_address_gives_no_remote_and_direction_is_mirrored() {
    let o = SIPP_OFFER
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
        .replace("a=sendrecv", "a=sendonly");
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(n.remote_rtp, None);
    assert_eq!(n.direction, Direction::SendOnly);
    let a = answer(&n, IpAddr::V4(Ipv4Addr::LOCALHOST), 30000, 1, 1);
    assert!(a.contains("a=recvonly\r\n"), "{a}");
}

#[test]
fn media_level_connection_overrides_session_level() {
    let o = offer_with("m=audio 7000 RTP/AVP 8", "c=IN IP4 192.0.2.7\r\n");
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(n.remote_rtp, Some("192.0.2.7:7000".parse().unwrap()));
}

#[test]
fn missing_connection_is_an_error() {
    let o = "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoConnection));
}

#[test]
fn second_stream_is_rejected_in_place() {
    let o = format!(
        "{}\r\nm=video 9000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
        SIPP_OFFER.trim_end()
    );
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(n.media_index, 0);
    assert_eq!(n.rejected.len(), 1);
    let a = answer(&n, IpAddr::V4(Ipv4Addr::LOCALHOST), 30000, 1, 1);
    let m_lines: Vec<&str> = a.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        ["m=audio 30000 RTP/AVP 8 101", "m=video 0 RTP/AVP 96"]
    );
}

#[test]
fn answer_is_complete_and_parses_back() {
    let n = negotiate(SIPP_OFFER.as_bytes()).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let a = answer(&n, ip, 30000, 42, 43);
    let expected = "v=0\r\n\
o=ligne-directe 42 43 IN IP4 192.0.2.10\r\n\
s=Ligne Directe\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
    assert_eq!(a, expected);
    let back = negotiate(a.as_bytes()).unwrap();
    assert_eq!(back.codec, Codec::Pcma);
    assert_eq!(back.payload_type, 8);
    assert_eq!(back.telephone_event, Some(101));
    assert_eq!(back.remote_rtp, Some(SocketAddr::new(ip, 30000)));
}

#[test]
fn answer_and_offer_in_ipv6() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let o = offer(ip, 30002, 7, 1);
    assert!(o.contains("c=IN IP6 ::1\r\n"));
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, Some(SocketAddr::new(ip, 30002)));
    let a = answer(&n, ip, 30004, 7, 2);
    assert_eq!(
        negotiate(a.as_bytes()).unwrap().remote_rtp,
        Some(SocketAddr::new(ip, 30004))
    );
}

#[test]
fn offer_lists_pcma_pcmu_g722_and_telephone_event() {
    let o = offer(IpAddr::V4(Ipv4Addr::LOCALHOST), 30000, 1, 1);
    assert!(o.contains("m=audio 30000 RTP/AVP 8 0 9 101\r\n"));
    assert!(o.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(o.contains("a=rtpmap:9 G722/8000\r\n"));
    // Our own offer negotiates to PCMA.
    assert_eq!(negotiate(o.as_bytes()).unwrap().codec, Codec::Pcma);
    assert!(o.ends_with("a=sendrecv\r\n"));
    assert!(!o.replace("\r\n", "").contains('\n'), "bare LF in {o:?}");
}

#[test]
fn garbage_is_an_error() {
    for bad in [
        &b""[..],
        b"\r\n\r\n",
        b"hello",
        b"v=0",
        b"\xff\xfe\x00",
        b"m=audio 41000 RTP/AVP 8\r\n",
        b"v=0\r\no=\r\ns=\r\nt=0 0\r\nm=audio 99999 RTP/AVP 8\r\n",
        b"v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio -5 RTP/AVP 8\r\n",
    ] {
        assert!(negotiate(bad).is_err(), "accepted {:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn every_truncation_is_handled_without_panic() {
    let bytes = SIPP_OFFER.as_bytes();
    let m_end = SIPP_OFFER.find("m=audio").unwrap() + "m=audio 41000 RTP/AVP 8".len();
    for cut in 0..bytes.len() {
        let r = negotiate(&bytes[..cut]);
        if cut < m_end {
            assert!(r.is_err(), "truncation at {cut} accepted: {r:?}");
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    // Fuzz-like: flip, insert and delete bytes of a real offer; negotiate must return.
    let mut rng = StdRng::seed_from_u64(0x5D9);
    let alphabet = b"v=oscmta:0123456789 /\r\nRTPAVPaudioIN IP4.-";
    for _ in 0..20_000 {
        let mut b = SIPP_OFFER.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..4) {
                0 => b[i] = rng.random(),
                1 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                2 => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
                _ => {
                    b.remove(i);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        let _ = negotiate(&b);
    }
}

#[test]
fn g722_is_chosen_only_without_g711_and_answered_with_its_8000_clock() {
    // G722 first in the offer: PCMA still wins (and PCMU after it).
    let o = offer_with(
        "m=audio 6000 RTP/AVP 9 0 8 101",
        "a=rtpmap:101 telephone-event/8000\r\n",
    );
    assert_eq!(negotiate(o.as_bytes()).unwrap().codec, Codec::Pcma);
    let o = offer_with("m=audio 6000 RTP/AVP 9 0", "");
    assert_eq!(negotiate(o.as_bytes()).unwrap().codec, Codec::Pcmu);
    // G722 alone, static (no rtpmap) or bound by rtpmap to a dynamic type.
    let o = offer_with(
        "m=audio 6000 RTP/AVP 9 101",
        "a=rtpmap:101 telephone-event/8000\r\n",
    );
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::G722, 9, Some(101))
    );
    let a = answer(&n, IpAddr::V4(Ipv4Addr::LOCALHOST), 30000, 1, 1);
    assert!(a.contains("m=audio 30000 RTP/AVP 9 101\r\n"), "{a}");
    assert!(a.contains("a=rtpmap:9 G722/8000\r\n"), "{a}");
    let o = offer_with("m=audio 6000 RTP/AVP 112", "a=rtpmap:112 g722/8000\r\n");
    let n = negotiate(o.as_bytes()).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::G722, 112));
    // "G722/16000" is a common mistake (the audio rate): not the RTP clock of RFC 3551.
    let o = offer_with("m=audio 6000 RTP/AVP 112", "a=rtpmap:112 G722/16000\r\n");
    assert_eq!(negotiate(o.as_bytes()), Err(SdpError::NoCommonCodec));
}

//! Checks every parsed message before the transaction layer sees it.
//!
//! rsipstack parses headers lazily: a request without Call-ID or with a
//! broken CSeq reaches the transaction layer, which then fails to build a
//! transaction key and drops it without a word. A UAS must instead answer
//! 400 when it can build a response (RFC 3261 §8.2, §21.4.1), and 505 to an
//! unsupported SIP version (§8.2.3 / §21.5.6). Bytes that do not parse at all,
//! or whose Via cannot be read (no way to route a response, §18.2.2), are
//! dropped by the transport and logged.

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{
    Header, Headers, Method, Request, Response, Scheme, SipMessage, StatusCode, Version,
};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::TransportEvent;
use tracing::{debug, warn};

/// The inspector plugged in front of the endpoint.
pub(crate) struct Sanity;

/// Why a request is refused, and with what status.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub reason: String,
    /// For 420: the option tags we do not support (RFC 3261 §20.40).
    pub unsupported: Option<String>,
}

/// Checks a request; `Err` tells how to refuse it.
pub(crate) fn check_request(req: &Request) -> Result<(), Refusal> {
    let bad = |reason: &str| Refusal {
        status: StatusCode::BadRequest,
        reason: reason.to_string(),
        unsupported: None,
    };
    if req.version != Version::V2 {
        return Err(Refusal {
            status: StatusCode::VersionNotSupported,
            reason: "only SIP/2.0 is supported".into(),
            unsupported: None,
        });
    }
    match req.call_id_header() {
        Ok(id) if !id.value().trim().is_empty() => {}
        _ => return Err(bad("missing Call-ID")),
    }
    let from = req.from_header().map_err(|_| bad("missing From"))?;
    from.typed().map_err(|_| bad("malformed From"))?;
    let to = req.to_header().map_err(|_| bad("missing To"))?;
    to.typed().map_err(|_| bad("malformed To"))?;
    let cseq = req.cseq_header().map_err(|_| bad("missing CSeq"))?;
    let cseq = cseq.typed().map_err(|_| bad("malformed CSeq"))?;
    // RFC 3261 §8.1.1.5: the CSeq method MUST match the request method.
    if cseq.method != req.method {
        return Err(bad("CSeq method does not match the request method"));
    }
    // RFC 3261 §8.1.1.5: the sequence number is a 32-bit unsigned integer
    // below 2**31; parsing already bounds it to u32.
    if cseq.seq >= 1 << 31 {
        return Err(bad("CSeq number out of range"));
    }
    // RFC 3261 §8.2.2.1: a Request-URI scheme we do not understand is 416
    // (tel: URIs are legitimate from a PBX, RFC 3966).
    if let Scheme::Other(scheme) = req.uri.scheme.clone().unwrap_or_default() {
        if !scheme.eq_ignore_ascii_case("tel") {
            return Err(Refusal {
                status: StatusCode::UnsupportedUriScheme,
                reason: format!("unsupported URI scheme {scheme:?}"),
                unsupported: None,
            });
        }
    }
    // RFC 3261 §8.2.2.3: we support no extension that a Require can ask
    // for; ACK and CANCEL are exempt.
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let required: Vec<String> = req
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("require"))
            .flat_map(|h| {
                h.value()
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        if !required.is_empty() {
            return Err(Refusal {
                status: StatusCode::BadExtension,
                reason: "unsupported extension required".into(),
                unsupported: Some(required.join(", ")),
            });
        }
    }
    Ok(())
}

/// True when a response can be routed back: a readable top Via (§18.2.2).
fn routable(req: &Request) -> bool {
    req.via_header().and_then(|v| v.typed()).is_ok()
}

/// Builds the refusal from what the request carries (RFC 3261 §8.2.6.2:
/// Via, From, To, Call-ID and CSeq copied, a To tag added).
pub(crate) fn refusal_response(req: &Request, refusal: &Refusal) -> Response {
    let mut headers = Headers::default();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::To(to) => {
                let value = to.value();
                if value.contains(";tag=") {
                    headers.push(h.clone());
                } else {
                    headers.push(Header::To(format!("{value};tag=acdd400").into()));
                }
            }
            _ => {}
        }
    }
    // RFC 3261 §20.43: a Warning with code 399 carries our reason in text.
    headers.push(Header::Warning(
        format!("399 acdd \"{}\"", refusal.reason.replace('"', "'")).into(),
    ));
    if let Some(tags) = &refusal.unsupported {
        headers.push(Header::Unsupported(tags.clone().into()));
    }
    headers.push(Header::ContentLength(0u32.into()));
    Response {
        status_code: refusal.status.clone(),
        wire_reason: None,
        version: Version::V2,
        headers,
        body: vec![],
    }
}

#[async_trait::async_trait]
impl TransportEventInspector for Sanity {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(SipMessage::Request(req), conn, from) = &event else {
            return Some(event);
        };
        let Err(refusal) = check_request(req) else {
            return Some(event);
        };
        if !routable(req) {
            warn!(src = %from, reason = %refusal.reason, "malformed request without a usable Via: dropped");
            return None;
        }
        // RFC 3261 §17.1.1.3: never answer an ACK.
        if req.method == Method::Ack {
            debug!(src = %from, reason = %refusal.reason, "malformed ACK dropped");
            return None;
        }
        warn!(src = %from, method = %req.method, reason = %refusal.reason, status = %refusal.status, "malformed request refused");
        let resp = refusal_response(req, &refusal);
        if let Err(e) = conn.send(resp.into(), Some(from)).await {
            warn!(src = %from, error = %e, "could not send the refusal");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Request {
        match SipMessage::try_from(text.replace('\n', "\r\n").as_str()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const GOOD: &str = "INVITE sip:acd@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-1;rport
From: <sip:+4930123456@127.0.0.1>;tag=a
To: <sip:3939@127.0.0.1>
Call-ID: c1@127.0.0.1
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

";

    #[test]
    fn a_well_formed_invite_passes() {
        assert_eq!(check_request(&parse(GOOD)), Ok(()));
    }

    #[test]
    fn missing_call_id_is_a_400_with_the_reason() {
        let req = parse(&GOOD.replace("Call-ID: c1@127.0.0.1\n", ""));
        let refusal = check_request(&req).expect_err("must refuse");
        assert_eq!(refusal.status, StatusCode::BadRequest);
        assert_eq!(refusal.reason, "missing Call-ID");
        let resp = refusal_response(&req, &refusal);
        let text = resp.to_string();
        assert!(text.starts_with("SIP/2.0 400"), "{text}");
        assert!(text.contains("branch=z9hG4bK-1"), "Via copied: {text}");
        assert!(text.contains("tag=acdd400"), "To tag added: {text}");
        assert!(text.contains("missing Call-ID"), "{text}");
    }

    #[test]
    fn cseq_method_mismatch_is_refused() {
        let req = parse(&GOOD.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
        assert_eq!(
            check_request(&req).expect_err("mismatch").reason,
            "CSeq method does not match the request method"
        );
    }

    #[test]
    fn garbage_cseq_is_refused() {
        let req = parse(&GOOD.replace("CSeq: 1 INVITE", "CSeq: abc INVITE"));
        assert!(check_request(&req).is_err());
    }

    #[test]
    fn unknown_uri_scheme_is_416_and_tel_is_fine() {
        let req = parse(&GOOD.replace("INVITE sip:acd@127.0.0.1:5070", "INVITE foo:opaque"));
        assert_eq!(
            check_request(&req).expect_err("416").status,
            StatusCode::UnsupportedUriScheme
        );
        let req = parse(&GOOD.replace("INVITE sip:acd@127.0.0.1:5070", "INVITE tel:+33612345678"));
        assert_eq!(check_request(&req), Ok(()));
    }

    #[test]
    fn an_unknown_required_extension_is_420_with_unsupported() {
        let req = parse(&GOOD.replace("Max-Forwards: 70", "Max-Forwards: 70\nRequire: foo, bar"));
        let refusal = check_request(&req).expect_err("420");
        assert_eq!(refusal.status, StatusCode::BadExtension);
        let text = refusal_response(&req, &refusal).to_string();
        assert!(text.contains("Unsupported: foo, bar"), "{text}");
    }

    #[test]
    fn missing_from_is_refused() {
        let req = parse(&GOOD.replace("From: <sip:+4930123456@127.0.0.1>;tag=a\n", ""));
        assert_eq!(
            check_request(&req).expect_err("no From").reason,
            "missing From"
        );
    }
}

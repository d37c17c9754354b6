//! Digest algorithm names as the RFCs spell them.
//!
//! RFC 7616 §3.3 and RFC 8760 §2 name the algorithms "MD5", "SHA-256",
//! "SHA-512-256" (and their "-sess" variants). rsipstack 0.7.14 parses only
//! "SHA256": a PBX that challenges with `algorithm=SHA-256` (Kamailio's
//! `modparam("auth", "algorithm", "SHA-256")`) makes its challenge
//! unreadable and registration impossible. Until the stack is mended
//! upstream, this inspector renames on the way in (challenges) and back on
//! the way out (our credentials), so rsipstack computes the right digest and
//! the PBX reads the name it expects. SHA-512-256 is a different hash from
//! SHA-512: it is left alone (and stays unsupported).

use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

pub(crate) struct DigestNames;

/// Replaces `algorithm=FROM` by `algorithm=TO` (case-insensitive on the
/// name, quoted or not), leaving longer names such as FROM-sess intact only
/// when `FROM` itself is not their prefix match.
fn rename(value: &str, from: &str, to: &str) -> String {
    let lower = value.to_ascii_lowercase();
    let needle = format!("algorithm={}", from.to_ascii_lowercase());
    let quoted = format!("algorithm=\"{}", from.to_ascii_lowercase());
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let rest = &lower[i..];
        let hit = if rest.starts_with(&needle) {
            Some(needle.len())
        } else if rest.starts_with(&quoted) {
            Some(quoted.len())
        } else {
            None
        };
        match hit {
            Some(len) => {
                let quote = if len == quoted.len() { "\"" } else { "" };
                out.push_str("algorithm=");
                out.push_str(quote);
                out.push_str(to);
                i += len;
            }
            None => {
                let ch = value[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// "SHA-256" → "SHA256" (also "SHA-256-sess" → "SHA256-sess").
pub(crate) fn to_stack(value: &str) -> String {
    rename(value, "SHA-256", "SHA256")
}

/// "SHA256" → "SHA-256" (also the -sess variant).
pub(crate) fn to_wire(value: &str) -> String {
    rename(value, "SHA256", "SHA-256")
}

fn map_headers(msg: &mut SipMessage, incoming: bool) {
    let headers = match msg {
        SipMessage::Request(r) => &mut r.headers,
        SipMessage::Response(r) => &mut r.headers,
    };
    let fix = |v: &str| if incoming { to_stack(v) } else { to_wire(v) };
    for h in headers.iter_mut() {
        // `value()` is the header's value alone (Display would add the name).
        let renamed = match &*h {
            Header::WwwAuthenticate(v) if incoming => {
                Header::WwwAuthenticate(fix(v.value()).into())
            }
            Header::ProxyAuthenticate(v) if incoming => {
                Header::ProxyAuthenticate(fix(v.value()).into())
            }
            Header::Authorization(v) if !incoming => Header::Authorization(fix(v.value()).into()),
            Header::ProxyAuthorization(v) if !incoming => {
                Header::ProxyAuthorization(fix(v.value()).into())
            }
            _ => continue,
        };
        *h = renamed;
    }
}

impl MessageInspector for DigestNames {
    fn before_send(&self, mut msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        map_headers(&mut msg, false);
        msg
    }

    fn after_received(&self, mut msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        map_headers(&mut msg, true);
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_their_value_shape() {
        // Regression: rebuilding from Display put the header name inside the
        // value and broke every MD5 challenge ("missing realm").
        let raw = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:acd@127.0.0.1>;tag=a\r\nTo: <sip:acd@127.0.0.1>;tag=b\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"lab.pbx\", nonce=\"n\", qop=\"auth\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n";
        let msg = SipMessage::try_from(raw).expect("parses");
        let out = DigestNames.after_received(msg, None).to_string();
        assert!(
            out.contains("\r\nWWW-Authenticate: Digest realm=\"lab.pbx\", nonce=\"n\", qop=\"auth\", algorithm=SHA256\r\n"),
            "{out}"
        );
        let md5 = raw.replace("SHA-256", "MD5");
        let out = DigestNames
            .after_received(SipMessage::try_from(md5.as_str()).expect("parses"), None)
            .to_string();
        assert_eq!(out, md5);
    }

    #[test]
    fn challenge_names_are_mapped_both_ways() {
        let kam = r#"Digest realm="lab.pbx", nonce="abc", qop="auth", algorithm=SHA-256"#;
        assert_eq!(
            to_stack(kam),
            r#"Digest realm="lab.pbx", nonce="abc", qop="auth", algorithm=SHA256"#
        );
        assert_eq!(to_wire(&to_stack(kam)), kam);
        assert_eq!(
            to_stack("Digest algorithm=\"sha-256-sess\""),
            "Digest algorithm=\"SHA256-sess\""
        );
        // MD5 and SHA-512-256 are left as they are.
        assert_eq!(to_stack("Digest algorithm=MD5"), "Digest algorithm=MD5");
        assert_eq!(
            to_stack("Digest algorithm=SHA-512-256"),
            "Digest algorithm=SHA-512-256"
        );
        // A nonce that happens to contain the text is not touched.
        assert_eq!(
            to_wire(r#"Digest nonce="SHA256", algorithm=MD5"#),
            r#"Digest nonce="SHA256", algorithm=MD5"#
        );
    }
}

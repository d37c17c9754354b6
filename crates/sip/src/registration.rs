//! Keeping acdd registered on the site PBX.
//!
//! RFC 3261 §10.2: REGISTER with digest auth (rsipstack answers the 401/407
//! challenge, qop=auth, MD5 or SHA-256 as the PBX asks: RFC 8760), one
//! Call-ID for all refreshes (§10.2.4), refresh before the granted expiry.
//! What the RFC leaves to us: noticing that the PBX lost our binding. A PBX
//! that restarts forgets its registrations and would send our callers to a
//! 404 until the next refresh, minutes later. So between refreshes we send a
//! light OPTIONS probe every `probe_interval` to our own AOR through the PBX:
//! the PBX routes it back to us while it holds the binding (200), answers
//! 404/480 once it lost it, or stays silent while it is down. Anything but a
//! 200 after a silence or a 404 triggers a REGISTER at once; a PBX that comes
//! back is therefore re-registered within about one probe interval.

use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, SipMessage, StatusCodeKind, Uri};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::TrunkConfig;

/// The registration as the daemon and its operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// No `[trunk]`: acdd runs as a standalone SIP server.
    NotConfigured,
    /// A REGISTER is on its way.
    Registering,
    /// The PBX accepted the binding for this many seconds.
    Registered { expires: u32 },
    /// The last attempt failed; the next one comes after a backoff or as
    /// soon as the PBX answers a probe again.
    Failed { reason: String },
    /// Unregistered on shutdown.
    Stopped,
}

/// Bound on one REGISTER round trip (challenge included): a PBX that does
/// not answer within this is treated as down, instead of waiting out the
/// 32 s of Timer F.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(4);
/// Bound on one probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// When to refresh a binding granted for `expires` seconds: at 80 % of it,
/// but never later than 30 s before it lapses and never sooner than 1 s.
pub fn refresh_after(expires: u32) -> Duration {
    let e = u64::from(expires);
    let secs = (e * 4 / 5).min(e.saturating_sub(30).max(e / 2)).max(1);
    Duration::from_secs(secs)
}

/// Backoff after `failures` consecutive failures: 1 s doubling, capped at
/// 30 s. The probe shortens it when the PBX comes back.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

/// What a probe learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// 2xx: the PBX is up (and routes our AOR to us when probing the AOR).
    Reachable,
    /// A final non-2xx: up, but our binding is gone.
    BindingLost,
    /// No answer in time.
    Silent,
}

/// Should we REGISTER now? Pure policy, tested below.
pub fn must_register_now(registered: bool, previous: Option<Probe>, probe: Probe) -> bool {
    match probe {
        Probe::BindingLost => registered,
        // Back after a silence: it may have restarted and lost everything.
        // (After a rejection the PBX was up: the backoff paces the retries.)
        Probe::Reachable => previous == Some(Probe::Silent),
        Probe::Silent => false,
    }
}

pub(crate) async fn run(
    endpoint: EndpointInnerRef,
    trunk: TrunkConfig,
    status: watch::Sender<RegistrationStatus>,
    stop: CancellationToken,
) {
    let registrar: Uri = match Uri::try_from(trunk.registrar.as_str()) {
        Ok(u) => u,
        Err(e) => {
            let reason = format!("bad registrar URI {:?}: {e}", trunk.registrar);
            warn!("{reason}");
            status.send_replace(RegistrationStatus::Failed { reason });
            return;
        }
    };
    let credential = Credential {
        username: trunk.username.clone(),
        password: trunk.password.clone(),
        realm: None,
        auth_username: None,
    };
    let mut aor = registrar.clone();
    aor.auth = Some(rsipstack::sip::Auth {
        user: trunk.username.clone(),
        password: None,
    });
    let mut reg = Registration::new(endpoint.clone(), Some(credential));
    let mut failures = 0u32;
    let mut registered = false;
    let mut last_probe: Option<Probe> = None;
    let mut probe_seq = 0u32;

    loop {
        status.send_replace(RegistrationStatus::Registering);
        let attempt = tokio::time::timeout(
            REGISTER_TIMEOUT,
            reg.register(registrar.clone(), Some(trunk.expires)),
        )
        .await;
        let mut wait = match attempt {
            Ok(Ok(resp)) if resp.status_code.kind() == StatusCodeKind::Successful => {
                let granted = granted_expires(&resp).unwrap_or(trunk.expires);
                if !registered || failures > 0 {
                    info!(registrar = %registrar, expires = granted, "registered on the PBX");
                }
                failures = 0;
                registered = true;
                status.send_replace(RegistrationStatus::Registered { expires: granted });
                refresh_after(granted)
            }
            outcome => {
                let (reason, pbx_answered) = match outcome {
                    Ok(Ok(resp)) => (format!("REGISTER answered {}", resp.status_code), true),
                    // The stack gave up for another reason than silence (an
                    // unreadable challenge…): retrying at once would not help,
                    // the backoff paces it.
                    Ok(Err(e)) => (format!("REGISTER failed: {e}"), true),
                    Err(_) => (
                        format!("no answer to REGISTER within {REGISTER_TIMEOUT:?}"),
                        false,
                    ),
                };
                last_probe = Some(if pbx_answered {
                    Probe::Reachable
                } else {
                    Probe::Silent
                });
                failures += 1;
                registered = false;
                warn!(registrar = %registrar, failures, "{reason}");
                status.send_replace(RegistrationStatus::Failed { reason });
                backoff(failures)
            }
        };
        // Wait for the refresh (or the retry), probing meanwhile.
        loop {
            let step = wait.min(trunk.probe_interval);
            tokio::select! {
                _ = stop.cancelled() => {
                    unregister(&mut reg, &registrar, registered).await;
                    status.send_replace(RegistrationStatus::Stopped);
                    return;
                }
                _ = tokio::time::sleep(step) => {}
            }
            wait = wait.saturating_sub(step);
            if wait.is_zero() {
                break;
            }
            probe_seq += 1;
            // While registered, probe our own AOR (does the PBX still route
            // it to us?); otherwise the registrar itself (is it back?).
            let target = if registered { &aor } else { &registrar };
            let probe = probe(&endpoint, target, &registrar, &trunk.username, probe_seq).await;
            let now_register = must_register_now(registered, last_probe, probe);
            if probe == Probe::Silent && last_probe != Some(Probe::Silent) {
                warn!(registrar = %registrar, "the PBX does not answer probes");
            }
            last_probe = Some(probe);
            if now_register {
                info!(registrar = %registrar, ?probe, "re-registering now");
                break;
            }
        }
    }
}

fn granted_expires(resp: &rsipstack::sip::Response) -> Option<u32> {
    // RFC 3261 §10.2.4: the registrar's choice is the Contact's expires
    // parameter, or the Expires header.
    resp.expires_header()
        .and_then(|e| e.value().trim().parse().ok())
        .filter(|e: &u32| *e > 0)
}

async fn unregister(reg: &mut Registration, registrar: &Uri, registered: bool) {
    if !registered {
        return;
    }
    // RFC 3261 §10.2.2: Expires: 0 removes our binding, so the PBX stops
    // sending callers to a daemon that is gone.
    match tokio::time::timeout(REGISTER_TIMEOUT, reg.register(registrar.clone(), Some(0))).await {
        Ok(Ok(resp)) => info!(status = %resp.status_code, "unregistered from the PBX"),
        Ok(Err(e)) => warn!(error = %e, "unregister failed"),
        Err(_) => warn!("no answer to the unregister"),
    }
}

/// One OPTIONS out of dialog (RFC 3261 §11), bounded by [`PROBE_TIMEOUT`],
/// sent to `via` (the PBX) or, when `None`, where `target` says.
pub(crate) async fn probe(
    endpoint: &EndpointInnerRef,
    target: &Uri,
    registrar: &Uri,
    user: &str,
    seq: u32,
) -> Probe {
    let result = tokio::time::timeout(PROBE_TIMEOUT, async {
        let via = endpoint.get_via(None, None).ok()?;
        let mut from_uri = registrar.clone();
        from_uri.auth = Some(rsipstack::sip::Auth {
            user: user.to_string(),
            password: None,
        });
        let from = rsipstack::sip::typed::From {
            display_name: None,
            uri: from_uri,
            params: vec![],
        }
        .with_tag(rsipstack::transaction::make_tag());
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: target.clone(),
            params: vec![],
        };
        let req = endpoint.make_request(Method::Options, target.clone(), via, from, to, seq, None);
        let key = TransactionKey::from_request(&req, TransactionRole::Client).ok()?;
        let mut tx = Transaction::new_client(key, req, endpoint.clone(), None);
        tx.destination = SipAddr::try_from(registrar).ok();
        tx.send().await.ok()?;
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(resp) = msg {
                match resp.status_code.kind() {
                    StatusCodeKind::Provisional => continue,
                    StatusCodeKind::Successful => return Some(Probe::Reachable),
                    _ => return Some(Probe::BindingLost),
                }
            }
        }
        None
    })
    .await;
    result.ok().flatten().unwrap_or(Probe::Silent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_before_expiry() {
        assert_eq!(refresh_after(300), Duration::from_secs(240));
        assert_eq!(refresh_after(3600), Duration::from_secs(2880));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(10), Duration::from_secs(5));
        assert_eq!(refresh_after(1), Duration::from_secs(1));
        for e in [1u32, 2, 10, 30, 31, 60, 120, 300, 3600] {
            assert!(
                refresh_after(e) < Duration::from_secs(u64::from(e)).max(Duration::from_secs(2))
            );
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let seq: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(seq, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn probe_policy() {
        // A PBX that restarted answers 404 for our AOR: register again.
        assert!(must_register_now(
            true,
            Some(Probe::Reachable),
            Probe::BindingLost
        ));
        // It was silent and answers again: it may have lost everything.
        assert!(must_register_now(
            true,
            Some(Probe::Silent),
            Probe::Reachable
        ));
        // Failing and the registrar is back: do not wait for the backoff.
        assert!(must_register_now(
            false,
            Some(Probe::Silent),
            Probe::Reachable
        ));
        // Rejected (wrong password): the backoff paces retries, not the probe.
        assert!(!must_register_now(
            false,
            Some(Probe::Reachable),
            Probe::Reachable
        ));
        // Steady state: nothing to do.
        assert!(!must_register_now(
            true,
            Some(Probe::Reachable),
            Probe::Reachable
        ));
        assert!(!must_register_now(true, None, Probe::Silent));
        assert!(!must_register_now(false, None, Probe::BindingLost));
    }
}

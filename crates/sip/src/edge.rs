//! The endpoint: transports, the dispatch of incoming transactions, and the
//! hand-off of new calls to the daemon.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Host, Method, StatusCode, Uri};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::leg::CallLeg;
use crate::registration::{self, RegistrationStatus};
use crate::sanity::Sanity;
use crate::SipError;

/// The trunk to the site PBX: where and as whom to register.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// `sip:host[:port]` of the registrar (the PBX).
    pub registrar: String,
    pub username: String,
    pub password: String,
    /// Requested registration lifetime, seconds.
    pub expires: u32,
    /// How often to check that the PBX still routes our AOR to us.
    pub probe_interval: Duration,
}

/// What the edge needs to start.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// UDP and TCP are bound on this address.
    pub listen: SocketAddr,
    /// The address to advertise in Via/Contact when it differs from `listen`.
    pub public_address: Option<IpAddr>,
    pub trunk: Option<TrunkConfig>,
    pub user_agent: String,
}

/// A new inbound call, handed to the daemon once 100 Trying went out.
pub struct IncomingCall {
    pub call_id: String,
    /// The caller as the From URI's user part (or the whole URI when it has none).
    pub caller: String,
    /// The number dialed: the To URI's user part (the Request-URI carries our
    /// registered Contact once the PBX rewrote it).
    pub called: String,
    /// The SDP offer (empty when the INVITE carried none: RFC 3261 §13.2.1
    /// lets the offer come in our 2xx instead).
    pub offer: Vec<u8>,
    /// The address on which the caller reached us, to use in SDP and
    /// Contact when we listen on a wildcard address.
    pub local_ip: IpAddr,
    pub leg: CallLeg,
}

/// The running SIP edge.
pub struct SipEdge {
    endpoint: EndpointInnerRef,
    layer: Arc<DialogLayer>,
    identity: crate::outbound::Identity,
    probe_seq: std::sync::atomic::AtomicU32,
    cancel: CancellationToken,
    registration: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Not a child of `cancel`: the unregister must go out before the
    /// endpoint stops.
    registration_stop: CancellationToken,
    registration_status: watch::Receiver<RegistrationStatus>,
}

impl SipEdge {
    /// Binds the transports, starts the endpoint, the dispatcher and (with a
    /// trunk) the registration; new calls arrive on the returned receiver.
    pub async fn start(
        cfg: EdgeConfig,
        cancel: CancellationToken,
    ) -> Result<(SipEdge, mpsc::Receiver<IncomingCall>), SipError> {
        let external = cfg
            .public_address
            .map(|ip| SocketAddr::new(ip, cfg.listen.port()));
        let transports = TransportLayer::new(cancel.child_token());
        let bind_err = |source| SipError::Bind {
            addr: cfg.listen,
            source: Box::new(source),
        };
        let udp =
            UdpConnection::create_connection(cfg.listen, external, Some(cancel.child_token()))
                .await
                .map_err(bind_err)?;
        transports.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(cfg.listen, external)
            .await
            .map_err(bind_err)?;
        transports.add_transport(tcp.into());

        // Call-IDs end with our host (rsipstack's default names its vendor).
        let option = rsipstack::transaction::endpoint::EndpointOption {
            callid_suffix: Some(
                cfg.public_address
                    .unwrap_or_else(|| cfg.listen.ip())
                    .to_string(),
            ),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_option(option)
            .with_user_agent(&cfg.user_agent)
            .with_transport_layer(transports)
            .with_cancel_token(cancel.clone())
            .with_transport_inspector(Box::new(Sanity))
            .with_inspector(Box::new(crate::digest_names::DigestNames))
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let inner = endpoint.inner.clone();
        let serve_cancel = cancel.clone();
        tokio::spawn(async move {
            endpoint.serve().await;
            // The endpoint only returns on shutdown or a fatal transport
            // error; either way nothing more can be received.
            serve_cancel.cancel();
        });

        let layer = Arc::new(DialogLayer::new(inner.clone()));
        let (calls_tx, calls_rx) = mpsc::channel(1024);
        tokio::spawn(dispatch(incoming, layer.clone(), calls_tx, cfg.clone()));
        let identity = identity(&cfg);

        let (status_tx, status_rx) = watch::channel(RegistrationStatus::NotConfigured);
        let registration_stop = CancellationToken::new();
        let registration = cfg.trunk.clone().map(|trunk| {
            tokio::spawn(registration::run(
                inner.clone(),
                trunk,
                status_tx,
                registration_stop.clone(),
            ))
        });
        info!(listen = %cfg.listen, trunk = cfg.trunk.is_some(), "SIP edge started (UDP and TCP)");
        Ok((
            SipEdge {
                endpoint: inner,
                layer,
                identity,
                probe_seq: std::sync::atomic::AtomicU32::new(1),
                cancel,
                registration: std::sync::Mutex::new(registration),
                registration_stop,
                registration_status: status_rx,
            },
            calls_rx,
        ))
    }

    /// Follows the state of the registration on the trunk.
    pub fn registration_status(&self) -> watch::Receiver<RegistrationStatus> {
        self.registration_status.clone()
    }

    /// Removes the registration (Expires: 0) and stops the endpoint. Call
    /// after the calls got their BYE, so those still go out.
    pub async fn shutdown(&self) {
        let task = self.registration.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            // The registration task unregisters when told to stop.
            self.registration_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
        self.cancel.cancel();
    }

    /// The endpoint, for requests of the daemon's own.
    pub fn endpoint(&self) -> &EndpointInnerRef {
        &self.endpoint
    }

    /// Calls `target` (an agent's phone, a citizen) with our SDP offer,
    /// through the PBX when a trunk is configured; its 401/407 challenges
    /// are answered with the trunk's credentials.
    pub fn dial(&self, target: &str, offer: String) -> Result<crate::OutboundLeg, SipError> {
        crate::outbound::dial(&self.layer, &self.identity, target, offer.into_bytes())
    }

    /// Is this phone reachable? An OPTIONS through the PBX (RFC 3261 §11):
    /// the PBX relays it to a registered phone, which answers; 404/480 or
    /// silence mean the phone cannot take a call now.
    pub async fn probe(&self, target: &str) -> bool {
        let Ok(uri) = Uri::try_from(target) else {
            return false;
        };
        let via = match self.identity.outbound_proxy {
            Some(proxy) => Uri {
                scheme: Some(rsipstack::sip::Scheme::Sip),
                host_with_port: proxy.into(),
                ..Default::default()
            },
            None => uri.clone(),
        };
        let seq = self
            .probe_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        registration::probe(&self.endpoint, &uri, &via, &self.identity.user, seq).await
            == registration::Probe::Reachable
    }

    /// The domain of the PBX (for numbers dialed through it).
    pub fn pbx_domain(&self) -> &str {
        &self.identity.domain
    }

    /// The address to advertise in our SDP offers.
    pub fn media_ip(&self) -> IpAddr {
        self.identity.contact.ip()
    }
}

/// Routes every new server transaction.
async fn dispatch(
    mut incoming: TransactionReceiver,
    layer: Arc<DialogLayer>,
    calls: mpsc::Sender<IncomingCall>,
    cfg: EdgeConfig,
) {
    while let Some(mut tx) = incoming.recv().await {
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if in_dialog {
            match layer.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None if tx.original.method == Method::Ack => {}
                None => {
                    // RFC 3261 §12.2.2: a request for a dialog we do not know.
                    reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await;
                }
            }
            continue;
        }
        match tx.original.method {
            Method::Invite => new_call(tx, &layer, &calls, &cfg).await,
            Method::Options => {
                // RFC 3261 §11.2: tell what we accept. The PBX's reachability
                // probe (see registration) also lands here.
                let headers = vec![
                    Header::Allow("INVITE, ACK, CANCEL, BYE, OPTIONS".into()),
                    Header::Accept("application/sdp".into()),
                ];
                if let Err(e) = tx.reply_with(StatusCode::OK, headers, None).await {
                    debug!(error = %e, "OPTIONS reply failed");
                }
            }
            Method::Ack => {}
            Method::Bye => reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await,
            _ => {
                // RFC 3261 §8.2.1: 405 with the methods we do support.
                let headers = vec![Header::Allow("INVITE, ACK, CANCEL, BYE, OPTIONS".into())];
                if let Err(e) = tx
                    .reply_with(StatusCode::MethodNotAllowed, headers, None)
                    .await
                {
                    debug!(error = %e, "405 reply failed");
                }
            }
        }
    }
    debug!("incoming transactions closed");
}

async fn reply(tx: &mut Transaction, status: StatusCode) {
    if let Err(e) = tx.reply(status).await {
        debug!(error = %e, "reply failed");
    }
}

fn user_or_uri(uri: &Uri) -> String {
    match &uri.auth {
        Some(auth) if !auth.user.is_empty() => auth.user.clone(),
        _ => uri.to_string(),
    }
}

async fn new_call(
    mut tx: Transaction,
    layer: &Arc<DialogLayer>,
    calls: &mpsc::Sender<IncomingCall>,
    cfg: &EdgeConfig,
) {
    let req = &tx.original;
    let facts = (|| -> Result<(String, String, String), rsipstack::sip::Error> {
        let call_id = req.call_id_header()?.value().to_string();
        let caller = user_or_uri(&req.from_header()?.typed()?.uri);
        let called = user_or_uri(&req.to_header()?.typed()?.uri);
        Ok((call_id, caller, called))
    })();
    let (call_id, caller, called) = match facts {
        Ok(f) => f,
        Err(e) => {
            // The sanity inspector already checked these headers; this is
            // defence in depth, never a panic.
            warn!(error = %e, "INVITE without usable From/To/Call-ID");
            reply(&mut tx, StatusCode::BadRequest).await;
            return;
        }
    };
    let local_ip = advertised_ip(cfg, &req.uri);
    let offer = req.body().clone();
    let contact = Uri {
        scheme: Some(rsipstack::sip::Scheme::Sip),
        auth: cfg.trunk.as_ref().map(|t| rsipstack::sip::Auth {
            user: t.username.clone(),
            password: None,
        }),
        host_with_port: SocketAddr::new(local_ip, cfg.listen.port()).into(),
        ..Default::default()
    };
    let (state_tx, states) = layer.new_dialog_state_channel();
    let mut dialog = match layer.get_or_create_server_invite(&tx, state_tx, None, Some(contact)) {
        Ok(d) => d,
        Err(e) => {
            warn!(%call_id, error = %e, "cannot create the dialog");
            reply(&mut tx, StatusCode::ServerInternalError).await;
            return;
        }
    };
    let leg = CallLeg {
        dialog: dialog.clone(),
        layer: layer.clone(),
        states,
        local_sdp: None,
    };
    info!(%call_id, %caller, %called, "incoming call");
    let call = IncomingCall {
        call_id: call_id.clone(),
        caller,
        called,
        offer,
        local_ip,
        leg,
    };
    // The INVITE server transaction runs beside the call: it sends 100 Trying
    // at once (RFC 3261 §17.2.1), carries our responses and absorbs the ACK
    // or CANCEL.
    tokio::spawn(async move {
        if let Err(e) = dialog.handle(&mut tx).await {
            debug!(error = %e, "INVITE transaction ended with an error");
        }
    });
    if let Err(e) = calls.try_send(call) {
        // The daemon is saturated or stopping: refuse at once rather than
        // let the caller hang until the transaction times out. 503 makes the
        // PBX try elsewhere (RFC 3261 §21.5.4).
        warn!(%call_id, "call queue full or closed: refusing with 503");
        let call = match e {
            mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
        };
        let _ = call.leg.reject(503);
    }
}

/// Who we are on outbound calls: the trunk's user at the PBX's domain, with
/// the PBX as outbound proxy; without a trunk, `acd` at our own address.
fn identity(cfg: &EdgeConfig) -> crate::outbound::Identity {
    let ip = cfg.public_address.unwrap_or_else(|| {
        if cfg.listen.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            cfg.listen.ip()
        }
    });
    let contact = SocketAddr::new(ip, cfg.listen.port());
    match &cfg.trunk {
        Some(t) => {
            let hostport = t
                .registrar
                .trim_start_matches("sip:")
                .split(';')
                .next()
                .unwrap_or("")
                .to_string();
            let proxy = hostport.parse::<SocketAddr>().ok().or_else(|| {
                hostport
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 5060))
            });
            let domain = hostport
                .rsplit_once(':')
                .filter(|(_, port)| port.parse::<u16>().is_ok())
                .map(|(h, _)| h.to_string())
                .unwrap_or(hostport.clone());
            crate::outbound::Identity {
                user: t.username.clone(),
                domain,
                contact,
                credential: Some(rsipstack::dialog::authenticate::Credential {
                    username: t.username.clone(),
                    password: t.password.clone(),
                    realm: None,
                    auth_username: None,
                }),
                outbound_proxy: proxy,
            }
        }
        None => crate::outbound::Identity {
            user: "acd".into(),
            domain: crate::outbound::domain_of(ip),
            contact,
            credential: None,
            outbound_proxy: None,
        },
    }
}

/// The IP to put in Contact and SDP: the configured public address, else
/// the listening address, else (wildcard listen) the address the request was
/// sent to, which is how the caller's side reaches us.
fn advertised_ip(cfg: &EdgeConfig, request_uri: &Uri) -> IpAddr {
    if let Some(ip) = cfg.public_address {
        return ip;
    }
    if !cfg.listen.ip().is_unspecified() {
        return cfg.listen.ip();
    }
    match &request_uri.host_with_port.host {
        Host::IpAddr(ip) => *ip,
        Host::Domain(_) => cfg.listen.ip(),
    }
}

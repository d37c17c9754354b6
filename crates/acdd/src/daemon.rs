//! `acdd run`: start the edges, run calls, stop gracefully.
//!
//! Shutdown order (SIGINT/SIGTERM): stop taking calls, end every call (BYE,
//! or 503 before answer) and wait for their records, unregister from the PBX
//! (Expires: 0), stop the SIP endpoint, then flush and close the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ld_media::{MediaEngine, PromptCache};
use ld_sip::{EdgeConfig, SipEdge, TrunkConfig};
use ld_store::StoreWriter;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::calls::{self, Ctx};
use crate::clock::Clock;
use crate::config::Config;
use crate::reload::{self, PlanHolder};
use crate::{features, queueing};

/// How long calls get to end after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(cfg: Config, clock: Clock) -> anyhow::Result<()> {
    // A refused dialplan is a start-up error printed as file:line:column.
    let queues = cfg.queue_names();
    // Without [queues] (no ACD) the plan's queue nodes just give the call
    // back; with them, a plan naming an unknown queue is refused.
    let known = (!queues.is_empty()).then_some(queues.as_slice());
    let plan = ld_dialplan::load_with(&cfg.dialplan.path, &cfg.prompts.dir, known)
        .map_err(|d| anyhow::anyhow!("invalid dialplan, not starting:\n{d}"))?;
    let prompts = PromptCache::new(cfg.prompts.dir.clone());
    // Decode, resample and encode every prompt once, before the first call.
    reload::preload(&plan, &prompts, &cfg.prompts.dir, &calls::system_prompts())
        .map_err(anyhow::Error::msg)?;
    let store = StoreWriter::spawn(&cfg.store.path)
        .with_context(|| format!("opening the store {}", cfg.store.path.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("acdd")
        .build()?;
    let store = runtime.block_on(serve(cfg, clock, plan, prompts, store))?;
    // The writer thread drains its queue and checkpoints the WAL.
    store.close().context("closing the store")?;
    info!("stopped");
    Ok(())
}

async fn serve(
    cfg: Config,
    clock: Clock,
    plan: ld_dialplan::Dialplan,
    prompts: PromptCache,
    store: StoreWriter,
) -> anyhow::Result<StoreWriter> {
    let media_ip = cfg.sip.listen.ip();
    let (media, mut media_events) = MediaEngine::start(media_ip, cfg.sip.rtp_ports.clone())
        .context("starting the media engine")?;

    let edge_cancel = CancellationToken::new();
    let edge_cfg = EdgeConfig {
        listen: cfg.sip.listen,
        public_address: cfg.sip.public_address,
        trunk: cfg.trunk.as_ref().map(|t| TrunkConfig {
            registrar: t.registrar.clone(),
            username: t.username.clone(),
            password: t.password.clone(),
            expires: t.expires,
            probe_interval: t.probe_interval,
        }),
        user_agent: format!("Ligne Directe acdd/{}", env!("CARGO_PKG_VERSION")),
    };
    let (edge, mut incoming) = SipEdge::start(edge_cfg, edge_cancel.clone())
        .await
        .context("starting the SIP edge")?;
    let edge = Arc::new(edge);
    let store = Arc::new(store);
    let acd_stop = CancellationToken::new();
    let acd = queueing::start(
        cfg.acd(),
        edge.clone(),
        media.clone(),
        store.clone(),
        clock,
        acd_stop.clone(),
    )?;
    let (acd, acd_task) = match acd {
        Some((h, t)) => (Some(h), Some(t)),
        None => (None, None),
    };
    let control_stop = CancellationToken::new();
    let control = match cfg.control.listen {
        Some(listen) => Some(
            crate::control::serve(listen, acd.clone(), control_stop.clone())
                .await
                .with_context(|| format!("control API on {listen}"))?,
        ),
        None => None,
    };
    info!(
        listen = %cfg.sip.listen,
        dialplan = %cfg.dialplan.path.display(),
        store = %cfg.store.path.display(),
        wall_clock = %clock.wall(std::time::Instant::now()),
        "acdd ready"
    );

    let plan = Arc::new(PlanHolder::new(plan));
    let prompts = Arc::new(prompts);
    let watcher_stop = CancellationToken::new();
    let watcher = tokio::spawn(reload::watch(
        plan.clone(),
        cfg.dialplan.path.clone(),
        cfg.prompts.dir.clone(),
        prompts.clone(),
        calls::system_prompts(),
        cfg.queue_names(),
        watcher_stop.clone(),
    ));
    let agents = cfg
        .agents
        .iter()
        .map(|a| (a.id.clone(), features::uri_user(&a.phone).to_string()))
        .collect();
    std::fs::create_dir_all(&cfg.store.messages_dir).with_context(|| {
        format!(
            "creating the messages directory {}",
            cfg.store.messages_dir.display()
        )
    })?;
    let ctx = Arc::new(Ctx {
        messages_dir: cfg.store.messages_dir.clone(),
        edge: edge.clone(),
        acd,
        agents,
        plan,
        prompts,
        media,
        store: store.clone(),
        clock,
        media_routes: Mutex::new(HashMap::new()),
    });

    // Callbacks are placed only while the service is open: the plan's
    // calendar (its first one) drives the ACD.
    let hours = if let Some(acd) = ctx.acd.clone() {
        let (plan, clock) = (ctx.plan.clone(), ctx.clock);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            loop {
                tick.tick().await;
                let current = plan.get();
                let open = current
                    .calendars()
                    .next()
                    .map(|(_, cal)| cal.is_open(clock.wall(std::time::Instant::now())));
                if let Some(open) = open {
                    acd.send(queueing::AcdIn::SetOpen(open));
                }
            }
        }))
    } else {
        None
    };

    // One router from the media engine's event stream to the calls.
    let router_ctx = ctx.clone();
    let router = tokio::spawn(async move {
        while let Some(ev) = media_events.recv().await {
            let tx = router_ctx
                .media_routes
                .lock()
                .ok()
                .and_then(|r| r.get(&ev.session).cloned());
            if let Some(tx) = tx {
                let _ = tx.send(ev.kind);
            }
        }
    });

    let calls_stop = CancellationToken::new();
    let mut calls = JoinSet::new();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            sig = &mut stop => {
                info!(signal = sig, active_calls = calls.len(), "shutting down");
                break;
            }
            call = incoming.recv() => match call {
                Some(call) => {
                    calls.spawn(calls::run(ctx.clone(), call, calls_stop.clone()));
                }
                None => {
                    error!("the SIP edge stopped");
                    break;
                }
            },
            Some(done) = calls.join_next(), if !calls.is_empty() => {
                if let Err(e) = done {
                    // A call task that panicked lost its record: say so loudly.
                    error!(error = %e, "a call task failed");
                }
            }
        }
    }

    // New INVITEs from now on are refused by the edge (the receiver closes).
    drop(incoming);
    watcher_stop.cancel();
    let _ = watcher.await;
    calls_stop.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = calls.join_next().await {
            if let Err(e) = done {
                error!(error = %e, "a call task failed during shutdown");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            left = calls.len(),
            "calls did not end in time; aborting them"
        );
        calls.abort_all();
        while calls.join_next().await.is_some() {}
    }
    control_stop.cancel();
    if let Some(c) = control {
        let _ = c.await;
    }
    // The agents' legs end with the ACD (BYE or CANCEL), before the edge.
    if let Some(h) = hours {
        h.abort();
        let _ = h.await;
    }
    acd_stop.cancel();
    if let Some(t) = acd_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    router.abort();
    let _ = router.await;
    drop(ctx);
    // Legs still ending hold the edge: it is shut down in place.
    edge.shutdown().await;
    Arc::try_unwrap(store).map_err(|_| anyhow::anyhow!("the store is still shared at shutdown"))
}

/// Resolves with the name of the signal that asked us to stop.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, only Ctrl-C through tokio's default.
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

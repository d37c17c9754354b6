//! The task that runs one call: it feeds the engine's pure state machine with
//! what the SIP leg and the media stream report, and carries out its actions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ld_dialplan::{Ivr, PromptItem};
use ld_engine::{
    Action, Call, CallSummary, HangupSide, MediaIn, Outcome, QueueIn, SipIn, TransferIn,
};
use ld_media::{MediaEngine, MediaEventKind, PlayId, Prompt, PromptCache, SessionId};
use ld_sip::{IncomingCall, LegEvent};
use ld_store::{CallRecord, HangupBy, StoreWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::legs::Bridged;
use crate::queueing::{AcdHandle, AcdIn, ToCall};
use crate::reload::PlanHolder;

/// How long to wait for the answer to our BYE.
const BYE_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// What every call task shares.
pub struct Ctx {
    /// The SIP edge, for the calls the daemon places (transfers).
    pub edge: Arc<ld_sip::SipEdge>,
    /// The ACD, when queues are configured.
    pub acd: Option<AcdHandle>,
    /// (agent id, user part of their phone URI), to recognise feature codes.
    pub agents: Vec<(String, String)>,
    /// Where recorded messages go.
    pub messages_dir: std::path::PathBuf,
    /// The dialplan for calls starting now (hot-reloaded).
    pub plan: Arc<PlanHolder>,
    pub prompts: Arc<PromptCache>,
    pub media: MediaEngine,
    pub store: Arc<StoreWriter>,
    pub clock: Clock,
    /// Media events are produced by one engine task for all sessions; each
    /// call registers here to get its own.
    pub media_routes: Mutex<HashMap<SessionId, mpsc::UnboundedSender<MediaEventKind>>>,
}

/// The facts of the call that the record needs beside the engine's summary.
struct Facts {
    call_id: String,
    caller: String,
    called: String,
}

/// Runs one call to its end and writes its record, whatever happens.
pub async fn run(ctx: Arc<Ctx>, incoming: IncomingCall, shutdown: CancellationToken) {
    let arrived = Instant::now();
    let IncomingCall {
        call_id,
        caller,
        called,
        offer,
        local_ip,
        mut leg,
    } = incoming;
    let facts = Facts {
        call_id,
        caller,
        called,
    };

    // RFC 3264 §6: answer the offer, PCMA preferred. No usable audio: 488
    // (RFC 3261 §21.4.26). An INVITE without an offer would need our offer in
    // the 2xx and no early media at all: refused the same way for now.
    let negotiated = match ld_media::sdp::negotiate(&offer) {
        Ok(n) => n,
        Err(e) => {
            warn!(call_id = %facts.call_id, error = %e, "no acceptable media offer: 488");
            let _ = leg.reject(488);
            record(&ctx, &facts, refused(arrived, Outcome::Failed, 488));
            return;
        }
    };
    // An agent's feature code gets a one-node plan saying its outcome.
    let call_plan = if crate::features::is_code(&facts.called) {
        crate::features::handle(&ctx, &facts.called, &facts.caller).await
    } else {
        ctx.plan.get()
    };
    let ivr = match Ivr::with_caller(
        arrived,
        ctx.clock.wall(arrived),
        call_plan.clone(),
        &facts.called,
        &facts.caller,
    ) {
        Ok(ivr) => ivr,
        Err(e) => {
            warn!(call_id = %facts.call_id, called = %facts.called, error = %e, "no dialplan entry: 404");
            let _ = leg.reject(404);
            record(&ctx, &facts, refused(arrived, Outcome::Rejected, 404));
            return;
        }
    };
    let session = match ctx.media.open_session() {
        Ok(s) => s,
        Err(e) => {
            // Out of RTP ports: the PBX may try another server (RFC 3261
            // §21.5.4).
            warn!(call_id = %facts.call_id, error = %e, "no media session: 503");
            let _ = leg.reject(503);
            record(&ctx, &facts, refused(arrived, Outcome::Failed, 503));
            return;
        }
    };
    // RFC 4733 digits come with the PT the caller offered; without one the
    // engine listens for in-band tones instead.
    session.set_telephone_event(negotiated.telephone_event);
    if let Some(remote) = negotiated.remote_rtp {
        session.set_remote(remote, negotiated.codec, negotiated.payload_type);
    } else {
        // No address yet (c=0.0.0.0 or a host name): symmetric RTP
        // (RFC 4961) latches on the caller's first packet, sent with the
        // session's default codec (PCMA).
        info!(call_id = %facts.call_id, "no RTP address in the offer: waiting for the caller's packets");
    }
    let session_id: u64 = rand_session_id();
    let sdp = ld_media::sdp::answer(&negotiated, local_ip, session.local_port(), session_id, 1);

    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    if let Ok(mut routes) = ctx.media_routes.lock() {
        routes.insert(session.id(), media_tx);
    }

    let (to_call_tx, mut to_call_rx) = mpsc::unbounded_channel();
    let (partner_tx, mut partner_rx) = mpsc::unbounded_channel();
    let mut partner: Option<mpsc::UnboundedSender<crate::legs::LegCmd>> = None;
    // The message being recorded, and the one recorded.
    let mut recording: Option<std::path::PathBuf> = None;
    let mut message: Option<std::path::PathBuf> = None;
    let mut queue = QueueState {
        id: ctx
            .acd
            .as_ref()
            .map(|a| a.new_call_id())
            .unwrap_or(ld_acd::CallId(0)),
        joined: false,
        minutes: None,
    };
    let mut call = Call::new(arrived, ivr);
    let mut current_play: Option<PlayId> = None;
    let mut shutdown_seen = false;
    let summary = loop {
        // Carry out what the engine asked for, in order.
        let mut finished = None;
        while let Some(action) = call.poll_action() {
            match action {
                Action::Progress => {
                    if let Err(e) = leg.progress(sdp.clone()) {
                        warn!(call_id = %facts.call_id, error = %e, "183 not sent");
                    }
                }
                Action::Play { prompts } => {
                    if prompts.contains(&PromptItem::EstimatedWait) && !queue.joined {
                        // Before joining: what the ACD would promise now.
                        queue.minutes = early_estimate(&ctx, &call_plan).await;
                    }
                    let list = resolve(&ctx, &facts.call_id, &prompts, queue.minutes);
                    let names: Vec<&str> = list.iter().map(|p| p.name()).collect();
                    info!(call_id = %facts.call_id, prompts = ?names, "playing");
                    current_play = Some(session.play(list, false));
                }
                Action::Unbridge => {
                    // The agent hung up first and the plan goes on (a post-call survey):
                    // the caller's stream plays prompts again instead of relaying the agent.
                    info!(call_id = %facts.call_id, "agent gone, the plan goes on with the caller");
                    ctx.media.unbridge(session.id());
                }
                Action::StopPlayback => {
                    // No PlaybackFinished is expected for what was cut.
                    current_play = None;
                    session.stop();
                }
                Action::PlayHold => {
                    let music: Vec<Arc<Prompt>> = ctx.prompts.get(HOLD_MUSIC).into_iter().collect();
                    // Looped: it never finishes, so no play id to follow.
                    current_play = None;
                    session.play(music, true);
                }
                Action::Enqueue {
                    queue: name,
                    priority,
                } => {
                    let joined = match &ctx.acd {
                        Some(acd) if acd.has_queue(&name) => acd
                            .ask(|reply| AcdIn::Enqueue {
                                call: queue.id,
                                sip_call_id: facts.call_id.clone(),
                                queue: name.clone(),
                                priority,
                                caller: facts.caller.clone(),
                                session: session.id(),
                                to_call: to_call_tx.clone(),
                                reply,
                            })
                            .await
                            .unwrap_or(false),
                        _ => false,
                    };
                    if joined {
                        queue.joined = true;
                    } else {
                        // No such queue: the plan goes on at the queue
                        // node's `next`.
                        warn!(call_id = %facts.call_id, queue = %name, "no ACD queue took the call: returned");
                        call.handle_queue(Instant::now(), QueueIn::Returned);
                    }
                }
                Action::LeaveQueue => {
                    if let Some(acd) = &ctx.acd {
                        acd.send(AcdIn::Left { call: queue.id });
                    }
                }
                Action::RequestCallback { number } => {
                    let number = number.unwrap_or_else(|| facts.caller.clone());
                    let promised = match &ctx.acd {
                        Some(acd) => acd
                            .ask(|reply| AcdIn::RequestCallback {
                                call: queue.id,
                                number: number.clone(),
                                reply,
                            })
                            .await
                            .unwrap_or(false),
                        None => false,
                    };
                    if promised {
                        info!(call_id = %facts.call_id, %number, "callback promised; the caller keeps their place");
                        call.handle_queue(
                            Instant::now(),
                            QueueIn::CallbackPromised {
                                prompts: vec![PromptItem::File(CALLBACK_CONFIRMED.into())],
                            },
                        );
                    }
                }
                Action::Transfer { target, method } => {
                    let uri = dial_uri(&target, ctx.edge.pbx_domain());
                    info!(call_id = %facts.call_id, target = %uri, ?method, "transfer");
                    match method {
                        ld_dialplan::TransferMethod::Refer => {
                            let ok = matches!(leg.refer(&uri).await, Ok(true));
                            let input = if ok {
                                TransferIn::Referred
                            } else {
                                TransferIn::Failed
                            };
                            call.handle_transfer(Instant::now(), input);
                        }
                        ld_dialplan::TransferMethod::Invite => {
                            partner = Some(crate::legs::spawn_partner(
                                ctx.edge.clone(),
                                ctx.media.clone(),
                                uri,
                                session.id(),
                                partner_tx.clone(),
                            ));
                        }
                    }
                }
                Action::Record { max } => {
                    let path = ctx
                        .messages_dir
                        .join(format!("{}.wav", file_safe(&facts.call_id)));
                    info!(call_id = %facts.call_id, path = %path.display(), ?max, "recording the caller's message");
                    recording = Some(path.clone());
                    session.record(path, max);
                }
                Action::OfferCallback => {
                    let target = call_plan.queues().into_iter().next();
                    let promised = match (&ctx.acd, target) {
                        (Some(acd), Some(q)) if acd.has_queue(&q) => acd
                            .ask(|reply| AcdIn::NewCallback {
                                call: queue.id,
                                sip_call_id: facts.call_id.clone(),
                                queue: q,
                                number: facts.caller.clone(),
                                reply,
                            })
                            .await
                            .unwrap_or(false),
                        _ => false,
                    };
                    if promised {
                        info!(call_id = %facts.call_id, "callback promised");
                    } else {
                        warn!(call_id = %facts.call_id, "callback asked but no queue can take it");
                    }
                }
                Action::Answer => {
                    if let Err(e) = leg.answer(sdp.clone()) {
                        warn!(call_id = %facts.call_id, error = %e, "200 not sent");
                    }
                }
                Action::Reject { status } => {
                    session.stop();
                    if let Err(e) = leg.reject(status) {
                        warn!(call_id = %facts.call_id, error = %e, "final response not sent");
                    }
                }
                Action::Bye => {
                    session.stop();
                    // Bounded: a peer that never answers the BYE must not hold
                    // the record back (RFC 3261 §15: the call is over for us
                    // once the BYE is sent).
                    match tokio::time::timeout(BYE_WAIT, leg.bye()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(call_id = %facts.call_id, error = %e, "BYE failed"),
                        Err(_) => warn!(call_id = %facts.call_id, "no answer to BYE"),
                    }
                }
                Action::Finished(summary) => finished = Some(summary),
            }
        }
        if let Some(summary) = finished {
            break summary;
        }
        let deadline = call.poll_timeout();
        tokio::select! {
            ev = leg.next_event() => {
                let now = Instant::now();
                match ev {
                    Some(LegEvent::Ack) => call.handle_sip(now, SipIn::Ack),
                    Some(LegEvent::Cancel) => call.handle_sip(now, SipIn::Cancel),
                    Some(LegEvent::Bye) => call.handle_sip(now, SipIn::Bye),
                    Some(LegEvent::Dtmf(digit)) => {
                        info!(call_id = %facts.call_id, %digit, source = "SipInfo", "DTMF");
                        call.handle_media(now, MediaIn::Dtmf(digit));
                    }
                    Some(LegEvent::Failed(why)) => {
                        info!(call_id = %facts.call_id, %why, "dialog failed");
                        call.handle_sip(now, SipIn::Failed);
                    }
                    None => call.handle_sip(now, SipIn::Failed),
                }
            }
            ev = partner_rx.recv() => {
                let now = Instant::now();
                match ev {
                    Some(Bridged::Answered) => call.handle_transfer(now, TransferIn::Connected),
                    Some(Bridged::Failed { status }) => {
                        info!(call_id = %facts.call_id, status, "transfer failed");
                        partner = None;
                        call.handle_transfer(now, TransferIn::Failed);
                    }
                    Some(Bridged::HungUp) => {
                        partner = None;
                        call.handle_transfer(now, TransferIn::PartnerHungUp);
                    }
                    None => {}
                }
            }
            ev = to_call_rx.recv() => {
                let now = Instant::now();
                match ev {
                    Some(ToCall::Connected { agent }) => {
                        info!(call_id = %facts.call_id, %agent, "connected to the agent");
                        call.handle_queue(now, QueueIn::Connected { agent });
                    }
                    Some(ToCall::Returned) => call.handle_queue(now, QueueIn::Returned),
                    Some(ToCall::CallbackPromised) => call.handle_queue(
                        now,
                        QueueIn::CallbackPromised {
                            prompts: vec![PromptItem::File(CALLBACK_CONFIRMED.into())],
                        },
                    ),
                    Some(ToCall::Announce { position, minutes }) => {
                        queue.minutes = Some(minutes);
                        call.handle_queue(now, QueueIn::Announce { prompts: announcement(position, minutes) });
                    }
                    Some(ToCall::AgentHungUp) => call.handle_queue(now, QueueIn::AgentHungUp),
                    Some(ToCall::AgentTransfer { target }) => {
                        info!(call_id = %facts.call_id, %target, "transferred by the agent");
                        call.handle_queue(now, QueueIn::AgentTransfer { target });
                    }
                    None => {}
                }
            }
            ev = media_rx.recv() => {
                let now = Instant::now();
                match ev {
                    Some(MediaEventKind::PlaybackFinished(id)) if Some(id) == current_play => {
                        current_play = None;
                        call.handle_media(now, MediaIn::PlaybackFinished);
                    }
                    Some(MediaEventKind::RecordFinished { path, duration, reason }) => {
                        info!(call_id = %facts.call_id, path = %path.display(), ?duration, ?reason, "message recorded");
                        recording = None;
                        message = Some(path);
                        call.handle_record_finished(now);
                    }
                    Some(MediaEventKind::RecordFailed { path, error }) => {
                        warn!(call_id = %facts.call_id, path = %path.display(), %error, "message not recorded");
                        recording = None;
                        call.handle_record_finished(now);
                    }
                    Some(MediaEventKind::Dtmf(ev)) => {
                        info!(call_id = %facts.call_id, digit = %ev.digit, source = ?ev.source, "DTMF");
                        call.handle_media(now, MediaIn::Dtmf(ev.digit));
                    }
                    Some(_) => {}
                    // The media engine is gone: nothing can be heard any more.
                    None => call.handle_shutdown(now),
                }
            }
            _ = sleep_until(deadline) => call.handle_timeout(Instant::now()),
            _ = shutdown.cancelled(), if !shutdown_seen => {
                shutdown_seen = true;
                call.handle_shutdown(Instant::now());
            }
        }
    };
    // A caller who hangs up during their message (the usual way to end
    // one): what was said is kept; wait a little for the file.
    if let Some(path) = recording.take() {
        session.stop_record();
        let done = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while let Some(ev) = media_rx.recv().await {
                if matches!(
                    ev,
                    MediaEventKind::RecordFinished { .. } | MediaEventKind::RecordFailed { .. }
                ) {
                    return matches!(ev, MediaEventKind::RecordFinished { .. });
                }
            }
            false
        })
        .await;
        if matches!(done, Ok(true)) {
            message = Some(path);
        }
    }
    if let Ok(mut routes) = ctx.media_routes.lock() {
        routes.remove(&session.id());
    }
    let mut summary = summary;
    if let Some(m) = message {
        summary
            .variables
            .insert("message".into(), m.display().to_string());
    }
    // A transfer's partner still on the line goes with the call.
    if let Some(p) = partner {
        let _ = p.send(crate::legs::LegCmd::Hangup);
    }
    // A connected call that the caller (or a shutdown) ended: the ACD frees
    // the agent and hangs up their phone. An agent's hang-up or transfer it
    // knows already.
    if let (Some(acd), Some(_)) = (&ctx.acd, &summary.agent) {
        if summary.hangup_by != HangupSide::Agent && summary.transferred_to.is_none() {
            acd.send(AcdIn::Ended { call: queue.id });
        }
    }
    session.close();
    record(&ctx, &facts, summary);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn rand_session_id() -> u64 {
    // RFC 4566 §5.2: the o= session id only needs to be unique; the clock
    // in nanoseconds is enough.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Turns the plan's prompt items into loaded prompts. A missing prompt is
/// logged and skipped: `acdd check` refuses plans whose files are missing, so
/// this only happens if a file vanished after start.
fn resolve(
    ctx: &Ctx,
    call_id: &str,
    items: &[PromptItem],
    minutes: Option<u32>,
) -> Vec<Arc<Prompt>> {
    items
        .iter()
        .filter_map(|item| {
            let name = match item {
                PromptItem::File(name) => name.clone(),
                // 0: nobody at work, no bound to promise: say nothing.
                PromptItem::EstimatedWait => match minutes {
                    Some(0) => return None,
                    Some(m) => estimated_wait_prompt(m),
                    None => estimated_wait_prompt(1),
                },
                PromptItem::Say(text) => ld_tts::prompt_name(text, ld_tts::DEFAULT_VOICE),
                // Expanded into `Say` fragments by the IVR before any Play.
                PromptItem::ClosedMessage { .. } => return None,
            };
            match ctx.prompts.get_or_load(&name) {
                Ok(p) => Some(p),
                Err(e) => {
                    warn!(%call_id, prompt = %name, error = %e, "prompt unavailable");
                    None
                }
            }
        })
        .collect()
}

/// "C'est noté : un conseiller vous rappellera…"
pub const CALLBACK_CONFIRMED: &str = "fr/rappel-confirme";

/// A call's part in the ACD.
struct QueueState {
    id: ld_acd::CallId,
    joined: bool,
    /// The last bound announced ("moins de N minutes"), 0 = none.
    minutes: Option<u32>,
}

/// The wait the ACD would promise a caller joining the plan's queue now
/// (the plan's first queue, else the first configured one). With no ACD
/// every call is answered by the IVR at once: the first bound holds.
async fn early_estimate(ctx: &Ctx, plan: &ld_dialplan::Dialplan) -> Option<u32> {
    let acd = ctx.acd.as_ref()?;
    let queue = plan
        .queues()
        .into_iter()
        .find(|q| acd.has_queue(q))
        .or_else(|| acd.default_queue().map(String::from))?;
    let est = acd.ask(|reply| AcdIn::Estimate { queue, reply }).await??;
    Some(est.announce_minutes)
}

/// What a waiting caller hears every `announce_every`: their position, the
/// bound on the wait, and how to be called back.
fn announcement(position: usize, minutes: u32) -> Vec<PromptItem> {
    let mut v = vec![PromptItem::File(position_prompt(position))];
    if minutes > 0 {
        v.push(PromptItem::EstimatedWait);
    }
    v.push(PromptItem::File("fr/rappel-touche".into()));
    v
}

/// "Vous êtes le prochain." / "N personnes sont avant vous." (1 = next).
pub fn position_prompt(position: usize) -> String {
    if position > 30 {
        "fr/position-plus".into()
    } else {
        format!("fr/position-{:02}", position.max(1))
    }
}

/// The hold music, looped while a caller waits in a queue.
pub const HOLD_MUSIC: &str = "musique/attente";

/// Prompts the daemon itself plays, whatever the plan: loaded at start.
pub fn system_prompts() -> Vec<String> {
    let mut v: Vec<String> = (1..=31).map(estimated_wait_prompt).collect();
    v.extend((1..=31).map(position_prompt));
    v.extend(
        [
            HOLD_MUSIC,
            CALLBACK_CONFIRMED,
            "fr/rappel-touche",
            ld_engine::CALLBACK_NUMBER_PROMPT,
        ]
        .into_iter()
        .chain(crate::features::PROMPTS)
        .map(String::from),
    );
    v
}

/// The prompt saying "less than N minutes" (rendered for 1..=30).
pub fn estimated_wait_prompt(minutes: u32) -> String {
    if minutes > 30 {
        "fr/attente-plus".to_string()
    } else {
        format!("fr/attente-{:02}", minutes.max(1))
    }
}

fn refused(arrived: Instant, outcome: Outcome, status: u16) -> CallSummary {
    CallSummary {
        arrived_at: arrived,
        early_media_at: None,
        answered_at: None,
        ended_at: Instant::now(),
        outcome,
        hangup_by: HangupSide::System,
        final_status: Some(status),
        queue: None,
        queued_at: None,
        agent: None,
        connected_at: None,
        path: Vec::new(),
        variables: Default::default(),
        transferred_to: None,
    }
}

/// A Call-ID made safe as a file name.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A number or URI to dial: numbers go through the PBX.
pub fn dial_uri(target: &str, pbx_domain: &str) -> String {
    if target.starts_with("sip:") || target.starts_with("sips:") || target.starts_with("tel:") {
        target.to_string()
    } else {
        format!("sip:{target}@{pbx_domain}")
    }
}

fn record(ctx: &Ctx, facts: &Facts, s: CallSummary) {
    let outcome = match s.outcome {
        Outcome::Answered => ld_store::Outcome::Answered,
        Outcome::Transferred => ld_store::Outcome::Transferred,
        Outcome::Abandoned => ld_store::Outcome::Abandoned,
        Outcome::Rejected => ld_store::Outcome::Rejected,
        Outcome::Failed => ld_store::Outcome::Failed,
        Outcome::Shutdown => ld_store::Outcome::Shutdown,
        Outcome::CallbackPromised => ld_store::Outcome::CallbackPromised,
    };
    let hangup_by = match s.hangup_by {
        HangupSide::Caller => HangupBy::Caller,
        HangupSide::System => HangupBy::System,
        HangupSide::Agent => HangupBy::Agent,
        HangupSide::Partner => HangupBy::Partner,
        HangupSide::Unknown => HangupBy::Unknown,
    };
    let rec = CallRecord {
        call_id: facts.call_id.clone(),
        caller: facts.caller.clone(),
        called: facts.called.clone(),
        arrived_at: ctx.clock.wall(s.arrived_at),
        early_media_at: s.early_media_at.map(|t| ctx.clock.wall(t)),
        answered_at: s.answered_at.map(|t| ctx.clock.wall(t)),
        ended_at: ctx.clock.wall(s.ended_at),
        outcome,
        hangup_by,
        final_status: s.final_status,
        wait_seconds: None,
        talk_seconds: None,
        queue: s.queue,
        queued_at: s.queued_at.map(|t| ctx.clock.wall(t)),
        agent: s.agent,
        connected_at: s.connected_at.map(|t| ctx.clock.wall(t)),
        ivr_path: s.path,
        variables: {
            let mut v = s.variables;
            if let Some(t) = s.transferred_to {
                v.insert("transferred_to".into(), t);
            }
            v
        },
    }
    .with_derived_durations();
    info!(call_id = %rec.call_id, outcome = rec.outcome.as_str(), hangup_by = rec.hangup_by.as_str(), "call ended");
    ctx.store.write_call(rec);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_prompts_cover_the_rendered_range() {
        assert_eq!(estimated_wait_prompt(0), "fr/attente-01");
        assert_eq!(estimated_wait_prompt(1), "fr/attente-01");
        assert_eq!(estimated_wait_prompt(12), "fr/attente-12");
        assert_eq!(estimated_wait_prompt(30), "fr/attente-30");
        assert_eq!(estimated_wait_prompt(31), "fr/attente-plus");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
        for m in 1..=31 {
            let f = dir.join(format!("{}.wav", estimated_wait_prompt(m)));
            assert!(f.exists(), "{} is not rendered", f.display());
        }
    }
}

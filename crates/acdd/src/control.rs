//! The control API (HTTP/JSON) that the CTI sidecar and supervisors' tools
//! use: agents' states and commands, queue figures. The real-time daemon
//! answers only machines; humans go through the sidecar.
//!
//! - `GET  /api/v1/status`                 agents and queues
//! - `POST /api/v1/agents/{id}/{command}`  login, logout, pause, resume,
//!   end_wrap_up; `pause` takes `?reason=…`
//! - `POST /api/v1/calls/{call_id}/transfer?target=sip:…` transfer a call
//!   connected to an agent (as a REFER from the agent's phone would)
//!
//! Errors are JSON `{ "error": "…" }` with 404 (unknown agent or command),
//! 409 (refused in the agent's state) or 503 (no ACD configured).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ld_acd::AgentCommand;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::queueing::{AcdHandle, AcdIn};

#[derive(Clone)]
struct Api {
    acd: Option<AcdHandle>,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

async fn status(State(api): State<Api>) -> Response {
    let Some(acd) = api.acd else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no queue is configured");
    };
    match acd.ask(|reply| AcdIn::Status { reply }).await {
        Some(s) => Json(s).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the ACD is stopping"),
    }
}

async fn command(
    State(api): State<Api>,
    Path((agent, command)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(acd) = api.acd else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no queue is configured");
    };
    let cmd = match command.as_str() {
        "login" => AgentCommand::Login,
        "logout" => AgentCommand::Logout,
        "pause" => AgentCommand::Pause(q.get("reason").cloned().unwrap_or_else(|| "pause".into())),
        "resume" => AgentCommand::Resume,
        "end_wrap_up" => AgentCommand::EndWrapUp,
        other => return error(StatusCode::NOT_FOUND, format!("unknown command {other:?}")),
    };
    match acd
        .ask(|reply| AcdIn::Agent {
            agent: agent.clone(),
            command: cmd.clone(),
            reply,
        })
        .await
    {
        Some(Ok(())) => {
            info!(%agent, ?cmd, "agent command from the API");
            Json(json!({ "ok": true })).into_response()
        }
        Some(Err(e)) if e.contains("unknown agent") => error(StatusCode::NOT_FOUND, e),
        Some(Err(e)) => error(StatusCode::CONFLICT, e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the ACD is stopping"),
    }
}

async fn transfer(
    State(api): State<Api>,
    Path(call_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(acd) = api.acd else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no queue is configured");
    };
    let Some(target) = q.get("target").filter(|t| !t.is_empty()).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "target=sip:… or a number is required",
        );
    };
    match acd
        .ask(|reply| AcdIn::Transfer {
            sip_call_id: call_id.clone(),
            target: target.clone(),
            reply,
        })
        .await
    {
        Some(Ok(())) => {
            info!(%call_id, %target, "transfer from the API");
            Json(json!({ "ok": true })).into_response()
        }
        Some(Err(e)) => error(StatusCode::NOT_FOUND, e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the ACD is stopping"),
    }
}

/// Serves the API until `stop`.
pub async fn serve(
    listen: SocketAddr,
    acd: Option<AcdHandle>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/agents/{agent}/{command}", post(command))
        .route("/api/v1/calls/{call_id}/transfer", post(transfer))
        .with_state(Api { acd });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    info!(%listen, "control API listening");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
        {
            warn!(error = %e, "control API stopped");
        }
    }))
}

//! Dialplan: the TOML schema, its validation with file:line:column diagnostics, and the IVR
//! interpreter.
//!
//! Contract: [`parse`]/[`load`] turn a file into an immutable [`Dialplan`] or report *every*
//! problem at once; [`Ivr`] walks one call through a plan as a pure state machine
//! (`handle_event(now, …)`, `handle_timeout(now)`, `poll_action()`, `poll_timeout()`).
//! No IO except reading the file in [`load`]; the clock is always a parameter.
//!
//! # Schema
//!
//! ```toml
//! [entries]
//! default = "accueil"          # any called number not listed
//! "3939" = "accueil"           # a specific called number (the Request-URI user)
//!
//! [nodes.accueil]
//! type = "play"
//! early = true                 # before answer: 183 Session Progress + early media (RFC 3960)
//! prompts = ["fr/bienvenue", { announce = "estimated_wait" }]
//! next = "decroche"
//!
//! [nodes.decroche]
//! type = "answer"              # 200 OK, waits until it is confirmed
//! next = "attente"
//!
//! [nodes.attente]
//! type = "pause"
//! duration = "500ms"           # silence: "500ms", "2s", "1min", "1h", "1min30s"
//! next = "message"
//!
//! [nodes.message]
//! type = "play"
//! prompts = ["fr/information"] # prompts/fr/information.wav
//! next = "fin"                 # without `next`, the call is hung up after this node
//!
//! [nodes.fin]
//! type = "hangup"
//! status = 480                 # final response if not answered (400..=699); ignored after answer
//! ```
//!
//! Node kinds: `play` (`prompts`, `early` = false, `next`), `answer` (`next`), `pause`
//! (`duration`, `next`), `hangup` (`status`), `hours`, `menu`, `consent`, `queue`, `goto`,
//! `set`, `transfer`, `voicemail`, `callback`, `survey`, `list`, and `[calendars.NAME]` opening
//! hours ([`calendar`]); prompt items may be `{ say = "…" }` (TTS) or the closed message
//! generated from a calendar ([`french`]). The full schema, with an example of every node
//! kind, is `docs/dialplan.md`. Nodes may also be inline tables
//! (`nodes.fin = { type = "hangup" }`).
//!
//! Checks: TOML syntax; unknown keys; wrong types; unknown `type`; missing keys (reported at
//! the node header); `next` or entries naming an undefined node; no entry at all; nodes
//! unreachable from every entry; an `early` play reached only after answer; loops of nodes that neither play nor pause; hangup
//! status out of 400..=699; bad or zero durations; prompt names that are not tame relative
//! paths; and in [`load`], prompt files missing from the prompts directory.
//! A plan may list only specific numbers and no `default`: other calls then find no entry
//! ([`Ivr::new`] fails with [`DialplanError::NoEntry`]) and the daemon refuses them.
//! A non-early `play` reached before answer is allowed: the engine answers the call first
//! (media needs a session), then reports `Answered`.

pub mod calendar;
mod diag;
pub mod french;
mod graph;
mod ivr;
mod model;
mod schema;

use std::path::Path;

pub use calendar::Calendar;
pub use diag::{line_col, Diagnostic, Diagnostics, DialplanError};
pub use ivr::{normalize_number, Ivr, IvrAction, IvrEvent, QueueResult, MAX_STEPS};
pub use model::{
    Dialplan, ListKind, Node, NodeId, NodeKind, PromptItem, Question, TransferMethod, DEFAULT_ENTRY,
};
pub use schema::parse_duration;

/// Parses and validates a dialplan; `file_name` only labels the diagnostics.
pub fn parse(file_name: &str, text: &str) -> Result<Dialplan, Diagnostics> {
    parse_inner(file_name, text, None, None)
}

/// [`parse`], also checking that every `queue` node names one of `known_queues`
/// (`None`: not checked).
pub fn parse_with(
    file_name: &str,
    text: &str,
    known_queues: Option<&[String]>,
) -> Result<Dialplan, Diagnostics> {
    parse_inner(file_name, text, None, known_queues)
}

/// Reads, parses and validates a dialplan file, and checks that every prompt exists as
/// `prompts_dir/<name>.wav` (reported at the prompt's string).
pub fn load(path: &Path, prompts_dir: &Path) -> Result<Dialplan, Diagnostics> {
    load_with(path, prompts_dir, None)
}

/// [`load`], also checking that every `queue` node names one of `known_queues` (the
/// daemon's configured queues; `None`: not checked).
pub fn load_with(
    path: &Path,
    prompts_dir: &Path,
    known_queues: Option<&[String]>,
) -> Result<Dialplan, Diagnostics> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file_name.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read dialplan: {e}"),
        }])
    })?;
    parse_inner(&file_name, &text, Some(prompts_dir), known_queues)
}

fn parse_inner(
    file_name: &str,
    text: &str,
    prompts_dir: Option<&Path>,
    known_queues: Option<&[String]>,
) -> Result<Dialplan, Diagnostics> {
    let mut cx = schema::Ctx {
        file: file_name,
        text,
        diags: Vec::new(),
        known_queues,
    };
    let parsed = schema::parse_document(&mut cx);
    if let Some(p) = &parsed {
        if !p.broken {
            graph::check(&mut cx, p);
        }
        if let Some(dir) = prompts_dir {
            for (name, pos) in &p.prompt_refs {
                let file = dir.join(format!("{name}.wav"));
                if !file.is_file() {
                    cx.err(*pos, format!("prompt file not found: {}", file.display()));
                }
            }
        }
    }
    match parsed {
        Some(p) if cx.diags.is_empty() => Ok(p.plan),
        _ => Err(Diagnostics::sorted(cx.diags)),
    }
}

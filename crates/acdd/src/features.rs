//! Agent feature codes dialed from the desk phone to the service: log in,
//! log out, pause, resume, end the wrap-up. The agent is recognised by the
//! user part of the From URI, matched against the `phone` of `[[agents]]`.
//!
//! The confirmation is spoken by a one-node plan run through the ordinary
//! engine, so the call is answered, recorded and hung up like any other.

use std::sync::Arc;

use ld_acd::AgentCommand;
use ld_dialplan::Dialplan;
use tracing::{info, warn};

use crate::calls::Ctx;
use crate::queueing::AcdIn;

/// The confirmations (loaded at start).
pub const PROMPTS: [&str; 5] = [
    "fr/agent-connecte",
    "fr/agent-deconnecte",
    "fr/agent-pause",
    "fr/agent-disponible",
    "fr/code-inconnu",
];

/// `*50` log in, `*51` log out, `*52` pause, `*53` resume, `*54` end the
/// wrap-up now.
pub fn command(code: &str) -> Option<(AgentCommand, &'static str)> {
    Some(match code {
        "*50" => (AgentCommand::Login, "fr/agent-connecte"),
        "*51" => (AgentCommand::Logout, "fr/agent-deconnecte"),
        "*52" => (AgentCommand::Pause("pause".into()), "fr/agent-pause"),
        "*53" => (AgentCommand::Resume, "fr/agent-disponible"),
        "*54" => (AgentCommand::EndWrapUp, "fr/agent-disponible"),
        _ => return None,
    })
}

/// Is this called number a feature code?
pub fn is_code(called: &str) -> bool {
    called.starts_with('*') && called.len() <= 4
}

/// The user part of a SIP URI ("sip:agent1@host" → "agent1").
pub fn uri_user(uri: &str) -> &str {
    let rest = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    rest.split('@').next().unwrap_or(rest)
}

/// Runs the code for the calling agent and returns the plan that says the
/// outcome.
pub async fn handle(ctx: &Ctx, code: &str, caller: &str) -> Arc<Dialplan> {
    let agent = ctx
        .agents
        .iter()
        .find(|(_, phone_user)| phone_user == caller)
        .map(|(id, _)| id.clone());
    let prompt = match (command(code), agent, &ctx.acd) {
        (Some((cmd, prompt)), Some(agent), Some(acd)) => {
            let done = acd
                .ask(|reply| AcdIn::Agent {
                    agent: agent.clone(),
                    command: cmd.clone(),
                    reply,
                })
                .await;
            match done {
                Some(Ok(())) => {
                    info!(%agent, %code, command = ?cmd, "agent feature code");
                    prompt
                }
                other => {
                    warn!(%agent, %code, result = ?other, "feature code refused");
                    "fr/code-inconnu"
                }
            }
        }
        _ => {
            warn!(%code, %caller, "feature code from an unknown agent, or an unknown code");
            "fr/code-inconnu"
        }
    };
    Arc::new(confirmation_plan(prompt))
}

fn confirmation_plan(prompt: &str) -> Dialplan {
    let text = format!(
        "[entries]\ndefault = \"code\"\n[nodes.code]\ntype = \"play\"\nprompts = [\"{prompt}\"]\nnext = \"fin\"\n[nodes.fin]\ntype = \"hangup\"\n"
    );
    match ld_dialplan::parse("feature-code", &text) {
        Ok(plan) => plan,
        // The text above is fixed; a failure here is a bug worth a log, and
        // the call still ends cleanly with the plan's default behaviour.
        Err(d) => {
            warn!("feature plan: {d}");
            ld_dialplan::parse(
                "feature-code",
                "[entries]\ndefault = \"fin\"\n[nodes.fin]\ntype = \"hangup\"\n",
            )
            .unwrap_or_else(|_| unreachable_plan())
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_plan() -> Dialplan {
    panic!("the built-in one-node plan must parse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_users() {
        assert_eq!(command("*50").map(|c| c.1), Some("fr/agent-connecte"));
        assert!(matches!(command("*52"), Some((AgentCommand::Pause(_), _))));
        assert_eq!(command("*59"), None);
        assert!(is_code("*50"));
        assert!(!is_code("3939"));
        assert_eq!(uri_user("sip:agent1@127.0.0.1:5060"), "agent1");
        assert_eq!(uri_user("agent2"), "agent2");
        // Both confirmation plans parse.
        for p in PROMPTS {
            let plan = confirmation_plan(p);
            assert!(plan.prompt_names().contains(&p.to_string()));
        }
    }
}

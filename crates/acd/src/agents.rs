//! Agent inputs: feature codes / API commands and phone reachability.

use crate::acd::{Acd, AgentState, Pending};
use crate::event::{AgentCommand, CancelReason, JournalEvent, StateCause};
use crate::{AcdError, AgentId};
use std::time::Instant;

impl Acd {
    fn agent(&self, agent: &AgentId) -> Result<usize, AcdError> {
        self.agent_index
            .get(agent)
            .copied()
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    /// Login, logout, pause (with a reason), resume, end of wrap-up. A pause or logout asked
    /// during a conversation takes effect when it ends; while the phone rings, at once (the
    /// offer is withdrawn and the caller goes on to the next agent).
    pub fn handle_agent_command(
        &mut self,
        now: Instant,
        agent: &AgentId,
        command: AgentCommand,
    ) -> Result<(), AcdError> {
        let ai = self.agent(agent).map_err(|e| self.refuse(now, e))?;
        let state = self.agents[ai].state.clone();
        let invalid = |what: &str| AcdError::InvalidState(format!("{agent}: {what}"));
        match command {
            AgentCommand::Login => match state {
                AgentState::LoggedOut => {
                    self.agents[ai].unanswered = 0;
                    self.set_agent_state(now, ai, AgentState::Available, StateCause::Command);
                }
                AgentState::OnCall(_) if self.agents[ai].pending == Some(Pending::Logout) => {
                    self.agents[ai].pending = None;
                }
                _ => return Err(self.refuse(now, invalid("already logged in"))),
            },
            AgentCommand::Logout => match state {
                AgentState::LoggedOut => {
                    return Err(self.refuse(now, invalid("already logged out")))
                }
                AgentState::OnCall(_) => self.agents[ai].pending = Some(Pending::Logout),
                AgentState::Ringing(offer) => {
                    self.cancel_offer(now, offer, CancelReason::AgentLeft);
                    self.set_agent_state(now, ai, AgentState::LoggedOut, StateCause::Command);
                }
                _ => self.set_agent_state(now, ai, AgentState::LoggedOut, StateCause::Command),
            },
            AgentCommand::Pause(reason) => match state {
                AgentState::LoggedOut => return Err(self.refuse(now, invalid("logged out"))),
                AgentState::OnCall(_) => self.agents[ai].pending = Some(Pending::Pause(reason)),
                AgentState::Ringing(offer) => {
                    self.cancel_offer(now, offer, CancelReason::AgentLeft);
                    self.set_agent_state(now, ai, AgentState::Paused(reason), StateCause::Command);
                }
                _ => self.set_agent_state(now, ai, AgentState::Paused(reason), StateCause::Command),
            },
            AgentCommand::Resume => match state {
                AgentState::Paused(_) => {
                    // A fresh start: the unanswered offers before the pause are forgiven.
                    self.agents[ai].unanswered = 0;
                    self.set_agent_state(now, ai, AgentState::Available, StateCause::Command);
                }
                AgentState::OnCall(_)
                    if matches!(self.agents[ai].pending, Some(Pending::Pause(_))) =>
                {
                    self.agents[ai].pending = None;
                }
                _ => return Err(self.refuse(now, invalid("not paused"))),
            },
            AgentCommand::EndWrapUp => match state {
                AgentState::WrapUp { .. } => {
                    self.set_agent_state(now, ai, AgentState::Available, StateCause::Command)
                }
                _ => return Err(self.refuse(now, invalid("not in wrap-up"))),
            },
        }
        self.overflow_unstaffed(now);
        self.dispatch(now);
        Ok(())
    }

    /// The agent's phone registered (or answered an OPTIONS) / became unreachable. An
    /// unreachable agent keeps their state but is never offered a call.
    pub fn handle_agent_reachable(
        &mut self,
        now: Instant,
        agent: &AgentId,
        reachable: bool,
    ) -> Result<(), AcdError> {
        let ai = self.agent(agent).map_err(|e| self.refuse(now, e))?;
        if self.agents[ai].reachable == reachable {
            return Ok(());
        }
        self.agents[ai].reachable = reachable;
        self.journal(
            now,
            JournalEvent::AgentReachable {
                agent: agent.clone(),
                reachable,
            },
        );
        if let AgentState::Ringing(offer) = self.agents[ai].state {
            if !reachable {
                self.cancel_offer(now, offer, CancelReason::AgentLeft);
            }
        }
        self.overflow_unstaffed(now);
        self.dispatch(now);
        Ok(())
    }
}

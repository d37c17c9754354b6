//! The agents and queues of the daemon's config file. Key names are a contract with the admins'
//! files (see the crate docs), hence `deny_unknown_fields`: a typo must be an error, not a
//! silently ignored setting.

use crate::error::ConfigError;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Everything the Acd is configured with.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdConfig {
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
}

/// `[[agents]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    /// Opaque to the Acd: the edge knows how to ring it (a SIP URI, through the PBX or not).
    pub phone: String,
    #[serde(default)]
    pub login: LoginMode,
}

/// How an agent is logged in at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMode {
    /// Logged in (available) from the start.
    #[default]
    Static,
    /// Logged out until a feature code or the API logs them in.
    Manual,
}

/// How a queue picks the agent(s) to ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Members in their configured order, first available one (the service's default).
    #[default]
    Sequential,
    /// Continue after the member offered last, so the load is shared.
    RoundRobin,
    /// The member available for the longest time.
    LongestIdle,
    /// Every available member at once; the first answer wins.
    RingAll,
}

/// Where a caller goes when the queue cannot serve them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverflowTarget {
    Voicemail,
    /// Turned into a callback to the caller's number, keeping their place in line.
    Callback,
    /// Transferred to a partner number (a `sip:`, `sips:` or `tel:` URI).
    Partner(String),
    ClosingMessage,
}

impl<'de> Deserialize<'de> for OverflowTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OverflowTarget::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl OverflowTarget {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "voicemail" => Ok(Self::Voicemail),
            "callback" => Ok(Self::Callback),
            "closing_message" => Ok(Self::ClosingMessage),
            uri if ["sip:", "sips:", "tel:"].iter().any(|p| uri.starts_with(p))
                && uri.len() > 4 =>
            {
                Ok(Self::Partner(uri.to_string()))
            }
            other => Err(format!(
                "unknown overflow target {other:?}: expected voicemail, callback, closing_message \
                 or a sip:/sips:/tel: URI"
            )),
        }
    }
}

/// `[queues.NAME]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(default)]
    pub strategy: Strategy,
    pub members: Vec<String>,
    #[serde(default = "d_ring_timeout", deserialize_with = "de_duration")]
    pub ring_timeout: Duration,
    #[serde(default = "d_wrap_up", deserialize_with = "de_duration")]
    pub wrap_up: Duration,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub max_wait: Option<Duration>,
    #[serde(default)]
    pub overflow: Option<OverflowTarget>,
    #[serde(default)]
    pub no_agent_overflow: Option<OverflowTarget>,
    #[serde(default)]
    pub auto_pause_after: Option<u32>,
    #[serde(default = "d_announce_every", deserialize_with = "de_duration")]
    pub announce_every: Duration,
    #[serde(default = "d_retry", deserialize_with = "de_duration")]
    pub retry: Duration,
    #[serde(default = "d_default_talk", deserialize_with = "de_duration")]
    pub default_talk: Duration,
    #[serde(default = "d_default_patience", deserialize_with = "de_duration")]
    pub default_patience: Duration,
    #[serde(default = "d_callback_retries")]
    pub callback_retries: u32,
    #[serde(default = "d_callback_retry_delay", deserialize_with = "de_duration")]
    pub callback_retry_delay: Duration,
}

fn d_ring_timeout() -> Duration {
    Duration::from_secs(15)
}
fn d_wrap_up() -> Duration {
    Duration::from_secs(10)
}
fn d_announce_every() -> Duration {
    Duration::from_secs(45)
}
fn d_retry() -> Duration {
    Duration::from_secs(5)
}
fn d_default_talk() -> Duration {
    Duration::from_secs(300)
}
fn d_default_patience() -> Duration {
    Duration::from_secs(180)
}
fn d_callback_retries() -> u32 {
    2
}
fn d_callback_retry_delay() -> Duration {
    Duration::from_secs(300)
}

impl QueueConfig {
    /// A queue with the documented defaults, for code that builds configs by hand.
    pub fn new(members: &[&str]) -> Self {
        QueueConfig {
            strategy: Strategy::Sequential,
            members: members.iter().map(|m| m.to_string()).collect(),
            ring_timeout: d_ring_timeout(),
            wrap_up: d_wrap_up(),
            max_wait: None,
            overflow: None,
            no_agent_overflow: None,
            auto_pause_after: None,
            announce_every: d_announce_every(),
            retry: d_retry(),
            default_talk: d_default_talk(),
            default_patience: d_default_patience(),
            callback_retries: d_callback_retries(),
            callback_retry_delay: d_callback_retry_delay(),
        }
    }
}

impl AgentConfig {
    pub fn new(id: &str, phone: &str) -> Self {
        AgentConfig {
            id: id.to_string(),
            name: id.to_string(),
            phone: phone.to_string(),
            login: LoginMode::Static,
        }
    }
}

impl AcdConfig {
    /// Checks what serde cannot: references between agents and queues, and values that would
    /// make a queue misbehave (a zero ring timeout would skip every agent at once).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = HashSet::new();
        for a in &self.agents {
            if a.id.trim().is_empty() {
                return Err(ConfigError::EmptyAgentId);
            }
            if !ids.insert(a.id.as_str()) {
                return Err(ConfigError::DuplicateAgent(a.id.clone()));
            }
        }
        for (name, q) in &self.queues {
            if q.members.is_empty() {
                return Err(ConfigError::NoMembers(name.clone()));
            }
            let mut seen = HashSet::new();
            for m in &q.members {
                if !ids.contains(m.as_str()) {
                    return Err(ConfigError::UnknownMember {
                        queue: name.clone(),
                        agent: m.clone(),
                    });
                }
                if !seen.insert(m.as_str()) {
                    return Err(ConfigError::DuplicateMember {
                        queue: name.clone(),
                        agent: m.clone(),
                    });
                }
            }
            // Parsed durations are at most a day; a config built in code is held to the same,
            // so that `now + duration` can never overflow.
            for (key, d) in [
                ("ring_timeout", Some(q.ring_timeout)),
                ("wrap_up", Some(q.wrap_up)),
                ("max_wait", q.max_wait),
                ("announce_every", Some(q.announce_every)),
                ("retry", Some(q.retry)),
                ("default_talk", Some(q.default_talk)),
                ("default_patience", Some(q.default_patience)),
                ("callback_retry_delay", Some(q.callback_retry_delay)),
            ] {
                if d.is_some_and(|d| d > MAX_DURATION) {
                    return Err(ConfigError::TooLong {
                        queue: name.clone(),
                        key,
                    });
                }
            }
            if q.ring_timeout.is_zero() {
                return Err(ConfigError::ZeroDuration {
                    queue: name.clone(),
                    key: "ring_timeout",
                });
            }
            if q.default_talk.is_zero() {
                return Err(ConfigError::ZeroDuration {
                    queue: name.clone(),
                    key: "default_talk",
                });
            }
            if q.default_patience.is_zero() {
                return Err(ConfigError::ZeroDuration {
                    queue: name.clone(),
                    key: "default_patience",
                });
            }
            if q.max_wait.is_some() && q.overflow.is_none() {
                return Err(ConfigError::MaxWaitWithoutOverflow(name.clone()));
            }
            if q.auto_pause_after == Some(0) {
                return Err(ConfigError::ZeroAutoPause(name.clone()));
            }
        }
        Ok(())
    }
}

/// The longest duration accepted anywhere in the config.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `"500ms"`, `"15s"`, `"10min"`, `"1h"`, or a sum written together (`"1min30s"`); `"0s"` is
/// accepted (no wrap-up, no announcement). More than a day is refused as surely a typo.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let total = ld_units::parse_duration(text)?;
    if total > MAX_DURATION {
        return Err("longer than a day".into());
    }
    Ok(total)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

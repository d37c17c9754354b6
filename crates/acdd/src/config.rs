//! The daemon's TOML configuration (`[sip]`, `[trunk]`, `[store]`,
//! `[dialplan]`, `[prompts]`): unknown keys and bad values are errors with
//! `file:line:column`.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub sip: SipSection,
    /// Absent: acdd is a standalone SIP server (the embedded default).
    pub trunk: Option<TrunkSection>,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub dialplan: DialplanSection,
    #[serde(default)]
    pub prompts: PromptsSection,
    /// `[control]`: the API the CTI sidecar and supervisors' tools use.
    #[serde(default)]
    pub control: ControlSection,
    /// `[[agents]]`: the agents and their desk phones.
    #[serde(default)]
    pub agents: Vec<ld_acd::AgentConfig>,
    /// `[queues.NAME]`: the queues the dialplan refers to by name.
    #[serde(default)]
    pub queues: std::collections::BTreeMap<String, ld_acd::QueueConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// UDP and TCP listen here.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// RTP ports for the calls' media, "FIRST-LAST" (even ports are used).
    #[serde(default = "default_rtp_ports", deserialize_with = "port_range")]
    pub rtp_ports: RangeInclusive<u16>,
    /// Address put in Contact and SDP when the listen address is not the
    /// one peers reach us on.
    pub public_address: Option<IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSection {
    /// `sip:host[:port]` of the site PBX's registrar.
    #[serde(deserialize_with = "sip_uri")]
    pub registrar: String,
    pub username: String,
    pub password: String,
    /// Requested registration lifetime in seconds (RFC 3261 §10.2.1.1).
    #[serde(default = "default_expires", deserialize_with = "expires")]
    pub expires: u32,
    /// How often to check that the PBX still routes our number to us.
    #[serde(default = "default_probe", deserialize_with = "duration")]
    pub probe_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    #[serde(default = "default_store")]
    pub path: PathBuf,
    /// Where the callers' recorded messages (voicemail nodes) are written.
    #[serde(default = "default_messages")]
    pub messages_dir: PathBuf,
}

fn default_messages() -> PathBuf {
    PathBuf::from("messages")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialplanSection {
    #[serde(default = "default_dialplan")]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// HTTP/JSON on this address; loopback only is the intended use (the
    /// API has no authentication: the sidecar guards the humans). Absent:
    /// no API.
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsSection {
    /// The directory holding `fr/*.wav`.
    #[serde(default = "default_prompts")]
    pub dir: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5060))
}
fn default_rtp_ports() -> RangeInclusive<u16> {
    20000..=20999
}
fn default_expires() -> u32 {
    300
}
fn default_probe() -> Duration {
    Duration::from_secs(2)
}
fn default_store() -> PathBuf {
    PathBuf::from("acdd.sqlite")
}
fn default_dialplan() -> PathBuf {
    PathBuf::from("dialplans/default.toml")
}
fn default_prompts() -> PathBuf {
    PathBuf::from("prompts")
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection {
            listen: default_listen(),
            rtp_ports: default_rtp_ports(),
            public_address: None,
        }
    }
}
impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: default_store(),
            messages_dir: default_messages(),
        }
    }
}
impl Default for DialplanSection {
    fn default() -> Self {
        DialplanSection {
            path: default_dialplan(),
        }
    }
}
impl Default for PromptsSection {
    fn default() -> Self {
        PromptsSection {
            dir: default_prompts(),
        }
    }
}

impl Default for Config {
    /// The embedded default: a standalone server on 0.0.0.0:5060, paths
    /// relative to the working directory.
    fn default() -> Self {
        Config {
            sip: SipSection::default(),
            trunk: None,
            store: StoreSection::default(),
            dialplan: DialplanSection::default(),
            prompts: PromptsSection::default(),
            control: ControlSection::default(),
            agents: Vec::new(),
            queues: Default::default(),
        }
    }
}

fn port_range<'de, D: Deserializer<'de>>(d: D) -> Result<RangeInclusive<u16>, D::Error> {
    let s = String::deserialize(d)?;
    let bad = || {
        de::Error::custom(format!(
            "rtp_ports must be \"FIRST-LAST\" with 1024 <= FIRST < LAST <= 65534, got {s:?}"
        ))
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    // Each call needs an even RTP port and the odd one above it (RTCP,
    // RFC 3550 §11): the range must hold at least one such pair.
    if a < 1024 || b > 65534 || a >= b {
        return Err(bad());
    }
    Ok(a..=b)
}

fn sip_uri<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let rest = s.strip_prefix("sip:").ok_or_else(|| {
        de::Error::custom(format!(
            "registrar must be a sip: URI such as \"sip:127.0.0.1:5060\", got {s:?}"
        ))
    })?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(de::Error::custom(format!("registrar has no host: {s:?}")));
    }
    Ok(s)
}

fn expires<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let e = u32::deserialize(d)?;
    // Below a minute the PBX is flooded with refreshes; most registrars also
    // refuse it (423 Interval Too Brief, RFC 3261 §10.3).
    if !(60..=86400).contains(&e) {
        return Err(de::Error::custom(format!(
            "expires must be between 60 and 86400 seconds, got {e}"
        )));
    }
    Ok(e)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    match ld_dialplan::parse_duration(&s).ok() {
        Some(v) if v >= Duration::from_millis(200) => Ok(v),
        _ => Err(de::Error::custom(format!(
            "expected a duration such as \"2s\" or \"500ms\" (at least 200ms), got {s:?}"
        ))),
    }
}

/// A config error, printed as `file:line:column: message`.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

impl Config {
    /// The ACD's part of the configuration.
    pub fn acd(&self) -> ld_acd::AcdConfig {
        ld_acd::AcdConfig {
            agents: self.agents.clone(),
            queues: self.queues.clone(),
        }
    }

    /// The names of the configured queues (the dialplan may only use these).
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.keys().cloned().collect()
    }

    /// Parses `text`, naming `file` in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg = Config::parse_toml(file, text)?;
        // What serde cannot check (members that are not agents…), reported at
        // the queue's table, or the first agent, when it can be found.
        if let Err(e) = cfg.acd().validate() {
            let needle = match &e {
                ld_acd::ConfigError::NoMembers(q)
                | ld_acd::ConfigError::MaxWaitWithoutOverflow(q)
                | ld_acd::ConfigError::ZeroAutoPause(q)
                | ld_acd::ConfigError::UnknownMember { queue: q, .. }
                | ld_acd::ConfigError::DuplicateMember { queue: q, .. }
                | ld_acd::ConfigError::ZeroDuration { queue: q, .. }
                | ld_acd::ConfigError::TooLong { queue: q, .. } => format!("[queues.{q}]"),
                _ => "[[agents]]".to_string(),
            };
            let (line, col) = text
                .find(&needle)
                .map(|at| ld_dialplan::line_col(text, at))
                .unwrap_or((1, 1));
            return Err(ConfigError(format!("{file}:{line}:{col}: {e}")));
        }
        Ok(cfg)
    }

    fn parse_toml(file: &str, text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|span| ld_dialplan::line_col(text, span.start))
                .unwrap_or((1, 1));
            // The toml message repeats the source excerpt; keep its first line.
            let msg = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid configuration")
                .to_string();
            ConfigError(format!("{file}:{line}:{col}: {msg}"))
        })
    }

    /// Reads and parses a file; relative paths inside it are taken from the
    /// file's directory, so a config can be used from any working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}:1:1: cannot read: {e}", path.display())))?;
        let mut cfg = Config::parse(&path.display().to_string(), &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut cfg.store.path,
            &mut cfg.store.messages_dir,
            &mut cfg.dialplan.path,
            &mut cfg.prompts.dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// `--config FILE`, or the embedded default.
    pub fn from_arg(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[sip]
listen = "127.0.0.1:5070"
rtp_ports = "20000-20999"
[trunk]
registrar = "sip:127.0.0.1:5060"
username = "acd"
password = "acdsecret"
expires = 300
[store]
path = "acdd.sqlite"
[dialplan]
path = "dialplans/default.toml"
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = Config::parse("acdd.toml", FULL).expect("valid");
        assert_eq!(c.sip.listen, "127.0.0.1:5070".parse().expect("addr"));
        assert_eq!(c.sip.rtp_ports, 20000..=20999);
        let t = c.trunk.expect("trunk");
        assert_eq!(t.username, "acd");
        assert_eq!(t.expires, 300);
        assert_eq!(t.probe_interval, Duration::from_secs(2));
    }

    #[test]
    fn no_trunk_means_standalone_and_defaults_apply() {
        let c = Config::parse("a.toml", "[sip]\nlisten = \"127.0.0.1:5070\"\n").expect("valid");
        assert!(c.trunk.is_none());
        assert_eq!(c.store.path, PathBuf::from("acdd.sqlite"));
        assert_eq!(Config::default().sip.listen.port(), 5060);
    }

    #[test]
    fn unknown_key_is_reported_at_its_line_and_column() {
        let text = "[sip]\nlisten = \"127.0.0.1:5070\"\n  lisen = 1\n";
        let e = Config::parse("acdd.toml", text).expect_err("unknown key");
        assert!(e.0.starts_with("acdd.toml:3:3: "), "{e}");
        assert!(e.0.contains("lisen"), "{e}");
    }

    #[test]
    fn bad_values_are_reported_where_they_are() {
        let cases = [
            ("[sip]\nlisten = \"nowhere\"\n", "acdd.toml:2:10: "),
            ("[sip]\nrtp_ports = \"30000-2000\"\n", "acdd.toml:2:13: "),
            (
                "[trunk]\nregistrar = \"127.0.0.1\"\nusername = \"a\"\npassword = \"b\"\n",
                "acdd.toml:2:13: ",
            ),
            (
                "[trunk]\nregistrar = \"sip:x\"\nusername = \"a\"\npassword = \"b\"\nexpires = 5\n",
                "acdd.toml:5:11: ",
            ),
            ("[store]\npath = 3\n", "acdd.toml:2:8: "),
        ];
        for (text, prefix) in cases {
            let e = Config::parse("acdd.toml", text).expect_err(text);
            assert!(e.0.starts_with(prefix), "{text:?} gave {e}");
        }
    }

    #[test]
    fn the_shipped_container_config_parses() {
        let text = include_str!("../../../docker/acdd.toml");
        let c = Config::parse("docker/acdd.toml", text).expect("docker/acdd.toml is valid");
        assert_eq!(c.agents.len(), 3);
        assert!(c.trunk.is_some() && c.control.listen.is_some());
    }

    #[test]
    fn agents_and_queues_as_the_issue_writes_them() {
        let text = r#"
[[agents]]
id = "agent1"
name = "Agent 1"
phone = "sip:agent1@127.0.0.1:5060"
[[agents]]
id = "agent2"
name = "Agent 2"
phone = "sip:agent2@127.0.0.1:5060"
login = "manual"
[queues.accueil]
strategy = "sequential"
members = ["agent1", "agent2"]
ring_timeout = "15s"
wrap_up = "10s"
"#;
        let c = Config::parse("acdd.toml", text).expect("valid");
        assert_eq!(c.agents.len(), 2);
        assert_eq!(c.queue_names(), vec!["accueil".to_string()]);
        assert_eq!(c.queues["accueil"].ring_timeout, Duration::from_secs(15));
        let bad = text.replace(
            "members = [\"agent1\", \"agent2\"]",
            "members = [\"agent9\"]",
        );
        let e = Config::parse("acdd.toml", &bad).expect_err("unknown member");
        assert!(e.0.starts_with("acdd.toml:11:1: "), "{e}");
        assert!(e.0.contains("agent9"), "{e}");
        let typo = text.replace("wrap_up", "wrapup");
        let e = Config::parse("acdd.toml", &typo).expect_err("unknown key");
        assert!(e.0.starts_with("acdd.toml:15:1: "), "{e}");
    }
}

//! The config file's shapes are a contract with the admins' TOML.

use ld_acd::*;
use std::time::Duration;

const FULL: &str = r#"
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
max_wait = "10min"
overflow = "callback"
no_agent_overflow = "sip:partenaire@example.org"
auto_pause_after = 3
announce_every = "45s"
retry = "500ms"
default_talk = "4min30s"
default_patience = "3min"
callback_retries = 4
callback_retry_delay = "1h"

[queues.second]
strategy = "ring_all"
members = ["agent2"]
"#;

#[test]
fn full_example_parses() {
    let cfg: AcdConfig = toml::from_str(FULL).unwrap();
    assert_eq!(cfg.agents.len(), 2);
    assert_eq!(cfg.agents[0].login, LoginMode::Static);
    assert_eq!(cfg.agents[1].login, LoginMode::Manual);
    let q = &cfg.queues["accueil"];
    assert_eq!(q.strategy, Strategy::Sequential);
    assert_eq!(q.members, ["agent1", "agent2"]);
    assert_eq!(q.ring_timeout, Duration::from_secs(15));
    assert_eq!(q.max_wait, Some(Duration::from_secs(600)));
    assert_eq!(q.overflow, Some(OverflowTarget::Callback));
    assert_eq!(
        q.no_agent_overflow,
        Some(OverflowTarget::Partner("sip:partenaire@example.org".into()))
    );
    assert_eq!(q.auto_pause_after, Some(3));
    assert_eq!(q.retry, Duration::from_millis(500));
    assert_eq!(q.default_talk, Duration::from_secs(270));
    assert_eq!(q.callback_retries, 4);
    assert_eq!(q.callback_retry_delay, Duration::from_secs(3600));
    // Defaults.
    let s = &cfg.queues["second"];
    assert_eq!(s.strategy, Strategy::RingAll);
    assert_eq!(s.ring_timeout, Duration::from_secs(15));
    assert_eq!(s.wrap_up, Duration::from_secs(10));
    assert_eq!(s.announce_every, Duration::from_secs(45));
    assert_eq!(s.max_wait, None);
    assert!(Acd::new(cfg).is_ok());
}

#[test]
fn typos_and_bad_values_are_refused() {
    let base = "[[agents]]\nid = \"a\"\nname = \"A\"\nphone = \"sip:a@h\"\n[queues.q]\nmembers = [\"a\"]\n";
    for (extra, why) in [
        ("ring_timout = \"15s\"", "unknown key"),
        ("strategy = \"random\"", "unknown strategy"),
        ("ring_timeout = \"15\"", "duration without unit"),
        ("wrap_up = \"1.5s\"", "fractional duration"),
        ("overflow = \"nowhere\"", "unknown overflow target"),
        ("max_wait = \"2days\"", "unknown unit"),
    ] {
        let text = format!("{base}{extra}\n");
        assert!(
            toml::from_str::<AcdConfig>(&text).is_err(),
            "{why}: accepted"
        );
    }
    assert!(toml::from_str::<AcdConfig>(&format!("{base}login = \"static\"")).is_err());
}

#[test]
fn validation_checks_references() {
    let parse = |t: &str| toml::from_str::<AcdConfig>(t).unwrap();
    let agent = "[[agents]]\nid = \"a\"\nname = \"A\"\nphone = \"sip:a@h\"\n";
    let cases = [
        (
            format!("{agent}[queues.q]\nmembers = [\"b\"]\n"),
            ConfigError::UnknownMember {
                queue: "q".into(),
                agent: "b".into(),
            },
        ),
        (
            format!("{agent}{agent}"),
            ConfigError::DuplicateAgent("a".into()),
        ),
        (
            format!("{agent}[queues.q]\nmembers = []\n"),
            ConfigError::NoMembers("q".into()),
        ),
        (
            format!("{agent}[queues.q]\nmembers = [\"a\"]\nmax_wait = \"1min\"\n"),
            ConfigError::MaxWaitWithoutOverflow("q".into()),
        ),
        (
            format!("{agent}[queues.q]\nmembers = [\"a\"]\nring_timeout = \"0s\"\n"),
            ConfigError::ZeroDuration {
                queue: "q".into(),
                key: "ring_timeout",
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Acd::new(parse(&text)).err(), Some(want), "{text}");
    }
    // Built in code rather than parsed: held to the same bound, so deadlines cannot overflow.
    let mut cfg = parse(&format!("{agent}[queues.q]\nmembers = [\"a\"]\n"));
    cfg.queues.get_mut("q").unwrap().wrap_up = Duration::MAX;
    assert_eq!(
        Acd::new(cfg).err(),
        Some(ConfigError::TooLong {
            queue: "q".into(),
            key: "wrap_up"
        })
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("1h30min"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    for bad in ["", "s", "10", "-1s", "1.5s", "25h", "99999999999999999999s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

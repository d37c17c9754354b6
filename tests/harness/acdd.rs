//! acdd as the tests run it: the built binary, a config in the state dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::proc::Proc;

/// The acdd binary of this workspace, built once per test process with the
/// same cargo (so a test never runs a stale daemon).
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "acdd"])
                .current_dir(crate::root())
                .status()
                .expect("run cargo build -p acdd");
            assert!(status.success(), "cargo build -p acdd failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| crate::root().join("target"));
            target.join("debug/acdd")
        })
        .clone()
}

/// The config the tests use: the ACD slot of the peer kit (5070), the
/// shipped prompts, a store in the state dir.
pub fn config(state: &Path, with_trunk: bool, dialplan: Option<&Path>) -> PathBuf {
    let root = crate::root();
    let dialplan = dialplan
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("dialplans/default.toml"));
    let trunk = if with_trunk {
        "[trunk]\nregistrar = \"sip:127.0.0.1:5060\"\nusername = \"acd\"\npassword = \"acdsecret\"\nexpires = 300\nprobe_interval = \"1s\"\n"
    } else {
        ""
    };
    let text = format!(
        "[sip]\nlisten = \"127.0.0.1:5070\"\nrtp_ports = \"20000-20199\"\n{trunk}[store]\npath = \"{store}\"\n[dialplan]\npath = \"{dialplan}\"\n[prompts]\ndir = \"{prompts}\"\n",
        store = state.join("acdd.sqlite").display(),
        dialplan = dialplan.display(),
        prompts = root.join("prompts").display(),
    );
    let path = state.join("acdd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

pub struct Acdd {
    pub proc: Proc,
    pub config: PathBuf,
}

impl Acdd {
    /// Starts acdd and waits for "acdd ready" in its log.
    pub fn start(state: &Path, config: &Path, extra: &[&str]) -> Acdd {
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env("RUST_LOG", "info,rsipstack=warn");
        let proc = Proc::spawn("acdd", cmd, state.join("acdd.log"));
        let mut a = Acdd {
            proc,
            config: config.to_path_buf(),
        };
        let ready = crate::wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
            a.proc.log_text().contains("acdd ready").then_some(())
        });
        if ready.is_none() || !a.proc.is_running() {
            panic!("acdd did not start:\n{}", a.proc.log_text());
        }
        a
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// Waits for `needle` in the log.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        crate::wait_for(limit, Duration::from_millis(20), || {
            self.log().contains(needle).then_some(())
        })
        .is_some()
    }

    /// Waits until `needle` appears `count` times in the log.
    pub fn wait_log_count(&self, needle: &str, count: usize, limit: Duration) -> bool {
        crate::wait_for(limit, Duration::from_millis(20), || {
            (self.log().matches(needle).count() >= count).then_some(())
        })
        .is_some()
    }

    /// Graceful stop with SIGTERM; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        self.proc.signal("TERM");
        matches!(self.proc.wait_exit(Duration::from_secs(20)), Some(s) if s.success())
    }

    /// `acdd report calls --format json`, parsed.
    pub fn report_calls(&self) -> Vec<serde_json::Value> {
        report_calls(&self.config, &[])
    }
}

/// Runs `acdd report calls --config CONFIG --format json ARGS…`.
pub fn report_calls(config: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(binary())
        .args(["report", "calls", "--format", "json", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("run acdd report");
    assert!(
        out.status.success(),
        "acdd report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(serde_json::Value::Array(v)) => v,
        other => panic!("report is not a JSON array: {other:?}"),
    }
}

//! Child processes that are ended by PID when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A started peer; SIGTERM on drop, SIGKILL if it lingers.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    /// Started in a process group of its own (a peer that forks workers,
    /// like Kamailio): signals go to the whole group, so no worker outlives
    /// the test holding its ports.
    group: bool,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr into `log`.
    pub fn spawn(name: &str, cmd: Command, log: PathBuf) -> Proc {
        Proc::spawn_inner(name, cmd, log, false)
    }

    /// Like [`Proc::spawn`], in a new process group that is signalled whole.
    pub fn spawn_group(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        Proc::spawn_inner(name, cmd, log, true)
    }

    fn spawn_inner(name: &str, mut cmd: Command, log: PathBuf, group: bool) -> Proc {
        let out = std::fs::File::create(&log).expect("create the log");
        let err = out.try_clone().expect("clone the log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
            group,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        crate::read(&self.log)
    }

    /// Sends a signal by PID (only to the process this handle started, or
    /// to the group it leads).
    pub fn signal(&self, sig: &str) {
        let target = if self.group {
            format!("-{}", self.pid())
        } else {
            self.pid().to_string()
        };
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(target)
            .status();
    }

    /// Waits for the exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            if self.group {
                // The leader is gone; its workers may not be.
                self.signal("KILL");
            }
            return Some(status);
        }
        self.signal("TERM");
        if let Some(s) = self.wait_exit(grace) {
            if self.group {
                // Workers that outlived their parent go with it.
                self.signal("KILL");
            }
            return Some(s);
        }
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

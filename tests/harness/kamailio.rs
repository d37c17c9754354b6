//! Kamailio as the site PBX (tests/peers/kamailio/kamailio.cfg): registrar
//! with digest auth on 127.0.0.1:5060, number 3939 routed to the AOR `acd`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::Proc;

pub struct Kamailio {
    pub proc: Proc,
    ctl: String,
    defines: Vec<String>,
    state: PathBuf,
}

impl Kamailio {
    /// Starts the PBX and waits until its control socket answers.
    pub fn start(state: &Path, defines: &[&str]) -> Kamailio {
        crate::require(&["kamailio", "kamcmd"]);
        let run = state.join("kamailio");
        std::fs::create_dir_all(&run).expect("kamailio runtime dir");
        let ctl = format!("unix:{}/ctl", run.display());
        let proc = spawn(state, &run, &ctl, defines, 0);
        let k = Kamailio {
            proc,
            ctl,
            defines: defines.iter().map(|d| d.to_string()).collect(),
            state: state.to_path_buf(),
        };
        k.wait_ready();
        k
    }

    fn wait_ready(&self) {
        let ok = crate::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            self.kamcmd(&["core.uptime"]).map(|_| ())
        });
        assert!(
            ok.is_some(),
            "kamailio did not come up:\n{}",
            self.proc.log_text()
        );
    }

    /// Stops it (all its registrations are lost, as in a PBX restart).
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }

    /// Starts it again after [`Kamailio::stop`].
    pub fn restart(&mut self, generation: u32) {
        self.stop();
        let run = self.state.join("kamailio");
        let defines: Vec<&str> = self.defines.iter().map(String::as_str).collect();
        self.proc = spawn(&self.state, &run, &self.ctl, &defines, generation);
        self.wait_ready();
    }

    /// Runs kamcmd; `Some(stdout)` on success.
    pub fn kamcmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(&self.ctl)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The contact registered for `aor`, if any.
    pub fn registered_contact(&self, aor: &str) -> Option<String> {
        let out = self.kamcmd(&["ul.lookup", "location", aor])?;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("Address:"))
            .map(|s| s.trim().to_string())
    }

    /// Waits until `aor` is registered.
    pub fn wait_registered(&self, aor: &str, limit: Duration) -> Option<String> {
        crate::wait_for(limit, Duration::from_millis(50), || {
            self.registered_contact(aor)
        })
    }
}

fn spawn(state: &Path, run: &Path, ctl: &str, defines: &[&str], generation: u32) -> Proc {
    let cfg = crate::peers_dir().join("kamailio/kamailio.cfg");
    let mut cmd = Command::new("kamailio");
    cmd.arg("-DD")
        .arg("-E")
        .arg("-f")
        .arg(&cfg)
        .arg("-Y")
        .arg(run)
        .args(["-m", "64", "-M", "8"])
        .arg("-A")
        .arg(format!("CTL_SOCKET=\"{ctl}\""));
    for d in defines {
        cmd.arg("-A").arg(d);
    }
    Proc::spawn_group(
        "kamailio",
        cmd,
        state.join(format!("kamailio-{generation}.log")),
    )
}

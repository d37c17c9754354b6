//! The end-to-end harness: real peers (Kamailio as the site PBX, SIPp as
//! callers and phones) and acdd itself, on loopback only.
//!
//! Every process started here is ended by its PID when its handle drops.
//! Waiting is on events (a log line, a registration visible in the PBX, a
//! process exit), each bounded by a deadline; never a fixed sleep.

pub mod acdd;
pub mod agents;
pub mod audio;
pub mod baresip;
pub mod kamailio;
pub mod proc;
pub mod sipp;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The peers use fixed ports: tests that use them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the peers' ports for the duration of a test.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The peer kit copied into the project.
pub fn peers_dir() -> PathBuf {
    root().join("tests/peers")
}

/// A fresh state directory for one test (logs, configs, stores). Kept after
/// the test for post-mortems; short, because Kamailio's control socket path
/// must fit a unix socket name.
pub fn state_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ld-e2e-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the state dir");
    dir
}

/// Waits until `f` returns `Some`, checking every `every`, up to `limit`.
pub fn wait_for<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Is this program installed?
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

/// Panics with a clear message when a peer is missing: the suite's
/// command (tests/run.sh) installs them; a silently skipped test would lie.
pub fn require(programs: &[&str]) {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    assert!(
        missing.is_empty(),
        "missing peers {missing:?}: run tests/run.sh, which installs them"
    );
}

/// Reads a file, empty if absent.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

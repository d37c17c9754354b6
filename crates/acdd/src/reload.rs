//! Hot reload of the dialplan: on SIGHUP and when the file changes.
//!
//! A call keeps the plan it started with (it holds its own `Arc`); new calls
//! get the new one. An invalid plan is refused with its `file:line:column`
//! errors in the log and the running one stays: a typo never takes the
//! service down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ld_dialplan::Dialplan;
use ld_media::PromptCache;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often the file is looked at. Polling a file's metadata costs nothing
/// and works on every filesystem (inotify does not on some network mounts).
const POLL: Duration = Duration::from_secs(1);

/// The current plan, swapped whole on reload.
pub struct PlanHolder {
    current: RwLock<Arc<Dialplan>>,
    version: AtomicU64,
}

impl PlanHolder {
    pub fn new(plan: Dialplan) -> PlanHolder {
        PlanHolder {
            current: RwLock::new(Arc::new(plan)),
            version: AtomicU64::new(1),
        }
    }

    /// The plan for a call starting now.
    pub fn get(&self) -> Arc<Dialplan> {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, plan: Dialplan) -> u64 {
        let plan = Arc::new(plan);
        match self.current.write() {
            Ok(mut p) => *p = plan,
            Err(poisoned) => *poisoned.into_inner() = plan,
        }
        self.version.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Loads every prompt a plan uses, once, before any call needs it: its
/// files, its `say` texts (pre-rendered under prompts/fr/tts), and the
/// daemon's own.
pub fn preload(
    plan: &Dialplan,
    prompts: &PromptCache,
    prompts_dir: &Path,
    extra: &[String],
) -> Result<(), String> {
    render_missing(plan, prompts_dir)?;
    let said = plan
        .say_texts()
        .into_iter()
        .map(|t| ld_tts::prompt_name(&t, ld_tts::DEFAULT_VOICE));
    for name in plan
        .prompt_names()
        .into_iter()
        .chain(said)
        .chain(extra.iter().cloned())
    {
        let name = &name;
        prompts
            .get_or_load(name)
            .map_err(|e| format!("prompt {name}: {e}"))?;
    }
    Ok(())
}

/// Renders the `say` texts that have no prompt yet, when espeak-ng is
/// installed (shipped plans come pre-rendered: the daemon never needs it for
/// them). Without espeak-ng a missing one is an error naming the text.
fn render_missing(plan: &Dialplan, prompts_dir: &Path) -> Result<(), String> {
    let dir = prompts_dir.join(ld_tts::PROMPT_SUBDIR);
    let missing: Vec<String> = plan
        .say_texts()
        .into_iter()
        .filter(|t| !ld_tts::cached_path(t, ld_tts::DEFAULT_VOICE, &dir).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !ld_tts::is_available() {
        return Err(format!(
            "{} say text(s) not rendered and espeak-ng is not installed (run `acdd prompts render` where it is): {:?}",
            missing.len(),
            missing[0]
        ));
    }
    info!(count = missing.len(), "rendering say texts with espeak-ng");
    ld_tts::render_all(&missing, ld_tts::DEFAULT_VOICE, &dir, |_, _| {})
        .map(|_| ())
        .map_err(|e| format!("rendering say texts: {e}"))
}

/// Loads, validates and installs the plan at `path`; keeps the running one
/// on any error.
pub fn reload(
    holder: &PlanHolder,
    path: &Path,
    prompts_dir: &Path,
    prompts: &PromptCache,
    extra: &[String],
    queues: &[String],
) -> bool {
    let known = (!queues.is_empty()).then_some(queues);
    match ld_dialplan::load_with(path, prompts_dir, known) {
        Ok(plan) => {
            if let Err(e) = preload(&plan, prompts, prompts_dir, extra) {
                warn!(dialplan = %path.display(), error = %e, "dialplan not reloaded: keeping the running one");
                return false;
            }
            let v = holder.swap(plan);
            info!(dialplan = %path.display(), version = v, "dialplan reloaded; calls in progress keep their version");
            true
        }
        Err(diags) => {
            for d in &diags.0 {
                warn!("{d}");
            }
            warn!(dialplan = %path.display(), errors = diags.0.len(), "invalid dialplan not loaded: keeping the running one");
            false
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reloads on SIGHUP and on changes of the file, until `stop`.
pub async fn watch(
    holder: Arc<PlanHolder>,
    path: PathBuf,
    prompts_dir: PathBuf,
    prompts: Arc<PromptCache>,
    extra: Vec<String>,
    queues: Vec<String>,
    stop: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(POLL);
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hup_recv => {
                info!("SIGHUP: reloading the dialplan");
                last = stamp(&path);
                reload(&holder, &path, &prompts_dir, &prompts, &extra, &queues);
            }
            _ = tick.tick() => {
                let now = stamp(&path);
                if now.is_some() && now != last {
                    last = now;
                    info!(dialplan = %path.display(), "dialplan file changed: reloading");
                    reload(&holder, &path, &prompts_dir, &prompts, &extra, &queues);
                }
            }
        }
    }
}

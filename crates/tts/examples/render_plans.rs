//! Renders the `say` texts of dialplans into the prompts directory, as `acdd prompts
//! render` will:
//!
//!     cargo run -p ld-tts --example render_plans -- prompts dialplans/*.toml
//!
//! Writes `<prompts>/fr/tts/<hash>.wav` for every text not rendered yet.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let prompts = args
        .next()
        .ok_or("usage: render_plans PROMPTS_DIR PLAN.toml...")?;
    let mut texts = Vec::new();
    for plan in args {
        let text = std::fs::read_to_string(&plan)?;
        let parsed =
            ld_dialplan::parse(&plan.display().to_string(), &text).map_err(|d| d.to_string())?;
        texts.extend(parsed.say_texts());
    }
    texts.sort();
    texts.dedup();
    let dir = prompts.join(ld_tts::PROMPT_SUBDIR);
    ld_tts::render_all(&texts, ld_tts::DEFAULT_VOICE, &dir, |done, total| {
        eprint!("\rrendering {done}/{total}");
    })?;
    eprintln!("\n{} texts in {}", texts.len(), dir.display());
    Ok(())
}

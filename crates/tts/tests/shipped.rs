//! Shipped dialplans run without espeak-ng: every text they can say is pre-rendered
//! under prompts/fr/tts/ (regenerate with the `render_plans` example).

use std::path::PathBuf;

#[test]
fn shipped_plans_are_pre_rendered() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let prompts = root.join("prompts");
    let mut missing = Vec::new();
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("dialplans")).expect("dialplans/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("plan");
        let plan = ld_dialplan::parse(&path.display().to_string(), &text)
            .unwrap_or_else(|d| panic!("{d}"));
        for t in plan.say_texts() {
            count += 1;
            let name = ld_tts::prompt_name(&t, ld_tts::DEFAULT_VOICE);
            if !prompts.join(format!("{name}.wav")).is_file() {
                missing.push(t);
            }
        }
    }
    assert!(
        count > 0,
        "no shipped plan says anything: the test checks nothing"
    );
    assert!(
        missing.is_empty(),
        "not pre-rendered (cargo run -p ld-tts --example render_plans -- prompts dialplans/*.toml):\n{}",
        missing.join("\n")
    );
}

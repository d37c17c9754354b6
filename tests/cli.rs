//! The acdd command line as admins use it: check, refusal to start on a bad
//! dialplan, report formats. No network peers needed.

use std::process::{Command, Output};

use ligne_directe_e2e::acdd::{self, binary};
use ligne_directe_e2e::{root, state_dir};

fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run acdd")
}

fn text_of(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_accepts_the_shipped_configuration_and_dialplan() {
    let state = state_dir("check-ok");
    let cfg = acdd::config(&state, true, None);
    let out = run(&["check", "--config", &cfg.display().to_string()]);
    assert!(out.status.success(), "{}", text_of(&out));
    let default_plan = root().join("dialplans/default.toml");
    let out = run(&[
        "check",
        "--config",
        &cfg.display().to_string(),
        &default_plan.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text_of(&out));
}

#[test]
fn check_reports_every_dialplan_error_with_file_line_column() {
    let state = state_dir("check-bad");
    let plan = state.join("broken.toml");
    std::fs::write(
        &plan,
        "[entries]\ndefault = \"accueil\"\n\n[nodes.accueil]\ntype = \"play\"\nprompts = [\"fr/bienvenue\"]\nnext = \"nowhere\"\ncolour = \"blue\"\n",
    )
    .expect("write");
    let cfg = acdd::config(&state, false, None);
    let out = run(&[
        "check",
        "--config",
        &cfg.display().to_string(),
        &plan.display().to_string(),
    ]);
    assert!(!out.status.success());
    let report = text_of(&out);
    let name = plan.display().to_string();
    assert!(
        report.contains(&format!("{name}:7:8: ")),
        "undefined next at its value:\n{report}"
    );
    assert!(
        report.contains(&format!("{name}:8:1: ")),
        "unknown key at its place:\n{report}"
    );
}

#[test]
fn config_errors_name_the_line_and_column() {
    let state = state_dir("check-cfg");
    let cfg = state.join("acdd.toml");
    std::fs::write(
        &cfg,
        "[sip]\nlisten = \"127.0.0.1:5070\"\nrtp_ports = \"9-8\"\n",
    )
    .expect("write");
    let out = run(&["check", "--config", &cfg.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains(&format!("{}:3:13: ", cfg.display())),
        "{}",
        text_of(&out)
    );
}

#[test]
fn run_refuses_to_start_on_an_invalid_dialplan() {
    let state = state_dir("run-bad");
    let plan = state.join("broken.toml");
    std::fs::write(&plan, "[entries]\ndefault = \"nowhere\"\n").expect("write");
    let cfg = acdd::config(&state, false, Some(&plan));
    let out = run(&["run", "--config", &cfg.display().to_string()]);
    assert!(!out.status.success(), "it must not start");
    assert!(
        text_of(&out).contains(&format!("{}:2:11: ", plan.display())),
        "{}",
        text_of(&out)
    );
}

#[test]
fn bad_now_is_refused() {
    let out = run(&["run", "--now", "tomorrow-ish"]);
    assert!(!out.status.success());
    assert!(text_of(&out).contains("--now"), "{}", text_of(&out));
}

/// `acdd check` on every plan of the broken corpus: each file's first line
/// says `# expect: LINE:COLUMN: message fragment`.
#[test]
fn check_reports_the_exact_line_and_column_for_every_broken_plan() {
    let state = state_dir("check-corpus");
    let cfg = acdd::config(&state, false, None);
    let dir = root().join("tests/dialplans/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus too small: {}", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no expect line", file.display()));
        let (pos, fragment) = expect.split_once(": ").expect("LINE:COL: message");
        // Files that test queue names need the configured queues: `acdd check`
        // without [queues] skips that check, so they are left to the unit test.
        if text
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("# queues:"))
        {
            continue;
        }
        let out = run(&[
            "check",
            "--config",
            &cfg.display().to_string(),
            &file.display().to_string(),
        ]);
        assert!(!out.status.success(), "{} accepted", file.display());
        let report = text_of(&out);
        let want = format!("{}:{pos}: ", file.display());
        let line = report
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("{}: no error at {pos}:\n{report}", file.display()));
        assert!(line.contains(fragment), "{line} lacks {fragment:?}");
    }
}

#[test]
fn check_accepts_the_shipped_service_dialplan() {
    let state = state_dir("check-service");
    let cfg = acdd::config(&state, false, None);
    let plan = root().join("dialplans/ligne-directe.toml");
    let out = run(&[
        "check",
        "--config",
        &cfg.display().to_string(),
        &plan.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text_of(&out));
}

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

fn text(o: &Output) -> String {
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
    assert!(out.status.success(), "{}", text(&out));
    let default_plan = root().join("dialplans/default.toml");
    let out = run(&[
        "check",
        "--config",
        &cfg.display().to_string(),
        &default_plan.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
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
    let report = text(&out);
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
        text(&out).contains(&format!("{}:3:13: ", cfg.display())),
        "{}",
        text(&out)
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
        text(&out).contains(&format!("{}:2:11: ", plan.display())),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_now_is_refused() {
    let out = run(&["run", "--now", "tomorrow-ish"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--now"), "{}", text(&out));
}

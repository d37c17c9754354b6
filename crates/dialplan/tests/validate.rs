//! Validation: the broken corpus (one error per file, at a pinned line:column), the
//! shipped default plan, and many errors reported in one pass.

use std::path::{Path, PathBuf};

use ld_dialplan::{load, parse, parse_with, Diagnostics, PromptItem};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn errors(text: &str) -> Diagnostics {
    match parse("t.toml", text) {
        Ok(plan) => panic!("accepted: {plan:?}"),
        Err(d) => d,
    }
}

fn positions(d: &Diagnostics) -> Vec<(usize, usize)> {
    d.0.iter().map(|d| (d.line, d.column)).collect()
}

#[test]
fn broken_corpus_reports_pinned_positions() {
    let dir = manifest().join("../../tests/dialplans/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/dialplans/broken exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable corpus file");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `# expect: L:C: msg`",
                    file.display()
                )
            });
        let mut parts = expect.splitn(3, ':');
        let line: usize = parts
            .next()
            .and_then(|s| s.trim().parse().ok())
            .expect("line");
        let column: usize = parts
            .next()
            .and_then(|s| s.trim().parse().ok())
            .expect("column");
        let fragment = parts.next().expect("message fragment").trim();
        // An optional second line `# queues: a, b` gives the configured queues.
        let queues: Option<Vec<String>> = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# queues: "))
            .map(|q| q.split(',').map(|s| s.trim().to_owned()).collect());
        match parse_with(&file.display().to_string(), &text, queues.as_deref()) {
            Ok(_) => failures.push(format!("{}: accepted", file.display())),
            Err(d) => {
                let ok = d.0.len() == 1
                    && d.0[0].line == line
                    && d.0[0].column == column
                    && d.0[0].message.contains(fragment);
                if !ok {
                    failures.push(format!(
                        "{}: expected exactly {line}:{column}: {fragment}\n  got:\n{d}",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Placeholder prompt files in a temp dir: the real ones are the lead's to ship.
fn fake_prompts(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for n in names {
        let p = dir.path().join(format!("{n}.wav"));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"RIFF").expect("write");
    }
    dir
}

#[test]
fn default_plan_loads() {
    let plan_path = manifest().join("../../dialplans/default.toml");
    let real = manifest().join("../../prompts");
    let placeholder;
    let prompts: &Path =
        if real.join("fr/bienvenue.wav").is_file() && real.join("fr/information.wav").is_file() {
            &real
        } else {
            placeholder = fake_prompts(&["fr/bienvenue", "fr/information"]);
            placeholder.path()
        };
    let plan = load(&plan_path, prompts).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(plan.prompt_names(), vec!["fr/bienvenue", "fr/information"]);
    let entry = plan.entry_for("0123456789").expect("default entry");
    assert_eq!(plan.node(entry).map(|n| n.name.as_str()), Some("accueil"));
}

#[test]
fn load_reports_missing_prompt_at_its_string() {
    let dir = fake_prompts(&["fr/bienvenue"]);
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[entries]\ndefault = \"a\"\n[nodes.a]\ntype = \"play\"\nearly = true\nprompts = [\"fr/bienvenue\", \"fr/absent\"]\n",
    )
    .expect("write");
    let d = load(&plan, dir.path()).expect_err("missing prompt");
    assert_eq!(positions(&d), vec![(6, 28)], "{d}");
    assert!(d.0[0].message.contains("fr/absent.wav"), "{d}");
    assert!(d.0[0].file.ends_with("plan.toml"));
}

#[test]
fn load_reports_unreadable_file_at_1_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = load(&dir.path().join("nope.toml"), dir.path()).expect_err("no file");
    assert_eq!(positions(&d), vec![(1, 1)]);
    assert!(d.to_string().contains("nope.toml:1:1: cannot read"), "{d}");
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let text = r#"[entries]
default = "a"
"3939" = "nowhere"

[nodes.a]
type = "play"
early = "yes"
prompts = ["fr/x"]
next = "b"
colour = "blue"

[nodes.b]
type = "pause"
duration = "2 fortnights"

[nodes.c]
type = "hangup"
status = 200
"#;
    let d = errors(text);
    assert_eq!(
        positions(&d),
        vec![(3, 10), (7, 9), (10, 1), (14, 12), (18, 10)],
        "{d}"
    );
    let text = d.to_string();
    for fragment in [
        "undefined node `nowhere`",
        "`early` must be a boolean",
        "unknown key `colour`",
        "bad duration",
        "out of range",
    ] {
        assert!(text.contains(fragment), "missing {fragment:?} in\n{text}");
    }
}

#[test]
fn graph_errors_are_all_reported() {
    let text = r#"[entries]
default = "a"

[nodes.a]
type = "answer"
next = "b"

[nodes.b]
type = "play"
early = true
prompts = ["fr/x"]

[nodes.orphan]
type = "hangup"

[nodes.loop1]
type = "answer"
next = "loop2"

[nodes.loop2]
type = "answer"
next = "loop1"
"#;
    let d = errors(text);
    let msgs: Vec<String> = d.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        positions(&d),
        vec![(10, 1), (13, 1), (16, 1), (16, 1), (20, 1)],
        "{d}"
    );
    assert!(msgs[0].contains("early media after answer"), "{d}");
    assert!(msgs[1].contains("`orphan` is unreachable"), "{d}");
    assert!(msgs[2].contains("unreachable"), "{d}");
    assert!(
        msgs[3].contains("silent loop: `loop1` -> `loop2` -> `loop1`"),
        "{d}"
    );
    assert!(msgs[4].contains("unreachable"), "{d}");
}

#[test]
fn silent_loop_reachable_from_entry() {
    let text = r#"[entries]
default = "a"
[nodes.a]
type = "answer"
next = "b"
[nodes.b]
type = "answer"
next = "a"
"#;
    let d = errors(text);
    assert_eq!(positions(&d), vec![(3, 1)], "{d}");
    assert!(d.0[0].message.contains("`a` -> `b` -> `a`"), "{d}");
}

#[test]
fn loops_that_play_or_pause_are_fine() {
    let text = r#"[entries]
default = "ans"
[nodes.ans]
type = "answer"
next = "music"
[nodes.music]
type = "play"
prompts = ["fr/musique"]
next = "gap"
[nodes.gap]
type = "pause"
duration = "1s"
next = "ans"
"#;
    let plan = parse("t.toml", text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(plan.prompt_names(), vec!["fr/musique"]);
}

#[test]
fn early_play_reachable_before_answer_on_some_path_is_fine() {
    // `b` is reached before answer (from the entry) and after it (through `ans`).
    let text = r#"[entries]
default = "b"
"3939" = "ans"
[nodes.ans]
type = "answer"
next = "b"
[nodes.b]
type = "play"
early = true
prompts = ["fr/x", { announce = "estimated_wait" }]
"#;
    let plan = parse("t.toml", text).unwrap_or_else(|d| panic!("{d}"));
    let b = plan.node_id("b").expect("b");
    assert_eq!(plan.entry_for("3939"), plan.node_id("ans"));
    assert_eq!(plan.entry_for("1"), Some(b));
    match &plan.node(b).expect("node").kind {
        ld_dialplan::NodeKind::Play { prompts, .. } => assert_eq!(
            prompts,
            &vec![PromptItem::File("fr/x".into()), PromptItem::EstimatedWait]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_specific_entries_is_allowed() {
    let plan = parse(
        "t.toml",
        "[entries]\n\"3939\" = \"f\"\n[nodes.f]\ntype = \"hangup\"\nstatus = 486\n",
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert!(plan.entry_for("3939").is_some());
    assert!(plan.entry_for("1000").is_none());
}

#[test]
fn inline_table_nodes_and_dotted_keys_are_positioned() {
    let text = "[entries]\ndefault = \"a\"\n[nodes]\na = { type = \"hangup\", stauts = 480 }\n";
    let d = errors(text);
    assert_eq!(positions(&d), vec![(4, 24)], "{d}");
}

#[test]
fn shipped_ligne_directe_plan_loads() {
    let plan_path = manifest().join("../../dialplans/ligne-directe.toml");
    let prompts = manifest().join("../../prompts");
    let queues = vec!["accueil".to_string()];
    let plan = ld_dialplan::load_with(&plan_path, &prompts, Some(&queues))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(plan.prompt_names(), vec!["fr/bienvenue"]);
    assert_eq!(plan.queues(), vec!["accueil"]);
    let texts = plan.say_texts();
    for t in [
        "Le service est ouvert du lundi au vendredi de 18 heures à 22 heures.",
        "Il rouvrira aujourd'hui",
        "Il rouvrira demain",
        "Il rouvrira lundi",
        "premier",
        "trente et un",
        "décembre",
        "à 18 heures.",
        "Ce choix n'est pas valide.",
    ] {
        assert!(
            texts.contains(&t.to_string()),
            "{t:?} missing from {texts:?}"
        );
    }
    assert!(texts.iter().any(|t| t.starts_with("Acceptez-vous")));
    // An unknown queue is refused at its string.
    let other = vec!["standard".to_string()];
    let d = ld_dialplan::load_with(&plan_path, &prompts, Some(&other)).expect_err("queue");
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].message.contains("undefined queue `accueil`"), "{d}");
    let text = std::fs::read_to_string(&plan_path).expect("plan");
    let line = text
        .lines()
        .position(|l| l.starts_with("queue = \"accueil\""))
        .expect("queue line")
        + 1;
    assert_eq!((d.0[0].line, d.0[0].column), (line, 9), "{d}");
}

#[test]
fn calendars_parse_with_exceptions() {
    let text = r#"
[calendars.mairie]
timezone = "Europe/Paris"
alsace_moselle = true
closed = ["2026-12-24", "2026-12-31..2027-01-02"]
open = ["2026-07-14", { dates = "2026-05-16", hours = ["10:00-12:00"] }]
[calendars.mairie.weekly]
"monday..friday" = ["09:00-12:00", "14:00-17:00"]
saturday = ["09:00-12:00"]

[entries]
default = "h"
[nodes.h]
type = "hours"
calendar = "mairie"
open = "f"
closed = "f"
[nodes.f]
type = "hangup"
"#;
    let plan = parse("t.toml", text).unwrap_or_else(|d| panic!("{d}"));
    let c = plan.calendar("mairie").expect("calendar");
    assert!(c.alsace_moselle);
    assert_eq!(c.weekly[0].len(), 2);
    assert_eq!(c.weekly[5].len(), 1);
    assert!(c.weekly[6].is_empty());
    assert_eq!(c.closed.len(), 2);
    assert_eq!(c.open.len(), 2);
    let at = |s: &str| s.parse::<jiff::Timestamp>().expect("ts");
    assert!(c.is_open(at("2026-07-14T08:00:00Z")), "14 July opened");
    assert!(!c.is_open(at("2026-12-24T08:00:00Z")), "closed");
    assert!(
        !c.is_open(at("2026-12-26T08:00:00Z")),
        "26 Dec in Alsace-Moselle"
    );
    assert!(
        c.is_open(at("2026-05-16T08:30:00Z")),
        "exceptional Saturday hours"
    );
    assert!(
        !c.is_open(at("2026-05-16T10:30:00Z")),
        "12:30 that Saturday"
    );
    // The hours say no texts; a closed message does.
    assert!(plan.say_texts().is_empty());
}

#[test]
fn new_node_errors_are_all_reported_at_once() {
    let text = r#"[calendars.c]
weekly = { monday = ["18:00-22:00", "21:00-23:00"] }

[entries]
default = "h"

[nodes.h]
type = "hours"
calendar = "c"
open = "m"
closed = "nulle_part"

[nodes.m]
type = "menu"
prompts = [{ say = "Tapez 1." }, { announce = "closed_message", calendar = "d" }]
options = { "1" = "q", "A" = "m" }
timeout = "soon"

[nodes.q]
type = "queue"
queue = "accueil"
colour = "blue"
"#;
    let d = errors(text);
    let msgs = d.to_string();
    assert_eq!(
        positions(&d),
        vec![(2, 37), (11, 10), (15, 76), (16, 24), (17, 11), (22, 1)],
        "{d}"
    );
    for fragment in [
        "overlapping hours on monday",
        "`closed` points to undefined node `nulle_part`",
        "undefined calendar `d`",
        "bad menu key \"A\"",
        "bad duration \"soon\"",
        "unknown key `colour` in `queue` node",
    ] {
        assert!(msgs.contains(fragment), "missing {fragment:?} in\n{msgs}");
    }
}

#[test]
fn load_checks_prompt_files_in_every_node_kind() {
    let dir = fake_prompts(&["fr/menu"]);
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[entries]\ndefault = \"m\"\n[nodes.m]\ntype = \"menu\"\nprompts = [\"fr/menu\"]\ninvalid = [\"fr/invalide\"]\noptions = { \"1\" = \"v\" }\n[nodes.v]\ntype = \"voicemail\"\nprompts = [\"fr/bip\"]\n",
    )
    .expect("write");
    let d = load(&plan, dir.path()).expect_err("missing prompts");
    assert_eq!(positions(&d), vec![(6, 12), (10, 12)], "{d}");
}

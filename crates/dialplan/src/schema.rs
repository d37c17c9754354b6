//! Walks the TOML tree by hand (toml_edit keeps byte spans on every key and value) so that
//! every schema error is reported with its exact position, all in one pass.
//!
//! Adding a node kind: a variant in [`NodeKind`], a `parse_*` function here and one row in
//! [`KINDS`] (its keys drive the unknown-key check), then its arms in `successors`,
//! `is_silent` and the interpreter.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use crate::diag::Diagnostic;
use crate::model::{Dialplan, Node, NodeId, NodeKind, PromptItem};

/// The parse result before graph checks: the plan plus the positions those checks need.
pub(crate) struct Parsed {
    pub plan: Dialplan,
    /// Byte offset of each node's table header (indexed like `plan.nodes`).
    pub node_pos: Vec<usize>,
    /// Every prompt file reference with the byte offset of its string.
    pub prompt_refs: Vec<(String, usize)>,
    /// Byte offset of each key of each node (indexed like `plan.nodes`), so graph errors
    /// can point at the offending key rather than the header.
    pub key_pos: Vec<HashMap<String, usize>>,
    /// True when some node could not be fully understood: its edges are unknown, so the
    /// graph checks are skipped instead of cascading into false reports.
    pub broken: bool,
}

/// Collects diagnostics for one file.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn err(&mut self, offset: usize, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(self.file, self.text, offset, message));
    }
}

/// A node kind: its `type` name, the keys it accepts besides `type`, and its parser.
struct KindSpec {
    name: &'static str,
    keys: &'static [&'static str],
    parse: fn(&mut NodeCx<'_, '_>) -> Option<NodeKind>,
}

const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "play",
        keys: &["prompts", "early", "next"],
        parse: parse_play,
    },
    KindSpec {
        name: "answer",
        keys: &["next"],
        parse: parse_answer,
    },
    KindSpec {
        name: "pause",
        keys: &["duration", "next"],
        parse: parse_pause,
    },
    KindSpec {
        name: "hangup",
        keys: &["status"],
        parse: parse_hangup,
    },
];

const ROOT_KEYS: &[&str] = &["entries", "nodes"];

fn start(span: Option<std::ops::Range<usize>>) -> usize {
    span.map_or(0, |s| s.start)
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Position of a table-like item: its header, or its key when it has none (dotted keys).
fn item_pos(key: Option<&toml_edit::Key>, item: &Item) -> usize {
    item.span()
        .or_else(|| key.and_then(|k| k.span()))
        .map_or(0, |s| s.start)
}

pub(crate) fn parse_document(cx: &mut Ctx<'_>) -> Option<Parsed> {
    let doc = match toml_edit::Document::parse(cx.text) {
        Ok(doc) => doc,
        Err(e) => {
            // One syntax error is all the TOML parser gives; nothing else can be checked.
            cx.err(start(e.span()), e.message().trim().to_owned());
            return None;
        }
    };
    let root = doc.as_table();
    for (key, _) in root.iter() {
        if !ROOT_KEYS.contains(&key) {
            cx.err(
                start(root.key(key).and_then(|k| k.span())),
                format!("unknown key `{key}` (expected one of {})", list(ROOT_KEYS)),
            );
        }
    }

    // Pass 1: node names, so that `next` can be resolved (and checked) while parsing.
    let mut names: Vec<(String, usize, &dyn TableLike)> = Vec::new();
    let mut broken = false;
    match root.get_key_value("nodes") {
        None => cx.err(0, "no nodes: add a `[nodes.<name>]` table"),
        Some((key, item)) => match item.as_table_like() {
            None => cx.err(
                start(item.span()),
                format!("`nodes` must be a table, found {}", item.type_name()),
            ),
            Some(t) => {
                if t.is_empty() {
                    cx.err(item_pos(Some(key), item), "no nodes defined");
                }
                for (name, node) in t.iter() {
                    let pos = item_pos(t.key(name), node);
                    match node.as_table_like() {
                        Some(nt) => names.push((name.to_owned(), pos, nt)),
                        None => {
                            broken = true;
                            cx.err(
                                start(node.span()).max(pos),
                                format!(
                                    "node `{name}` must be a table, found {}",
                                    node.type_name()
                                ),
                            );
                        }
                    }
                }
            }
        },
    }
    let ids: HashMap<String, NodeId> = names
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| (n.clone(), NodeId(i)))
        .collect();

    // Pass 2: each node by its kind.
    let mut nodes = Vec::with_capacity(names.len());
    let mut node_pos = Vec::with_capacity(names.len());
    let mut prompt_refs = Vec::new();
    let mut key_pos = Vec::with_capacity(names.len());
    for (name, pos, table) in &names {
        key_pos.push(
            table
                .iter()
                .map(|(k, _)| {
                    (
                        k.to_owned(),
                        start(table.key(k).and_then(|k| k.span())).max(*pos),
                    )
                })
                .collect(),
        );
        let mut ncx = NodeCx {
            cx,
            name,
            pos: *pos,
            table: *table,
            ids: &ids,
            broken: false,
            prompt_refs: &mut prompt_refs,
        };
        let kind = ncx.parse();
        broken |= ncx.broken || kind.is_none();
        nodes.push(Node {
            name: name.clone(),
            // A placeholder keeps indices aligned; the plan is rejected anyway.
            kind: kind.unwrap_or(NodeKind::Hangup { status: None }),
        });
        node_pos.push(*pos);
    }

    let entries = parse_entries(cx, root, &ids);
    Some(Parsed {
        plan: Dialplan { nodes, entries },
        node_pos,
        key_pos,
        prompt_refs,
        broken,
    })
}

fn parse_entries(
    cx: &mut Ctx<'_>,
    root: &toml_edit::Table,
    ids: &HashMap<String, NodeId>,
) -> BTreeMap<String, NodeId> {
    let mut entries = BTreeMap::new();
    let Some((key, item)) = root.get_key_value("entries") else {
        cx.err(0, "no entries: add `[entries]` with `default = \"<node>\"`");
        return entries;
    };
    let pos = item_pos(Some(key), item);
    let Some(t) = item.as_table_like() else {
        cx.err(
            start(item.span()).max(pos),
            format!("`entries` must be a table, found {}", item.type_name()),
        );
        return entries;
    };
    if t.is_empty() {
        cx.err(
            pos,
            "no entries: add `default = \"<node>\"` (or a called number) here",
        );
    }
    for (number, target) in t.iter() {
        let kpos = start(t.key(number).and_then(|k| k.span()));
        if number.is_empty() {
            cx.err(kpos, "empty called number in `entries`");
            continue;
        }
        match target.as_str() {
            None => cx.err(
                start(target.span()).max(kpos),
                format!(
                    "entry `{number}` must be a node name (string), found {}",
                    target.type_name()
                ),
            ),
            Some(node) => match ids.get(node) {
                Some(id) => {
                    entries.insert(number.to_owned(), *id);
                }
                None => cx.err(
                    start(target.span()),
                    format!("entry `{number}` points to undefined node `{node}`"),
                ),
            },
        }
    }
    entries
}

/// Parsing context of one node table.
struct NodeCx<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    name: &'c str,
    pos: usize,
    table: &'c dyn TableLike,
    ids: &'c HashMap<String, NodeId>,
    broken: bool,
    prompt_refs: &'c mut Vec<(String, usize)>,
}

impl NodeCx<'_, '_> {
    fn err(&mut self, offset: usize, message: impl Into<String>) {
        self.broken = true;
        self.cx.err(offset, message);
    }

    fn parse(&mut self) -> Option<NodeKind> {
        let (kind_name, kind_pos) =
            self.required("type", "a string", |i| i.as_str().map(str::to_owned))?;
        let Some(spec) = KINDS.iter().find(|k| k.name == kind_name.as_str()) else {
            let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            self.err(
                kind_pos,
                format!(
                    "unknown node type `{kind_name}` (expected one of {})",
                    list(&names)
                ),
            );
            return None;
        };
        for (key, _) in self.table.iter() {
            if key != "type" && !spec.keys.contains(&key) {
                let kpos = start(self.table.key(key).and_then(|k| k.span()));
                self.err(
                    kpos,
                    format!(
                        "unknown key `{key}` in `{}` node `{}` (expected {})",
                        spec.name,
                        self.name,
                        list(spec.keys)
                    ),
                );
            }
        }
        (spec.parse)(self)
    }

    /// Value position, falling back to the node header for values without a span.
    fn value_pos(&self, item: &Item) -> usize {
        start(item.span()).max(self.pos)
    }

    /// An optional key: `Ok(None)` when absent, `Err(())` when present with the wrong type
    /// (already reported at the value).
    fn optional<T>(
        &mut self,
        key: &str,
        expected: &str,
        conv: impl Fn(&Item) -> Option<T>,
    ) -> Result<Option<(T, usize)>, ()> {
        let table = self.table;
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let pos = self.value_pos(item);
        match conv(item) {
            Some(v) => Ok(Some((v, pos))),
            None => {
                self.err(
                    pos,
                    format!("`{key}` must be {expected}, found {}", item.type_name()),
                );
                Err(())
            }
        }
    }

    /// A required key; when missing, the error is at the node's table header.
    fn required<T>(
        &mut self,
        key: &str,
        expected: &str,
        conv: impl Fn(&Item) -> Option<T>,
    ) -> Option<(T, usize)> {
        match self.optional(key, expected, conv) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                let (pos, msg) = (
                    self.pos,
                    format!("node `{}` is missing required key `{key}`", self.name),
                );
                self.err(pos, msg);
                None
            }
            Err(()) => None,
        }
    }

    /// The optional `next` key, resolved to a node; an unknown name is reported at the string.
    fn next(&mut self) -> Result<Option<NodeId>, ()> {
        let Some((target, pos)) = self.optional("next", "a node name (string)", |i| {
            i.as_str().map(str::to_owned)
        })?
        else {
            return Ok(None);
        };
        match self.ids.get(&target) {
            Some(id) => Ok(Some(*id)),
            None => {
                self.err(pos, format!("`next` points to undefined node `{target}`"));
                Err(())
            }
        }
    }
}

fn parse_play(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let early = n.optional("early", "a boolean", Item::as_bool);
    let next = n.next();
    let prompts = n
        .required("prompts", "an array", |i| i.as_array().cloned())
        .and_then(|(array, pos)| parse_prompts(n, &array, pos));
    Some(NodeKind::Play {
        prompts: prompts?,
        early: early.ok()?.is_some_and(|(b, _)| b),
        next: next.ok()?,
    })
}

/// Prompt items: `"fr/name"` (a file) or `{ announce = "estimated_wait" }`.
fn parse_prompts(
    n: &mut NodeCx<'_, '_>,
    array: &toml_edit::Array,
    pos: usize,
) -> Option<Vec<PromptItem>> {
    if array.is_empty() {
        n.err(pos, "`prompts` must not be empty");
        return None;
    }
    let mut items = Vec::with_capacity(array.len());
    let mut ok = true;
    for value in array.iter() {
        let vpos = start(value.span()).max(pos);
        match value {
            Value::String(s) => match check_prompt_name(s.value()) {
                Ok(()) => {
                    n.prompt_refs.push((s.value().clone(), vpos));
                    items.push(PromptItem::File(s.value().clone()));
                }
                Err(why) => {
                    ok = false;
                    n.err(vpos, format!("bad prompt name {:?}: {why}", s.value()));
                }
            },
            Value::InlineTable(t) => match parse_announce(n, t, vpos) {
                Some(item) => items.push(item),
                None => ok = false,
            },
            other => {
                ok = false;
                n.err(
                    vpos,
                    format!(
                        "a prompt must be a file name or {{ announce = \"estimated_wait\" }}, found {}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(items)
}

const ANNOUNCEMENTS: &[&str] = &["estimated_wait"];

fn parse_announce(
    n: &mut NodeCx<'_, '_>,
    t: &toml_edit::InlineTable,
    pos: usize,
) -> Option<PromptItem> {
    let mut result = None;
    let mut ok = true;
    for (key, value) in t.iter() {
        let kpos = start(t.key(key).and_then(|k| k.span())).max(pos);
        if key != "announce" {
            ok = false;
            n.err(
                kpos,
                format!("unknown key `{key}` in a prompt (expected `announce`)"),
            );
            continue;
        }
        let vpos = start(value.span()).max(pos);
        match value.as_str() {
            Some("estimated_wait") => result = Some(PromptItem::EstimatedWait),
            _ => {
                ok = false;
                n.err(
                    vpos,
                    format!(
                        "unknown announcement (expected one of {})",
                        list(ANNOUNCEMENTS)
                    ),
                );
            }
        }
    }
    if result.is_none() && ok {
        n.err(pos, "a prompt table needs `announce = \"estimated_wait\"`");
    }
    result.filter(|_| ok)
}

/// Prompt names become paths under the prompts directory: keep them relative and tame so a
/// plan can never point outside it.
fn check_prompt_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.ends_with(".wav") {
        return Err("give the name without `.wav`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
    {
        return Err("use only letters, digits, `_`, `-`, `.` and `/`");
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err("must be a relative path inside the prompts directory");
    }
    Ok(())
}

fn parse_answer(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    Some(NodeKind::Answer {
        next: n.next().ok()?,
    })
}

fn parse_pause(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let next = n.next();
    let duration = n
        .required("duration", "a string like \"2s\" or \"500ms\"", |i| {
            i.as_str().map(str::to_owned)
        })
        .and_then(|(text, pos)| match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                n.err(pos, format!("bad duration {text:?}: {why}"));
                None
            }
        });
    Some(NodeKind::Pause {
        duration: duration?,
        next: next.ok()?,
    })
}

fn parse_hangup(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let status = match n.optional("status", "an integer", Item::as_integer).ok()? {
        None => None,
        // Only final non-2xx responses make sense for a call we refuse (RFC 3261 §21.4-6).
        Some((s, pos)) => match u16::try_from(s) {
            Ok(s) if (400..=699).contains(&s) => Some(s),
            _ => {
                n.err(pos, format!("status {s} out of range 400..=699"));
                return None;
            }
        },
    };
    Some(NodeKind::Hangup { status })
}

/// The longest pause accepted: a longer silence is surely a typo (`"30m"` for `"30s"`).
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// `"500ms"`, `"2s"`, `"1min"`, `"1h"`, or a sum of them written together (`"1min30s"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a whole number followed by ms, s, min or h";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(EXPECTED.into());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(EXPECTED.into());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| EXPECTED.to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "min" | "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(EXPECTED.into()),
        };
        rest = &rest[unit_len..];
        let ms = value
            .checked_mul(unit_ms)
            .ok_or_else(|| "too long".to_string())?;
        total = total.saturating_add(Duration::from_millis(ms));
    }
    if total.is_zero() {
        return Err("must be longer than zero".into());
    }
    if total > MAX_PAUSE {
        return Err("longer than one hour".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1min30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "2",
            "s",
            "2x",
            "0s",
            "2h",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prompt_names() {
        assert!(check_prompt_name("fr/bienvenue").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "fr//x",
            "fr/x.wav",
            "fr/é",
            "fr/./x",
        ] {
            assert!(check_prompt_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}

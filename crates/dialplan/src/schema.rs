//! Walks the TOML tree by hand (toml_edit keeps byte spans on every key and value) so that
//! every schema error is reported with its exact position, all in one pass.
//!
//! Adding a node kind: a variant in [`NodeKind`], a `parse_*` function here and one row in
//! [`KINDS`] (its keys drive the unknown-key check), then its arms in `successors`,
//! `is_silent` and the interpreter.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use crate::calendar::{Calendar, DateRange, Opening, TimeRange, WEEKDAYS_EN};
use crate::diag::Diagnostic;
use crate::model::{
    Dialplan, ListKind, Node, NodeId, NodeKind, PromptItem, Question, TransferMethod,
};

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
    /// The queues configured in the daemon; `None` skips the check.
    pub known_queues: Option<&'a [String]>,
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
    KindSpec {
        name: "hours",
        keys: &["calendar", "open", "closed"],
        parse: parse_hours,
    },
    KindSpec {
        name: "menu",
        keys: &[
            "prompts",
            "options",
            "timeout",
            "retries",
            "invalid",
            "fallback",
            "on_timeout",
            "early",
        ],
        parse: parse_menu,
    },
    KindSpec {
        name: "queue",
        keys: &["queue", "next", "after"],
        parse: parse_queue,
    },
    KindSpec {
        name: "goto",
        keys: &["next"],
        parse: parse_goto,
    },
    KindSpec {
        name: "set",
        keys: &["set", "next"],
        parse: parse_set,
    },
    KindSpec {
        name: "consent",
        keys: &[
            "prompts", "yes", "no", "timeout", "retries", "invalid", "early", "next",
        ],
        parse: parse_consent,
    },
    KindSpec {
        name: "transfer",
        keys: &["target", "method", "next"],
        parse: parse_transfer,
    },
    KindSpec {
        name: "voicemail",
        keys: &["prompts", "max", "next"],
        parse: parse_voicemail,
    },
    KindSpec {
        name: "callback",
        keys: &["prompts"],
        parse: parse_callback,
    },
    KindSpec {
        name: "survey",
        keys: &[
            "prompts", "scale", "variable", "timeout", "retries", "invalid", "thanks", "next",
        ],
        parse: parse_survey,
    },
    KindSpec {
        name: "list",
        keys: &["blocklist", "allowlist", "match", "nomatch"],
        parse: parse_list,
    },
];

const ROOT_KEYS: &[&str] = &["entries", "nodes", "calendars"];

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

    let calendars = parse_calendars(cx, root);

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
            calendars: &calendars,
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
        plan: Dialplan {
            nodes,
            entries,
            calendars,
        },
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
    calendars: &'c BTreeMap<String, Calendar>,
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
        self.node_ref("next")
    }

    /// An optional key naming a node, resolved; an unknown name is reported at the string.
    fn node_ref(&mut self, key: &str) -> Result<Option<NodeId>, ()> {
        let Some((target, pos)) = self.optional(key, "a node name (string)", |i| {
            i.as_str().map(str::to_owned)
        })?
        else {
            return Ok(None);
        };
        self.resolve(key, &target, pos).map(Some)
    }

    /// A required key naming a node.
    fn node_req(&mut self, key: &str) -> Option<NodeId> {
        let (target, pos) = self.required(key, "a node name (string)", |i| {
            i.as_str().map(str::to_owned)
        })?;
        self.resolve(key, &target, pos).ok()
    }

    fn resolve(&mut self, key: &str, target: &str, pos: usize) -> Result<NodeId, ()> {
        match self.ids.get(target) {
            Some(id) => Ok(*id),
            None => {
                self.err(pos, format!("`{key}` points to undefined node `{target}`"));
                Err(())
            }
        }
    }

    /// A prompt list under `key`: `Ok(None)` when absent and not required.
    fn prompts(&mut self, key: &str, required: bool) -> Result<Option<Vec<PromptItem>>, ()> {
        let got = if required {
            self.required(key, "an array", |i| i.as_array().cloned())
                .ok_or(())?
        } else {
            match self.optional(key, "an array", |i| i.as_array().cloned())? {
                Some(v) => v,
                None => return Ok(None),
            }
        };
        let (array, pos) = got;
        parse_prompts(self, &array, pos, key).map(Some).ok_or(())
    }

    /// An optional duration key, with its default.
    fn duration(&mut self, key: &str, default: Duration) -> Result<Duration, ()> {
        match self.optional(key, "a string like \"5s\" or \"2min\"", |i| {
            i.as_str().map(str::to_owned)
        })? {
            None => Ok(default),
            Some((text, pos)) => parse_duration(&text).map_err(|why| {
                self.err(pos, format!("bad duration {text:?}: {why}"));
            }),
        }
    }

    /// One DTMF key given as a string (`"1"`, `"*"`, `"#"`).
    fn key_char(&mut self, key: &str, default: char) -> Result<char, ()> {
        match self.optional(key, "a DTMF key (string)", |i| {
            i.as_str().map(str::to_owned)
        })? {
            None => Ok(default),
            Some((text, pos)) => dtmf_key(&text).ok_or_else(|| {
                self.err(
                    pos,
                    format!("bad DTMF key {text:?}: expected one of 0-9, * or #"),
                );
            }),
        }
    }

    /// The shared keys of `menu`, `consent` and `survey`: `retries` defaults to
    /// `default_retries`; `early` is read only where the kind accepts it.
    fn question(&mut self, default_retries: u32, early_allowed: bool) -> Option<Question> {
        let early = if early_allowed {
            self.optional("early", "a boolean", Item::as_bool)
        } else {
            Ok(None)
        };
        let prompts = self.prompts("prompts", true);
        let invalid = self.prompts("invalid", false);
        let timeout = self.duration("timeout", Duration::from_secs(5));
        let retries = match self.optional("retries", "an integer", Item::as_integer) {
            Ok(None) => Ok(default_retries),
            Ok(Some((r, pos))) => match u32::try_from(r) {
                Ok(r) if r <= MAX_RETRIES => Ok(r),
                _ => {
                    self.err(pos, format!("retries {r} out of range 0..={MAX_RETRIES}"));
                    Err(())
                }
            },
            Err(()) => Err(()),
        };
        Some(Question {
            prompts: prompts.ok()??,
            invalid: invalid.ok()?.unwrap_or_default(),
            timeout: timeout.ok()?,
            retries: retries.ok()?,
            early: early.ok()?.is_some_and(|(b, _)| b),
        })
    }
}

fn parse_play(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let early = n.optional("early", "a boolean", Item::as_bool);
    let next = n.next();
    let prompts = n.prompts("prompts", true);
    Some(NodeKind::Play {
        prompts: prompts.ok()??,
        early: early.ok()?.is_some_and(|(b, _)| b),
        next: next.ok()?,
    })
}

/// Prompt items: `"fr/name"` (a file), `{ say = "…" }`, `{ announce = "estimated_wait" }`
/// or `{ announce = "closed_message", calendar = "…" }`.
fn parse_prompts(
    n: &mut NodeCx<'_, '_>,
    array: &toml_edit::Array,
    pos: usize,
    key: &str,
) -> Option<Vec<PromptItem>> {
    if array.is_empty() {
        n.err(pos, format!("`{key}` must not be empty"));
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
            Value::InlineTable(t) => match parse_prompt_table(n, t, vpos) {
                Some(item) => items.push(item),
                None => ok = false,
            },
            other => {
                ok = false;
                n.err(
                    vpos,
                    format!(
                        "a prompt must be a file name, {{ say = \"…\" }} or {{ announce = \"…\" }}, found {}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(items)
}

const ANNOUNCEMENTS: &[&str] = &["estimated_wait", "closed_message"];

/// The longest `say` text: a prompt, not a speech.
const MAX_SAY: usize = 1000;

fn parse_prompt_table(
    n: &mut NodeCx<'_, '_>,
    t: &toml_edit::InlineTable,
    pos: usize,
) -> Option<PromptItem> {
    let mut ok = true;
    let mut fields: HashMap<&str, (String, usize)> = HashMap::new();
    for (key, value) in t.iter() {
        let kpos = start(t.key(key).and_then(|k| k.span())).max(pos);
        if !["announce", "calendar", "say"].contains(&key) {
            ok = false;
            n.err(
                kpos,
                format!(
                    "unknown key `{key}` in a prompt (expected `say`, `announce` or `calendar`)"
                ),
            );
            continue;
        }
        let vpos = start(value.span()).max(pos);
        match value.as_str() {
            Some(v) => {
                fields.insert(key, (v.to_owned(), vpos));
            }
            None => {
                ok = false;
                n.err(
                    vpos,
                    format!("`{key}` must be a string, found {}", value.type_name()),
                );
            }
        }
    }
    if !ok {
        return None;
    }
    match (
        fields.get("say"),
        fields.get("announce"),
        fields.get("calendar"),
    ) {
        (Some((text, vpos)), None, None) => {
            let text = text.trim();
            if text.is_empty() {
                n.err(*vpos, "`say` text must not be empty");
                None
            } else if text.chars().count() > MAX_SAY {
                n.err(
                    *vpos,
                    format!("`say` text longer than {MAX_SAY} characters"),
                );
                None
            } else if text.chars().any(char::is_control) {
                n.err(
                    *vpos,
                    "`say` text must be one line without control characters",
                );
                None
            } else {
                Some(PromptItem::Say(text.to_owned()))
            }
        }
        (None, Some((a, apos)), cal) => match (a.as_str(), cal) {
            ("estimated_wait", None) => Some(PromptItem::EstimatedWait),
            ("estimated_wait", Some((_, cpos))) => {
                n.err(
                    *cpos,
                    "`calendar` only goes with `announce = \"closed_message\"`",
                );
                None
            }
            ("closed_message", Some((c, cpos))) => {
                if n.calendars.contains_key(c) {
                    Some(PromptItem::ClosedMessage {
                        calendar: c.clone(),
                    })
                } else {
                    n.err(*cpos, format!("undefined calendar `{c}`"));
                    None
                }
            }
            ("closed_message", None) => {
                n.err(
                    pos,
                    "`announce = \"closed_message\"` needs `calendar = \"<name>\"`",
                );
                None
            }
            _ => {
                n.err(
                    *apos,
                    format!(
                        "unknown announcement (expected one of {})",
                        list(ANNOUNCEMENTS)
                    ),
                );
                None
            }
        },
        (Some(_), Some(_), _) => {
            n.err(pos, "a prompt is either `say` or `announce`, not both");
            None
        }
        (Some(_), None, Some((_, cpos))) => {
            n.err(
                *cpos,
                "`calendar` only goes with `announce = \"closed_message\"`",
            );
            None
        }
        (None, None, _) => {
            n.err(
                pos,
                "a prompt table needs `say = \"…\"` or `announce = \"estimated_wait\"`",
            );
            None
        }
    }
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

const MAX_RETRIES: u32 = 10;

fn dtmf_key(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => None,
    }
}

fn parse_hours(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let calendar = n
        .required("calendar", "a calendar name (string)", |i| {
            i.as_str().map(str::to_owned)
        })
        .and_then(|(c, pos)| {
            if n.calendars.contains_key(&c) {
                Some(c)
            } else {
                n.err(pos, format!("undefined calendar `{c}`"));
                None
            }
        });
    let open = n.node_req("open");
    let closed = n.node_req("closed");
    Some(NodeKind::Hours {
        calendar: calendar?,
        open: open?,
        closed: closed?,
    })
}

fn parse_menu(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let question = n.question(2, true);
    let fallback = n.node_ref("fallback");
    let on_timeout = n.node_ref("on_timeout");
    let options = n
        .required("options", "a table of keys to nodes", |i| {
            i.as_table_like().map(|_| ())
        })
        .and_then(|((), pos)| {
            let table = n.table.get("options")?.as_table_like()?;
            if table.is_empty() {
                n.err(pos, "`options` must not be empty");
                return None;
            }
            let mut options = BTreeMap::new();
            let mut ok = true;
            for (key, item) in table.iter() {
                let kpos = start(table.key(key).and_then(|k| k.span())).max(pos);
                let Some(c) = dtmf_key(key) else {
                    ok = false;
                    n.err(
                        kpos,
                        format!("bad menu key {key:?}: expected one of 0-9, * or #"),
                    );
                    continue;
                };
                let vpos = start(item.span()).max(kpos);
                match item.as_str() {
                    Some(target) => match n.resolve(&format!("options.{key}"), target, vpos) {
                        Ok(id) => {
                            options.insert(c, id);
                        }
                        Err(()) => ok = false,
                    },
                    None => {
                        ok = false;
                        n.err(
                            vpos,
                            format!(
                                "option {key:?} must be a node name (string), found {}",
                                item.type_name()
                            ),
                        );
                    }
                }
            }
            ok.then_some(options)
        });
    Some(NodeKind::Menu {
        question: question?,
        options: options?,
        fallback: fallback.ok()?,
        on_timeout: on_timeout.ok()?,
    })
}

fn parse_queue(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let next = n.next();
    let after = n.node_ref("after");
    let known = n.cx.known_queues;
    let queue = n
        .required("queue", "a queue name (string)", |i| {
            i.as_str().map(str::to_owned)
        })
        .and_then(|(q, pos)| match known {
            Some(known) if !known.contains(&q) => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                n.err(
                    pos,
                    format!(
                        "undefined queue `{q}` (configured: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            list(&names)
                        }
                    ),
                );
                None
            }
            _ => Some(q),
        });
    Some(NodeKind::Queue {
        queue: queue?,
        next: next.ok()?,
        after: after.ok()?,
    })
}

fn parse_goto(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    Some(NodeKind::Goto {
        next: n.node_req("next")?,
    })
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn parse_set(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let next = n.next();
    let vars = n
        .required("set", "a table of variables", |i| {
            i.as_table_like().map(|_| ())
        })
        .and_then(|((), pos)| {
            let table = n.table.get("set")?.as_table_like()?;
            if table.is_empty() {
                n.err(pos, "`set` must not be empty");
                return None;
            }
            let mut vars = Vec::new();
            let mut ok = true;
            for (key, item) in table.iter() {
                let kpos = start(table.key(key).and_then(|k| k.span())).max(pos);
                if !is_identifier(key) {
                    ok = false;
                    n.err(
                        kpos,
                        format!("bad variable name {key:?}: use a-z, 0-9 and `_`"),
                    );
                    continue;
                }
                match item.as_str() {
                    Some(v) => vars.push((key.to_owned(), v.to_owned())),
                    None => {
                        ok = false;
                        n.err(
                            start(item.span()).max(kpos),
                            format!(
                                "variable `{key}` must be a string, found {}",
                                item.type_name()
                            ),
                        );
                    }
                }
            }
            ok.then_some(vars)
        });
    Some(NodeKind::Set {
        vars: vars?,
        next: next.ok()?,
    })
}

fn parse_consent(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let question = n.question(2, true);
    let yes = n.key_char("yes", '1');
    let no = n.key_char("no", '2');
    let next = n.next();
    let (yes, no) = (yes.ok()?, no.ok()?);
    if yes == no {
        let pos = n.table.get("no").map_or(n.pos, |i| n.value_pos(i));
        n.err(pos, "`yes` and `no` must be different keys");
        return None;
    }
    Some(NodeKind::Consent {
        question: question?,
        yes,
        no,
        next: next.ok()?,
    })
}

/// A SIP/tel URI or a phone number: what a REFER or an INVITE can target.
fn check_target(t: &str) -> Result<(), &'static str> {
    let number = |s: &str| {
        let s = s.strip_prefix('+').unwrap_or(s);
        !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_ascii_digit())
    };
    if let Some(rest) = t.strip_prefix("sip:").or_else(|| t.strip_prefix("sips:")) {
        if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains('<') {
            return Err("a SIP URI needs a user and host, without spaces");
        }
        return Ok(());
    }
    if let Some(rest) = t.strip_prefix("tel:") {
        return if number(rest) {
            Ok(())
        } else {
            Err("a tel: URI needs a number")
        };
    }
    if number(t) {
        Ok(())
    } else {
        Err("expected a sip:, sips: or tel: URI, or a number such as \"+33123456789\"")
    }
}

fn parse_transfer(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let next = n.next();
    let target = n
        .required("target", "a URI or a number (string)", |i| {
            i.as_str().map(str::to_owned)
        })
        .and_then(|(t, pos)| match check_target(&t) {
            Ok(()) => Some(t),
            Err(why) => {
                n.err(pos, format!("bad transfer target {t:?}: {why}"));
                None
            }
        });
    let method = match n.optional("method", "a string", |i| i.as_str().map(str::to_owned)) {
        Ok(None) => Some(TransferMethod::Refer),
        Ok(Some((m, pos))) => match m.as_str() {
            "refer" => Some(TransferMethod::Refer),
            "invite" => Some(TransferMethod::Invite),
            _ => {
                n.err(
                    pos,
                    format!("unknown transfer method {m:?} (expected `refer` or `invite`)"),
                );
                None
            }
        },
        Err(()) => None,
    };
    Some(NodeKind::Transfer {
        target: target?,
        method: method?,
        next: next.ok()?,
    })
}

fn parse_voicemail(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let prompts = n.prompts("prompts", true);
    let max = n.duration("max", Duration::from_secs(120));
    let next = n.next();
    Some(NodeKind::Voicemail {
        prompts: prompts.ok()??,
        max: max.ok()?,
        next: next.ok()?,
    })
}

/// The highest mark of a survey: answers are single keys.
const MAX_SCALE: u8 = 9;

fn parse_survey(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    // One replay by default: a survey comes at the end of a call, do not hold the caller.
    let question = n.question(1, false);
    let thanks = n.prompts("thanks", false);
    let next = n.next();
    let scale = match n.optional("scale", "an integer", Item::as_integer) {
        Ok(None) => Some(5),
        Ok(Some((s, pos))) => match u8::try_from(s) {
            Ok(s) if (1..=MAX_SCALE).contains(&s) => Some(s),
            _ => {
                n.err(pos, format!("scale {s} out of range 1..={MAX_SCALE}"));
                None
            }
        },
        Err(()) => None,
    };
    let variable = match n.optional("variable", "a variable name (string)", |i| {
        i.as_str().map(str::to_owned)
    }) {
        Ok(None) => Some("survey".to_owned()),
        Ok(Some((v, pos))) => {
            if is_identifier(&v) {
                Some(v)
            } else {
                n.err(
                    pos,
                    format!("bad variable name {v:?}: use a-z, 0-9 and `_`"),
                );
                None
            }
        }
        Err(()) => None,
    };
    Some(NodeKind::Survey {
        question: question?,
        scale: scale?,
        variable: variable?,
        thanks: thanks.ok()?.unwrap_or_default(),
        next: next.ok()?,
    })
}

fn parse_callback(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    Some(NodeKind::Callback {
        prompts: n.prompts("prompts", false).ok()?.unwrap_or_default(),
    })
}

fn parse_list(n: &mut NodeCx<'_, '_>) -> Option<NodeKind> {
    let on_match = n.node_req("match");
    let nomatch = n.node_req("nomatch");
    let block = n.optional("blocklist", "an array of numbers", |i| {
        i.as_array().cloned()
    });
    let allow = n.optional("allowlist", "an array of numbers", |i| {
        i.as_array().cloned()
    });
    let (kind, array, pos) = match (block.ok()?, allow.ok()?) {
        (Some((a, p)), None) => (ListKind::Blocklist, a, p),
        (None, Some((a, p))) => (ListKind::Allowlist, a, p),
        (Some(_), Some((_, p))) => {
            n.err(
                p,
                "a `list` node checks one list: give `blocklist` or `allowlist`, not both (chain two nodes)",
            );
            return None;
        }
        (None, None) => {
            let (pos, name) = (n.pos, n.name.to_owned());
            n.err(
                pos,
                format!("node `{name}` needs `blocklist` or `allowlist`"),
            );
            return None;
        }
    };
    let mut numbers = Vec::new();
    let mut ok = true;
    for value in array.iter() {
        let vpos = start(value.span()).max(pos);
        match value
            .as_str()
            .map(|s| (s, crate::ivr::normalize_pattern(s)))
        {
            Some((_, Some(num))) => numbers.push(num),
            Some((s, None)) => {
                ok = false;
                n.err(
                    vpos,
                    format!(
                        "bad number {s:?}: expected digits with an optional leading `+` and an optional final `*` (prefix)"
                    ),
                );
            }
            None => {
                ok = false;
                n.err(
                    vpos,
                    format!("a list entry must be a string, found {}", value.type_name()),
                );
            }
        }
    }
    Some(NodeKind::List {
        kind,
        numbers: ok.then_some(numbers)?,
        on_match: on_match?,
        nomatch: nomatch?,
    })
}

/// `[calendars.NAME]` tables. A calendar that cannot be understood is left out: nodes
/// naming it then also report it as undefined, which is true enough.
fn parse_calendars(cx: &mut Ctx<'_>, root: &toml_edit::Table) -> BTreeMap<String, Calendar> {
    let mut out = BTreeMap::new();
    let Some((key, item)) = root.get_key_value("calendars") else {
        return out;
    };
    let pos = item_pos(Some(key), item);
    let Some(t) = item.as_table_like() else {
        cx.err(
            start(item.span()).max(pos),
            format!("`calendars` must be a table, found {}", item.type_name()),
        );
        return out;
    };
    for (name, cal) in t.iter() {
        let cpos = item_pos(t.key(name), cal);
        let Some(ct) = cal.as_table_like() else {
            cx.err(
                start(cal.span()).max(cpos),
                format!(
                    "calendar `{name}` must be a table, found {}",
                    cal.type_name()
                ),
            );
            continue;
        };
        if let Some(c) = parse_calendar(cx, name, cpos, ct) {
            out.insert(name.to_owned(), c);
        }
    }
    out
}

const CALENDAR_KEYS: &[&str] = &["timezone", "weekly", "closed", "open", "alsace_moselle"];

fn parse_calendar(cx: &mut Ctx<'_>, name: &str, pos: usize, t: &dyn TableLike) -> Option<Calendar> {
    let key_pos = |k: &str| start(t.key(k).and_then(|k| k.span())).max(pos);
    let val_pos = |i: &Item| start(i.span()).max(pos);
    for (key, _) in t.iter() {
        if !CALENDAR_KEYS.contains(&key) {
            cx.err(
                key_pos(key),
                format!(
                    "unknown key `{key}` in calendar `{name}` (expected {})",
                    list(CALENDAR_KEYS)
                ),
            );
        }
    }
    let mut cal = Calendar::new_paris();
    if let Some(item) = t.get("timezone") {
        match item.as_str() {
            Some(tz) => match jiff::tz::TimeZone::get(tz) {
                Ok(zone) => cal.tz = zone,
                Err(_) => cx.err(val_pos(item), format!("unknown time zone {tz:?}")),
            },
            None => cx.err(
                val_pos(item),
                format!("`timezone` must be a string, found {}", item.type_name()),
            ),
        }
    }
    if let Some(item) = t.get("alsace_moselle") {
        match item.as_bool() {
            Some(b) => cal.alsace_moselle = b,
            None => cx.err(
                val_pos(item),
                format!(
                    "`alsace_moselle` must be a boolean, found {}",
                    item.type_name()
                ),
            ),
        }
    }
    match t.get("weekly") {
        None => cx.err(
            pos,
            format!("calendar `{name}` is missing required key `weekly`"),
        ),
        Some(item) => match item.as_table_like() {
            None => cx.err(
                val_pos(item),
                format!(
                    "`weekly` must be a table of days, found {}",
                    item.type_name()
                ),
            ),
            Some(w) => {
                let wpos = item_pos(t.key("weekly"), item);
                // Per day, the ranges with their positions, to report overlaps.
                let mut days: [Vec<(TimeRange, usize)>; 7] = Default::default();
                for (day, ranges) in w.iter() {
                    let dpos = start(w.key(day).and_then(|k| k.span())).max(wpos);
                    let Some(span) = day_span(day) else {
                        cx.err(
                            dpos,
                            format!(
                                "unknown day `{day}` (expected monday … sunday, or a span such as `monday..friday`)"
                            ),
                        );
                        continue;
                    };
                    let Some(rs) = parse_ranges(cx, ranges, dpos) else {
                        continue;
                    };
                    for d in span {
                        days[d].extend(rs.iter().copied());
                    }
                }
                for (i, day) in days.iter().enumerate() {
                    check_overlaps(cx, day, WEEKDAYS_EN[i]);
                    let mut rs: Vec<TimeRange> = day.iter().map(|(r, _)| *r).collect();
                    rs.sort();
                    cal.weekly[i] = rs;
                }
            }
        },
    }
    if let Some(item) = t.get("closed") {
        for (entry, epos) in array_items(cx, item, "closed", pos) {
            match entry.as_str().map(DateRange::parse) {
                Some(Ok(r)) => cal.closed.push(r),
                Some(Err(why)) => cx.err(epos, why),
                None => cx.err(
                    epos,
                    format!(
                        "a closure must be a date or a range of dates (string), found {}",
                        entry.type_name()
                    ),
                ),
            }
        }
    }
    if let Some(item) = t.get("open") {
        for (entry, epos) in array_items(cx, item, "open", pos) {
            if let Some(o) = parse_opening(cx, &entry, epos) {
                cal.open.push(o);
            }
        }
    }
    // Kept even when broken (the plan is rejected anyway), so that nodes naming it do not
    // also report it as undefined.
    Some(cal)
}

/// `"monday"` or `"monday..friday"` -> weekday indices (Monday = 0).
fn day_span(day: &str) -> Option<std::ops::RangeInclusive<usize>> {
    let idx = |d: &str| WEEKDAYS_EN.iter().position(|w| *w == d.trim());
    match day.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (idx(a)?, idx(b)?);
            (a <= b).then_some(a..=b)
        }
        None => idx(day).map(|i| i..=i),
    }
}

fn array_items(cx: &mut Ctx<'_>, item: &Item, key: &str, pos: usize) -> Vec<(Value, usize)> {
    match item.as_array() {
        Some(a) => a
            .iter()
            .map(|v| (v.clone(), start(v.span()).max(pos)))
            .collect(),
        None => {
            cx.err(
                start(item.span()).max(pos),
                format!("`{key}` must be an array, found {}", item.type_name()),
            );
            Vec::new()
        }
    }
}

/// An array of `"HH:MM-HH:MM"` strings, each with its position.
fn parse_ranges(cx: &mut Ctx<'_>, item: &Item, pos: usize) -> Option<Vec<(TimeRange, usize)>> {
    let Some(a) = item.as_array() else {
        cx.err(
            start(item.span()).max(pos),
            format!(
                "hours must be an array such as [\"18:00-22:00\"], found {}",
                item.type_name()
            ),
        );
        return None;
    };
    parse_range_values(cx, a, pos)
}

fn parse_range_values(
    cx: &mut Ctx<'_>,
    a: &toml_edit::Array,
    pos: usize,
) -> Option<Vec<(TimeRange, usize)>> {
    let mut out = Vec::new();
    let mut ok = true;
    for v in a.iter() {
        let vpos = start(v.span()).max(pos);
        match v.as_str().map(TimeRange::parse) {
            Some(Ok(r)) => out.push((r, vpos)),
            Some(Err(why)) => {
                ok = false;
                cx.err(vpos, why);
            }
            None => {
                ok = false;
                cx.err(
                    vpos,
                    format!(
                        "hours must be strings like \"18:00-22:00\", found {}",
                        v.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// Reports each range that overlaps one written before it, at its own position.
fn check_overlaps(cx: &mut Ctx<'_>, ranges: &[(TimeRange, usize)], day: &str) {
    for (i, (r, rpos)) in ranges.iter().enumerate() {
        if let Some((other, _)) = ranges[..i].iter().find(|(o, _)| o.overlaps(r)) {
            cx.err(
                *rpos,
                format!(
                    "overlapping hours on {day}: {} overlaps {}",
                    fmt_range(r),
                    fmt_range(other)
                ),
            );
        }
    }
}

fn fmt_range(r: &TimeRange) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        r.start / 60,
        r.start % 60,
        r.end / 60,
        r.end % 60
    )
}

/// `"2026-07-14"` / `"2026-12-26..2026-12-27"` (weekly hours of those days), or
/// `{ dates = "…", hours = ["10:00-12:00"] }`.
fn parse_opening(cx: &mut Ctx<'_>, entry: &Value, epos: usize) -> Option<Opening> {
    let dates_of = |cx: &mut Ctx<'_>, s: &str, p: usize| match DateRange::parse(s) {
        Ok(r) => Some(r),
        Err(why) => {
            cx.err(p, why);
            None
        }
    };
    match entry {
        Value::String(s) => Some(Opening {
            dates: dates_of(cx, s.value(), epos)?,
            hours: None,
        }),
        Value::InlineTable(t) => {
            let mut ok = true;
            for (k, _) in t.iter() {
                if k != "dates" && k != "hours" {
                    ok = false;
                    cx.err(
                        start(t.key(k).and_then(|k| k.span())).max(epos),
                        format!("unknown key `{k}` in an opening (expected `dates`, `hours`)"),
                    );
                }
            }
            let dates = match t.get("dates") {
                Some(Value::String(s)) => dates_of(cx, s.value(), start(s.span()).max(epos)),
                Some(other) => {
                    cx.err(
                        start(other.span()).max(epos),
                        format!("`dates` must be a string, found {}", other.type_name()),
                    );
                    None
                }
                None => {
                    cx.err(epos, "an opening needs `dates = \"YYYY-MM-DD\"`");
                    None
                }
            };
            let hours = match t.get("hours") {
                None => Some(None),
                Some(Value::Array(a)) => {
                    let hpos = start(a.span()).max(epos);
                    parse_range_values(cx, a, hpos).map(|rs| {
                        check_overlaps(cx, &rs, "an exceptional opening");
                        let mut v: Vec<TimeRange> = rs.into_iter().map(|(r, _)| r).collect();
                        v.sort();
                        Some(v)
                    })
                }
                Some(other) => {
                    cx.err(
                        start(other.span()).max(epos),
                        format!("`hours` must be an array, found {}", other.type_name()),
                    );
                    None
                }
            };
            let (dates, hours) = (dates?, hours?);
            ok.then_some(Opening { dates, hours })
        }
        other => {
            cx.err(
                epos,
                format!(
                    "an opening must be a date (string) or {{ dates = …, hours = […] }}, found {}",
                    other.type_name()
                ),
            );
            None
        }
    }
}

/// The longest pause accepted: a longer silence is surely a typo (`"30m"` for `"30s"`).
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// `"500ms"`, `"2s"`, `"1min"`, `"1h"`, or a sum of them written together (`"1min30s"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let total = ld_units::parse_duration(text)?;
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

//! The validated, immutable dialplan: nodes resolved to indices, entries by called number.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::calendar::Calendar;

/// Index of a node in its [`Dialplan`]; only meaningful for the plan that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    pub fn index(self) -> usize {
        self.0
    }
}

/// One element of a `play` node's prompt list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptItem {
    /// A prompt file, relative to the prompts directory, without `.wav` (`"fr/bienvenue"`).
    File(String),
    /// The estimated-wait sentence, rendered by the daemon from the live queue state.
    EstimatedWait,
    /// French text spoken by TTS (`{ say = "…" }`). The edge maps it to the rendered file
    /// `fr/tts/<ld_tts::cache_key(text, "fr")>` (see `Dialplan::say_texts`).
    Say(String),
    /// The closed message generated from a calendar (`{ announce = "closed_message",
    /// calendar = "…" }`). Only found in the plan: the interpreter expands it into `Say`
    /// fragments at play time, so an [`crate::IvrAction::Play`] never carries it.
    ClosedMessage { calendar: String },
}

/// How a call is handed to a partner number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMethod {
    /// Blind transfer: REFER to the caller's side (RFC 3515); the call leaves us.
    Refer,
    /// A new INVITE to the target, bridged by us (B2BUA).
    Invite,
}

/// Which list a `list` node checks the caller against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Blocklist,
    Allowlist,
}

/// The shared part of `menu` and `consent` nodes: a question answered with one DTMF key.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    pub prompts: Vec<PromptItem>,
    /// Played after a key that is not an option, before the prompts are played again.
    pub invalid: Vec<PromptItem>,
    /// Wait for a key after the prompts end.
    pub timeout: Duration,
    /// How many times the prompts are replayed after a timeout or an invalid key.
    pub retries: u32,
    pub early: bool,
}

/// A node of the plan. `next` fields are already resolved; `None` means "hang up after".
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Play {
        prompts: Vec<PromptItem>,
        /// Played before answer as early media (183 + SDP, RFC 3960).
        early: bool,
        next: Option<NodeId>,
    },
    Answer {
        next: Option<NodeId>,
    },
    Pause {
        duration: Duration,
        next: Option<NodeId>,
    },
    Hangup {
        /// Final status sent when the call was not answered (400..=699).
        status: Option<u16>,
    },
    /// Branch on the opening hours of a calendar at the call's wall time.
    Hours {
        calendar: String,
        open: NodeId,
        closed: NodeId,
    },
    /// A DTMF menu: a key during the prompts stops them (barge-in).
    Menu {
        question: Question,
        /// Key (`0`-`9`, `*`, `#`) -> node.
        options: BTreeMap<char, NodeId>,
        /// When the retries are exhausted (by invalid keys, or by timeouts when
        /// `on_timeout` is not given); `None` hangs up.
        fallback: Option<NodeId>,
        /// When the retries are exhausted by a timeout.
        on_timeout: Option<NodeId>,
    },
    /// Hand the call to an ACD queue (`IvrAction::Enqueue`), then wait for the queue.
    Queue {
        queue: String,
        /// Where the call goes if the queue gives it back; `None` hangs up.
        next: Option<NodeId>,
        /// Where the caller goes when the agent hangs up first (a post-call survey);
        /// `None`: the call ends with the agent's hang-up.
        after: Option<NodeId>,
    },
    Goto {
        next: NodeId,
    },
    /// Store variables on the call (`Ivr::variables`).
    Set {
        vars: Vec<(String, String)>,
        next: Option<NodeId>,
    },
    /// A yes/no question; stores `consent = "yes" | "no"` (no answer counts as "no").
    Consent {
        question: Question,
        yes: char,
        no: char,
        next: Option<NodeId>,
    },
    /// Hand the call to a partner (`sip:`/`tel:` URI or a number).
    Transfer {
        target: String,
        method: TransferMethod,
        /// Where the call goes if the transfer fails; `None` hangs up.
        next: Option<NodeId>,
    },
    /// Prompts, then record a message of at most `max`.
    Voicemail {
        prompts: Vec<PromptItem>,
        max: Duration,
        next: Option<NodeId>,
    },
    /// Offer a callback (optional prompts first); the IVR's part ends there.
    Callback {
        prompts: Vec<PromptItem>,
    },
    /// A satisfaction survey: one key from `1` to `scale` is stored as `variable`, then
    /// `thanks` plays and the call goes on at `next`. No answer after the retries stores
    /// nothing and goes on at `next` too.
    Survey {
        /// The question (barge-in like a menu), `invalid`, `timeout`, `retries`; never early.
        question: Question,
        /// Highest mark, 1..=9: keys `1`..=`scale` are answers.
        scale: u8,
        /// Variable that receives the key pressed (`"4"`).
        variable: String,
        /// Played after an answer (may be empty).
        thanks: Vec<PromptItem>,
        next: Option<NodeId>,
    },
    /// Branch on whether the caller's number is on a list.
    List {
        kind: ListKind,
        /// Normalized numbers; an entry ending in `*` is a prefix.
        numbers: Vec<String>,
        on_match: NodeId,
        nomatch: NodeId,
    },
}

impl NodeKind {
    /// Nodes this one can go on to; the graph checks and reachability rely on it, so a new
    /// kind with several exits (menu, hours) lists them all here.
    pub fn successors(&self) -> Vec<NodeId> {
        match self {
            NodeKind::Play { next, .. }
            | NodeKind::Answer { next }
            | NodeKind::Pause { next, .. } => next.iter().copied().collect(),
            NodeKind::Hangup { .. } | NodeKind::Callback { .. } => Vec::new(),
            NodeKind::Hours { open, closed, .. } => vec![*open, *closed],
            NodeKind::Menu {
                options,
                fallback,
                on_timeout,
                ..
            } => options
                .values()
                .chain(fallback)
                .chain(on_timeout)
                .copied()
                .collect(),
            NodeKind::Queue { next, after, .. } => next.iter().chain(after).copied().collect(),
            NodeKind::Set { next, .. }
            | NodeKind::Consent { next, .. }
            | NodeKind::Transfer { next, .. }
            | NodeKind::Voicemail { next, .. }
            | NodeKind::Survey { next, .. } => next.iter().copied().collect(),
            NodeKind::Goto { next } => vec![*next],
            NodeKind::List {
                on_match, nomatch, ..
            } => vec![*on_match, *nomatch],
        }
    }

    /// The prompt lists of the node, for checks and for listing prompts and texts.
    pub fn prompt_lists(&self) -> Vec<&Vec<PromptItem>> {
        match self {
            NodeKind::Play { prompts, .. }
            | NodeKind::Voicemail { prompts, .. }
            | NodeKind::Callback { prompts } => vec![prompts],
            NodeKind::Menu { question, .. } | NodeKind::Consent { question, .. } => {
                vec![&question.prompts, &question.invalid]
            }
            NodeKind::Survey {
                question, thanks, ..
            } => vec![&question.prompts, &question.invalid, thanks],
            _ => Vec::new(),
        }
    }

    /// True when the call is answered once this node has run: an explicit answer, or
    /// media that needs a session (a non-early prompt, a recording).
    pub fn answers(&self) -> bool {
        match self {
            NodeKind::Answer { .. } | NodeKind::Voicemail { .. } => true,
            NodeKind::Play { early, .. } => !early,
            NodeKind::Menu { question, .. }
            | NodeKind::Consent { question, .. }
            | NodeKind::Survey { question, .. } => !question.early,
            _ => false,
        }
    }

    /// True when the node can take no time at all (no prompt, no timer), so a cycle made
    /// only of such nodes would spin forever.
    pub fn is_silent(&self) -> bool {
        match self {
            NodeKind::Play { prompts, .. } => prompts.is_empty(),
            NodeKind::Pause { duration, .. } => duration.is_zero(),
            // An answer waits only once; after that it passes straight through.
            NodeKind::Answer { .. } => true,
            NodeKind::Hours { .. }
            | NodeKind::Goto { .. }
            | NodeKind::Set { .. }
            | NodeKind::List { .. } => true,
            // They wait for the caller, the queue, the partner or the recording.
            NodeKind::Hangup { .. }
            | NodeKind::Menu { .. }
            | NodeKind::Queue { .. }
            | NodeKind::Consent { .. }
            | NodeKind::Survey { .. }
            | NodeKind::Transfer { .. }
            | NodeKind::Voicemail { .. }
            | NodeKind::Callback { .. } => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
}

/// A validated dialplan, immutable and shared between calls as `Arc<Dialplan>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dialplan {
    pub(crate) nodes: Vec<Node>,
    /// Called number (or `"default"`) -> entry node.
    pub(crate) entries: BTreeMap<String, NodeId>,
    pub(crate) calendars: BTreeMap<String, Calendar>,
}

/// The entry used for any called number not listed.
pub const DEFAULT_ENTRY: &str = "default";

impl Dialplan {
    /// Entry node for the exact called number, else the `default` entry.
    pub fn entry_for(&self, called_user: &str) -> Option<NodeId> {
        self.entries
            .get(called_user)
            .or_else(|| self.entries.get(DEFAULT_ENTRY))
            .copied()
    }

    /// Every prompt file referenced, sorted and without duplicates, so the daemon can
    /// preload them all before the first call.
    pub fn prompt_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .prompt_items()
            .filter_map(|p| match p {
                PromptItem::File(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn prompt_items(&self) -> impl Iterator<Item = &PromptItem> {
        self.nodes
            .iter()
            .flat_map(|n| n.kind.prompt_lists())
            .flatten()
    }

    /// Every text the plan can speak by TTS, sorted and without duplicates: the `say`
    /// items and every fragment of the closed messages of the calendars it announces
    /// (see [`crate::french::closed_message_fragments`]). Render them all before the first
    /// call (`acdd prompts render`) so no call waits on speech synthesis.
    pub fn say_texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = Vec::new();
        for item in self.prompt_items() {
            match item {
                PromptItem::Say(text) => texts.push(text.clone()),
                PromptItem::ClosedMessage { calendar } => {
                    if let Some(cal) = self.calendars.get(calendar) {
                        texts.extend(crate::french::closed_message_fragments(cal));
                    }
                }
                PromptItem::File(_) | PromptItem::EstimatedWait => {}
            }
        }
        texts.sort();
        texts.dedup();
        texts
    }

    /// The queues the plan sends calls to, sorted and without duplicates.
    pub fn queues(&self) -> Vec<String> {
        let mut q: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Queue { queue, .. } => Some(queue.clone()),
                _ => None,
            })
            .collect();
        q.sort();
        q.dedup();
        q
    }

    /// The variables `survey` nodes store their marks in, with each one's scale (the
    /// highest mark), sorted and without duplicates: what the daemon writes to the store's
    /// surveys when a call ends (a variable used with two scales is listed twice).
    pub fn survey_variables(&self) -> Vec<(String, u8)> {
        let mut v: Vec<(String, u8)> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Survey {
                    variable, scale, ..
                } => Some((variable.clone(), *scale)),
                _ => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn calendar(&self, name: &str) -> Option<&Calendar> {
        self.calendars.get(name)
    }

    /// Calendars by name.
    pub fn calendars(&self) -> impl Iterator<Item = (&str, &Calendar)> {
        self.calendars.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0)
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(NodeId)
    }

    /// Nodes in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Entries as (called number or `"default"`, node).
    pub fn entries(&self) -> impl Iterator<Item = (&str, NodeId)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

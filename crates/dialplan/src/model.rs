//! The validated, immutable dialplan: nodes resolved to indices, entries by called number.

use std::collections::BTreeMap;
use std::time::Duration;

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
}

impl NodeKind {
    /// Nodes this one can go on to; the graph checks and reachability rely on it, so a new
    /// kind with several exits (menu, hours) lists them all here.
    pub fn successors(&self) -> Vec<NodeId> {
        match self {
            NodeKind::Play { next, .. }
            | NodeKind::Answer { next }
            | NodeKind::Pause { next, .. } => next.iter().copied().collect(),
            NodeKind::Hangup { .. } => Vec::new(),
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
            NodeKind::Hangup { .. } => false,
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
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Play { prompts, .. } => Some(prompts),
                _ => None,
            })
            .flatten()
            .filter_map(|p| match p {
                PromptItem::File(name) => Some(name.clone()),
                PromptItem::EstimatedWait => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
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

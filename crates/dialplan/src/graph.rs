//! Checks on the node graph once every node is understood: reachability, answer state
//! (early media only before answer), and loops that would spin without taking any time.

use std::collections::VecDeque;

use crate::model::{NodeId, NodeKind};
use crate::schema::{Ctx, Parsed};

pub(crate) fn check(cx: &mut Ctx<'_>, p: &Parsed) {
    let nodes = &p.plan.nodes;
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| n.kind.successors().into_iter().map(NodeId::index).collect())
        .collect();
    let entries: Vec<usize> = p.plan.entries.values().map(|id| id.index()).collect();
    // With no entry, everything would be "unreachable": the missing entry is the one error.
    if entries.is_empty() {
        return;
    }

    let states = answer_states(p, &succ, &entries);
    for (i, node) in nodes.iter().enumerate() {
        let state = states[i];
        if state == 0 {
            cx.err(
                p.node_pos[i],
                format!("node `{}` is unreachable from any entry", node.name),
            );
            continue;
        }
        let early = match &node.kind {
            NodeKind::Play { early, .. } => *early,
            NodeKind::Menu { question, .. } | NodeKind::Consent { question, .. } => question.early,
            _ => false,
        };
        if early && state == ANSWERED {
            let key = |k: &str| p.key_pos[i].get(k).copied().unwrap_or(p.node_pos[i]);
            {
                cx.err(
                    key("early"),
                    format!(
                        "early media after answer: every path to `{}` answers the call first; remove `early = true`",
                        node.name
                    ),
                );
            }
        }
    }
    silent_loops(cx, p, &succ);
}

const UNANSWERED: u8 = 1;
const ANSWERED: u8 = 2;

/// For each node, the answer states the call can be in when it arrives there (bit set;
/// 0 = unreachable). A forward data-flow to a fixpoint: states only grow, so it ends.
fn answer_states(p: &Parsed, succ: &[Vec<usize>], entries: &[usize]) -> Vec<u8> {
    let mut states = vec![0u8; succ.len()];
    let mut work: VecDeque<usize> = VecDeque::new();
    for &e in entries {
        if states[e] & UNANSWERED == 0 {
            states[e] |= UNANSWERED;
            work.push_back(e);
        }
    }
    while let Some(i) = work.pop_front() {
        let out = if p.plan.nodes[i].kind.answers() {
            ANSWERED
        } else {
            states[i]
        };
        for &j in &succ[i] {
            if states[j] | out != states[j] {
                states[j] |= out;
                work.push_back(j);
            }
        }
    }
    states
}

/// Cycles made only of silent nodes (no prompt, no timer): the interpreter would walk them
/// forever without waiting. Each loop is reported once, at its first node in file order.
fn silent_loops(cx: &mut Ctx<'_>, p: &Parsed, succ: &[Vec<usize>]) {
    let nodes = &p.plan.nodes;
    let n = nodes.len();
    let silent: Vec<bool> = nodes.iter().map(|n| n.kind.is_silent()).collect();
    // reach[i][j]: j reachable from i by a non-empty path of silent nodes. Plans have tens
    // of nodes, so the quadratic closure is cheaper to trust than an SCC algorithm.
    let mut reach = vec![vec![false; n]; n];
    for i in (0..n).filter(|&i| silent[i]) {
        let mut stack: Vec<usize> = succ[i].iter().copied().filter(|&j| silent[j]).collect();
        while let Some(j) = stack.pop() {
            if !reach[i][j] {
                reach[i][j] = true;
                stack.extend(succ[j].iter().copied().filter(|&k| silent[k]));
            }
        }
    }
    let mut reported = vec![false; n];
    for i in 0..n {
        if !reach[i][i] || reported[i] {
            continue;
        }
        let members: Vec<usize> = (0..n).filter(|&j| reach[i][j] && reach[j][i]).collect();
        for &j in &members {
            reported[j] = true;
        }
        // Follow the edges from the first node so the message reads as the loop runs.
        let mut order = vec![i];
        let mut cur = i;
        while let Some(&next) = succ[cur]
            .iter()
            .find(|&&k| members.contains(&k) && !order.contains(&k))
        {
            order.push(next);
            cur = next;
        }
        order.extend(
            members
                .iter()
                .filter(|j| !order.contains(j))
                .collect::<Vec<_>>(),
        );
        let path: Vec<String> = order
            .iter()
            .chain(std::iter::once(&i))
            .map(|&j| format!("`{}`", nodes[j].name))
            .collect();
        cx.err(
            p.node_pos[i],
            format!(
                "infinite silent loop: {} never plays a prompt or pauses",
                path.join(" -> ")
            ),
        );
    }
}

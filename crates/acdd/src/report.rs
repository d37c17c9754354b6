//! `acdd report calls`: the call records, as JSON (an array) or CSV.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ld_store::{CallRecord, Store};

use crate::config::Config;
use crate::{clock, Format};

fn open(
    config: Option<&Path>,
    since: Option<&str>,
) -> anyhow::Result<(Store, Option<jiff::Timestamp>)> {
    let cfg = Config::from_arg(config)?;
    let since = since
        .map(clock::parse_instant)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    if !cfg.store.path.exists() {
        anyhow::bail!("no store at {}", cfg.store.path.display());
    }
    let store = Store::open(&cfg.store.path)
        .with_context(|| format!("opening the store {}", cfg.store.path.display()))?;
    Ok((store, since))
}

/// `acdd report journal`: the queue journal, as JSON (an array) or CSV.
pub fn journal(config: Option<&Path>, since: Option<&str>, format: Format) -> anyhow::Result<()> {
    let (store, since) = open(config, since)?;
    let entries = store.journal(since)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &entries)?;
            writeln!(out)?;
        }
        Format::Csv => {
            writeln!(out, "at,event,call_id,agent,queue,detail")?;
            for e in &entries {
                let row = [
                    e.at.to_string(),
                    e.event.clone(),
                    e.call_id.clone().unwrap_or_default(),
                    e.agent.clone().unwrap_or_default(),
                    e.queue.clone().unwrap_or_default(),
                    e.detail.to_string(),
                ];
                let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", row.join(","))?;
            }
        }
    }
    Ok(())
}

pub fn calls(config: Option<&Path>, since: Option<&str>, format: Format) -> anyhow::Result<()> {
    let (store, since) = open(config, since)?;
    let records = store.calls(since)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &records)?;
            writeln!(out)?;
        }
        Format::Csv => write_csv(&mut out, &records)?,
    }
    Ok(())
}

const CSV_COLUMNS: [&str; 18] = [
    "call_id",
    "caller",
    "called",
    "arrived_at",
    "early_media_at",
    "answered_at",
    "ended_at",
    "outcome",
    "hangup_by",
    "final_status",
    "wait_seconds",
    "talk_seconds",
    "queue",
    "queued_at",
    "agent",
    "connected_at",
    "ivr_path",
    "variables",
];

/// RFC 4180: quote a field holding a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut impl Write, records: &[CallRecord]) -> anyhow::Result<()> {
    writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    for r in records {
        // Through serde_json so the CSV says exactly what the JSON says.
        let v = serde_json::to_value(r)?;
        let row: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|k| match v.get(*k) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => csv_field(s),
                Some(other) => csv_field(&other.to_string()),
            })
            .collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}

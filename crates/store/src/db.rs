//! The SQLite connection: pragmas, migrations, call records.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::record::{CallRecord, HangupBy, JournalEntry, Outcome};
use crate::StoreError;

/// Schema migrations: entry `i` brings the schema from version `i` to `i + 1`
/// (`PRAGMA user_version`). Append only: never edit one that has shipped.
pub const MIGRATIONS: &[&str] = &[
    // 1: call detail records. Times in ms since the epoch, UTC (see the crate docs).
    "CREATE TABLE calls (
        call_id           TEXT PRIMARY KEY NOT NULL,
        caller            TEXT NOT NULL,
        called            TEXT NOT NULL,
        arrived_at_ms     INTEGER NOT NULL,
        early_media_at_ms INTEGER,
        answered_at_ms    INTEGER,
        ended_at_ms       INTEGER NOT NULL,
        outcome           TEXT NOT NULL,
        hangup_by         TEXT NOT NULL,
        final_status      INTEGER,
        wait_seconds      REAL,
        talk_seconds      REAL
    ) STRICT;
    CREATE INDEX calls_by_arrival ON calls (arrived_at_ms);",
    // 2: the queue and the agent of a call, its path in the dialplan and what the plan
    // recorded (JSON), for the ACD.
    "ALTER TABLE calls ADD COLUMN queue TEXT;
    ALTER TABLE calls ADD COLUMN queued_at_ms INTEGER;
    ALTER TABLE calls ADD COLUMN agent TEXT;
    ALTER TABLE calls ADD COLUMN connected_at_ms INTEGER;
    ALTER TABLE calls ADD COLUMN ivr_path TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE calls ADD COLUMN variables TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX calls_by_agent ON calls (agent, arrived_at_ms);",
    // 3: the queue journal: every step of the ACD (arrival, each offer and its result,
    // answer, abandon, agent states, callbacks, overflow), in order.
    "CREATE TABLE journal (
        id       INTEGER PRIMARY KEY,
        at_ms    INTEGER NOT NULL,
        event    TEXT NOT NULL,
        call_id  TEXT,
        agent    TEXT,
        queue    TEXT,
        detail   TEXT NOT NULL DEFAULT '{}'
    ) STRICT;
    CREATE INDEX journal_by_time ON journal (at_ms);
    CREATE INDEX journal_by_call ON journal (call_id);",
];

/// How long a statement waits on a lock held by another connection (the CTI sidecar reads
/// the same file) before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open, migrated database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    migrations_applied: usize,
}

const CALL_COLUMNS: &str = "call_id, caller, called, arrived_at_ms, early_media_at_ms, \
     answered_at_ms, ended_at_ms, outcome, hangup_by, final_status, wait_seconds, talk_seconds, \
     queue, queued_at_ms, agent, connected_at_ms, ivr_path, variables";

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers (acd-cti) never block the writer, and a crash loses no committed
        // record. synchronous=NORMAL is durable against process crashes in WAL mode and
        // only risks the last transactions on power loss, for far fewer fsyncs.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let migrations_applied = migrate(&mut conn)?;
        Ok(Store {
            conn,
            migrations_applied,
        })
    }

    /// How many migrations this `open` ran (0 when the file was already up to date).
    pub fn migrations_applied(&self) -> usize {
        self.migrations_applied
    }

    /// `PRAGMA user_version`: the number of migrations the file has.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// The journal mode in effect (`"wal"` for a file database).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))?)
    }

    /// Writes the WAL back into the main file and truncates it, so a clean shutdown
    /// leaves a single self-contained file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        // The pragma returns a row (busy, log, checkpointed): read it, or rusqlite complains.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }

    /// Inserts or replaces the record with the same `call_id` (a call may be written again
    /// when late information arrives).
    pub fn insert_call(&self, rec: &CallRecord) -> Result<(), StoreError> {
        let ms = |t: Option<Timestamp>| t.map(Timestamp::as_millisecond);
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO calls ({CALL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT (call_id) DO UPDATE SET
                   caller = excluded.caller, called = excluded.called,
                   arrived_at_ms = excluded.arrived_at_ms,
                   early_media_at_ms = excluded.early_media_at_ms,
                   answered_at_ms = excluded.answered_at_ms, ended_at_ms = excluded.ended_at_ms,
                   outcome = excluded.outcome, hangup_by = excluded.hangup_by,
                   final_status = excluded.final_status,
                   wait_seconds = excluded.wait_seconds, talk_seconds = excluded.talk_seconds,
                   queue = excluded.queue, queued_at_ms = excluded.queued_at_ms,
                   agent = excluded.agent, connected_at_ms = excluded.connected_at_ms,
                   ivr_path = excluded.ivr_path, variables = excluded.variables"
            ))?
            .execute(params![
                rec.call_id,
                rec.caller,
                rec.called,
                rec.arrived_at.as_millisecond(),
                ms(rec.early_media_at),
                ms(rec.answered_at),
                rec.ended_at.as_millisecond(),
                rec.outcome.as_str(),
                rec.hangup_by.as_str(),
                rec.final_status,
                rec.wait_seconds,
                rec.talk_seconds,
                rec.queue,
                ms(rec.queued_at),
                rec.agent,
                ms(rec.connected_at),
                serde_json::to_string(&rec.ivr_path).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&rec.variables).unwrap_or_else(|_| "{}".into()),
            ])?;
        Ok(())
    }

    /// Calls that arrived at or after `since` (all when `None`), oldest first.
    pub fn calls(&self, since: Option<Timestamp>) -> Result<Vec<CallRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE ?1 IS NULL OR arrived_at_ms >= ?1
             ORDER BY arrived_at_ms, call_id"
        ))?;
        let rows = stmt.query_map([since.map(Timestamp::as_millisecond)], raw_row)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(RawCall::decode))
            .collect()
    }
}

impl Store {
    /// Appends one journal entry.
    pub fn insert_journal(&self, e: &JournalEntry) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO journal (at_ms, event, call_id, agent, queue, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                e.at.as_millisecond(),
                e.event,
                e.call_id,
                e.agent,
                e.queue,
                e.detail.to_string(),
            ])?;
        Ok(())
    }

    /// Journal entries at or after `since`, in the order they were written.
    pub fn journal(&self, since: Option<Timestamp>) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_ms, event, call_id, agent, queue, detail FROM journal
             WHERE ?1 IS NULL OR at_ms >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([since.map(Timestamp::as_millisecond)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        rows.map(|r| {
            let (at, event, call_id, agent, queue, detail) = r?;
            let corrupt = |what: String| StoreError::Corrupt {
                call_id: call_id.clone().unwrap_or_default(),
                what,
            };
            Ok(JournalEntry {
                at: Timestamp::from_millisecond(at)
                    .map_err(|e| corrupt(format!("journal at: {e}")))?,
                detail: serde_json::from_str(&detail)
                    .map_err(|e| corrupt(format!("journal detail: {e}")))?,
                event,
                call_id,
                agent,
                queue,
            })
        })
        .collect()
    }
}

/// Applies the missing migrations, each in its own transaction together with its version
/// bump, so a crash mid-way leaves the file at a known version.
fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let start = usize::try_from(found).map_err(|_| StoreError::TooNew {
        found,
        known: MIGRATIONS.len(),
    })?;
    if start > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let version = i + 1;
        let wrap = |source| StoreError::Migration { version, source };
        let tx = conn.transaction().map_err(wrap)?;
        tx.execute_batch(sql).map_err(wrap)?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
    }
    Ok(MIGRATIONS.len() - start)
}

/// A row as SQLite returns it, decoded outside the rusqlite callback so that bad values
/// become a `StoreError::Corrupt` naming the call.
struct RawCall {
    call_id: String,
    caller: String,
    called: String,
    times: [Option<i64>; 4],
    outcome: String,
    hangup_by: String,
    final_status: Option<i64>,
    wait_seconds: Option<f64>,
    talk_seconds: Option<f64>,
    queue: Option<String>,
    queued_at: Option<i64>,
    agent: Option<String>,
    connected_at: Option<i64>,
    ivr_path: String,
    variables: String,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawCall> {
    Ok(RawCall {
        call_id: r.get(0)?,
        caller: r.get(1)?,
        called: r.get(2)?,
        times: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
        outcome: r.get(7)?,
        hangup_by: r.get(8)?,
        final_status: r.get(9)?,
        wait_seconds: r.get(10)?,
        talk_seconds: r.get(11)?,
        queue: r.get(12)?,
        queued_at: r.get(13)?,
        agent: r.get(14)?,
        connected_at: r.get(15)?,
        ivr_path: r.get(16)?,
        variables: r.get(17)?,
    })
}

impl RawCall {
    fn decode(self) -> Result<CallRecord, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            call_id: self.call_id.clone(),
            what,
        };
        let ts = |ms: Option<i64>| -> Result<Option<Timestamp>, StoreError> {
            ms.map(|ms| {
                Timestamp::from_millisecond(ms).map_err(|e| corrupt(format!("timestamp {ms}: {e}")))
            })
            .transpose()
        };
        let required =
            |t: Option<Timestamp>, name: &str| t.ok_or_else(|| corrupt(format!("{name} is NULL")));
        let [arrived, early, answered, ended] = self.times;
        let outcome = Outcome::from_name(&self.outcome)
            .ok_or_else(|| corrupt(format!("unknown outcome {:?}", self.outcome)))?;
        let hangup_by = HangupBy::from_name(&self.hangup_by)
            .ok_or_else(|| corrupt(format!("unknown hangup_by {:?}", self.hangup_by)))?;
        let final_status = self
            .final_status
            .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("final_status {s}"))))
            .transpose()?;
        let ivr_path =
            serde_json::from_str(&self.ivr_path).map_err(|e| corrupt(format!("ivr_path: {e}")))?;
        let variables = serde_json::from_str(&self.variables)
            .map_err(|e| corrupt(format!("variables: {e}")))?;
        Ok(CallRecord {
            queued_at: ts(self.queued_at)?,
            connected_at: ts(self.connected_at)?,
            queue: self.queue,
            agent: self.agent,
            ivr_path,
            variables,
            arrived_at: required(ts(arrived)?, "arrived_at")?,
            early_media_at: ts(early)?,
            answered_at: ts(answered)?,
            ended_at: required(ts(ended)?, "ended_at")?,
            outcome,
            hangup_by,
            final_status,
            wait_seconds: self.wait_seconds,
            talk_seconds: self.talk_seconds,
            caller: self.caller,
            called: self.called,
            call_id: self.call_id,
        })
    }
}

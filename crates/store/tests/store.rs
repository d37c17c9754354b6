//! Store and writer against real SQLite files in a temp dir.

use jiff::Timestamp;
use ld_store::{CallRecord, HangupBy, Outcome, Store, StoreError, StoreWriter, MIGRATIONS};

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).expect("valid timestamp")
}

fn record(call_id: &str, arrived_ms: i64) -> CallRecord {
    CallRecord {
        call_id: call_id.into(),
        caller: "+33612345678".into(),
        called: "3939".into(),
        arrived_at: ts(arrived_ms),
        early_media_at: Some(ts(arrived_ms + 120)),
        answered_at: Some(ts(arrived_ms + 45_250)),
        ended_at: ts(arrived_ms + 300_000),
        outcome: Outcome::Answered,
        hangup_by: HangupBy::Caller,
        final_status: None,
        wait_seconds: None,
        talk_seconds: None,
        queue: Some("accueil".into()),
        queued_at: Some(ts(arrived_ms + 9_000)),
        agent: Some("agent3".into()),
        connected_at: Some(ts(arrived_ms + 45_300)),
        ivr_path: vec!["accueil".into(), "menu".into(), "file".into()],
        variables: [("consent".to_string(), "yes".to_string())]
            .into_iter()
            .collect(),
    }
    .with_derived_durations()
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ld.sqlite");
    (dir, path)
}

const T0: i64 = 1_750_000_000_000; // June 2025

#[test]
fn round_trip_keeps_every_field() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    let answered = record("a@host", T0);
    let rejected = CallRecord {
        call_id: "r@host".into(),
        early_media_at: None,
        answered_at: None,
        outcome: Outcome::Rejected,
        hangup_by: HangupBy::System,
        final_status: Some(480),
        ..record("r@host", T0 + 1)
    }
    .with_derived_durations();
    store.insert_call(&answered).expect("insert");
    store.insert_call(&rejected).expect("insert");
    assert_eq!(store.calls(None).expect("calls"), vec![answered, rejected]);
}

#[test]
fn sub_millisecond_precision_is_dropped() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    let mut rec = record("p", T0);
    rec.arrived_at = Timestamp::new(T0 / 1000, 123_456_789).expect("valid");
    store.insert_call(&rec).expect("insert");
    let back = store.calls(None).expect("calls");
    assert_eq!(
        back[0].arrived_at,
        Timestamp::new(T0 / 1000, 123_000_000).expect("valid")
    );
}

#[test]
fn insert_is_an_upsert_on_call_id() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    store.insert_call(&record("same", T0)).expect("insert");
    let mut later = record("same", T0);
    later.outcome = Outcome::Failed;
    later.final_status = Some(488);
    later.hangup_by = HangupBy::Unknown;
    store.insert_call(&later).expect("upsert");
    assert_eq!(store.calls(None).expect("calls"), vec![later]);
}

#[test]
fn since_filters_and_orders_by_arrival() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    // Inserted out of order on purpose.
    for (id, at) in [
        ("c", T0 + 2_000),
        ("a", T0),
        ("b", T0 + 1_000),
        ("d", T0 + 3_000),
    ] {
        store.insert_call(&record(id, at)).expect("insert");
    }
    let ids = |v: Vec<CallRecord>| v.into_iter().map(|r| r.call_id).collect::<Vec<_>>();
    assert_eq!(ids(store.calls(None).expect("all")), ["a", "b", "c", "d"]);
    // Inclusive bound.
    assert_eq!(
        ids(store.calls(Some(ts(T0 + 1_000))).expect("since")),
        ["b", "c", "d"]
    );
    assert_eq!(
        ids(store.calls(Some(ts(T0 + 1_001))).expect("since")),
        ["c", "d"]
    );
    assert!(store.calls(Some(ts(T0 + 10_000))).expect("none").is_empty());
}

#[test]
fn wal_mode_is_on() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    assert_eq!(store.journal_mode().expect("pragma"), "wal");
    store.insert_call(&record("w", T0)).expect("insert");
    // A WAL database has its -wal side file while open.
    assert!(path.with_file_name("ld.sqlite-wal").exists());
}

#[test]
fn reopening_runs_no_migration_and_keeps_data() {
    let (_dir, path) = temp_db();
    {
        let store = Store::open(&path).expect("first open");
        assert_eq!(store.migrations_applied(), MIGRATIONS.len());
        assert_eq!(
            store.schema_version().expect("version"),
            MIGRATIONS.len() as i64
        );
        store.insert_call(&record("kept", T0)).expect("insert");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.migrations_applied(), 0);
    assert_eq!(
        store.schema_version().expect("version"),
        MIGRATIONS.len() as i64
    );
    assert_eq!(store.calls(None).expect("calls").len(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
        .expect("bump");
    drop(conn);
    match Store::open(&path) {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!(found, MIGRATIONS.len() as i64 + 1);
            assert_eq!(known, MIGRATIONS.len());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn a_corrupt_row_is_an_error_not_a_panic() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).expect("open");
    store.insert_call(&record("bad", T0)).expect("insert");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute("UPDATE calls SET outcome = 'teleported'", [])
        .expect("update");
    match store.calls(None) {
        Err(StoreError::Corrupt { call_id, what }) => {
            assert_eq!(call_id, "bad");
            assert!(what.contains("teleported"), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn writer_flushes_everything_on_close() {
    let (_dir, path) = temp_db();
    let writer = StoreWriter::spawn(&path).expect("spawn");
    let threads = 4;
    let per_thread = 250;
    std::thread::scope(|s| {
        for t in 0..threads {
            let writer = &writer;
            s.spawn(move || {
                for i in 0..per_thread {
                    writer.write_call(record(
                        &format!("t{t}-{i}"),
                        T0 + (t * per_thread + i) as i64,
                    ));
                }
            });
        }
    });
    writer.close().expect("close");
    // After close the WAL is checkpointed into the main file.
    let wal = path.with_file_name("ld.sqlite-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).expect("meta").len() == 0);
    let store = Store::open(&path).expect("reopen");
    let calls = store.calls(None).expect("calls");
    assert_eq!(calls.len(), threads * per_thread);
    assert_eq!(calls[0].call_id, "t0-0");
}

#[test]
fn writer_dropped_without_close_still_flushes() {
    let (_dir, path) = temp_db();
    {
        let writer = StoreWriter::spawn(&path).expect("spawn");
        writer.write_call(record("dropped", T0));
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.calls(None).expect("calls").len(), 1);
}

#[test]
fn writer_reports_open_errors_at_spawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = StoreWriter::spawn(&dir.path().join("missing/dir/ld.sqlite")).expect_err("bad path");
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
}

#[test]
fn the_journal_keeps_its_order_and_detail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("j.sqlite")).expect("open");
    let e = |ms: i64, event: &str, agent: Option<&str>| ld_store::JournalEntry {
        at: ts(ms),
        event: event.into(),
        call_id: Some("c1@h".into()),
        agent: agent.map(String::from),
        queue: Some("accueil".into()),
        detail: serde_json::json!({ "result": event }),
    };
    // Same millisecond: the insertion order is the order.
    for entry in [
        e(T0, "offered", Some("agent1")),
        e(T0, "offer_ended", Some("agent1")),
        e(T0 + 5, "offered", Some("agent2")),
    ] {
        store.insert_journal(&entry).expect("insert");
    }
    let got = store.journal(None).expect("read");
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].event, "offer_ended");
    assert_eq!(got[2].agent.as_deref(), Some("agent2"));
    assert_eq!(got[0].detail["result"], "offered");
    assert_eq!(store.journal(Some(ts(T0 + 1))).expect("since").len(), 1);
}

//! The store against its promises: what was put comes back, in order and unchanged, after the
//! store is reopened; what was forgotten does not; one client at a time; a row it cannot read
//! is an error naming it; the group policy's timer.

use std::collections::BTreeMap;
use std::time::Duration;

use im_proto::{Body, Delivery, Instant, Json, OutgoingMessage, SendId};
use im_store::{Store, StoreError, Stored, WritePolicy};
use proptest::prelude::*;

fn message(channel: &str, body: Body) -> OutgoingMessage {
    OutgoingMessage::new(channel, body)
}

fn path() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    (dir, path)
}

#[test]
fn every_kind_of_message_comes_back_unchanged_after_a_reopen() {
    let (_dir, path) = path();
    let now = Instant::now();
    let mut json = message(
        "room",
        Body::Json(Json::parse(r#"{"n":1,"s":"é"}"#).unwrap()),
    );
    json.ttl = Some(Duration::from_millis(1500));
    json.delivery = Some(Delivery::AtLeastOnce);
    let mut text = message("room", Body::Text("héllo".into()));
    text.retain = true;
    text.delivery = Some(Delivery::AtMostOnce);
    let binary = message("t/1", Body::Binary(vec![0, 159, 146, 150, 255].into()));
    let sent = [
        (3, "k-3", json),
        (7, "k-7", text),
        (8, "custom key", binary),
    ];
    {
        let mut store = Store::open(&path, WritePolicy::EveryMessage).unwrap();
        for (id, key, msg) in &sent {
            store.put(now, SendId(*id), key, msg).unwrap();
        }
        assert_eq!(store.len(), 3);
    }
    let store = Store::open(&path, WritePolicy::default()).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(store.next_id(), SendId(9));
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 3);
    for (stored, (id, key, msg)) in loaded.iter().zip(&sent) {
        assert_eq!(stored.id, SendId(*id));
        assert_eq!(stored.key, *key);
        let mut expected = msg.clone();
        // A restored message carries the key it went out under.
        expected.key = Some(key.to_string());
        assert_eq!(stored.message, expected);
    }
}

#[test]
fn forgotten_messages_stay_forgotten() {
    let (_dir, path) = path();
    let now = Instant::now();
    let mut store = Store::open(&path, WritePolicy::default()).unwrap();
    for id in 0..5 {
        let msg = message("room", Body::Text(format!("m{id}").into()));
        store.put(now, SendId(id), &format!("k{id}"), &msg).unwrap();
    }
    store
        .forget(now, [SendId(1), SendId(3), SendId(42)])
        .unwrap();
    assert_eq!(store.len(), 3);
    drop(store);
    let store = Store::open(&path, WritePolicy::default()).unwrap();
    let ids: Vec<u64> = store.load().unwrap().iter().map(|s| s.id.0).collect();
    assert_eq!(ids, [0, 2, 4]);
    // Ids are never reused while a higher one is held.
    assert_eq!(store.next_id(), SendId(5));
}

#[test]
fn a_store_belongs_to_one_client_at_a_time() {
    let (_dir, path) = path();
    let first = Store::open(&path, WritePolicy::default()).unwrap();
    let second = Store::open(&path, WritePolicy::default());
    assert!(
        matches!(second, Err(StoreError::InUse)),
        "second opener: {second:?}"
    );
    drop(first);
    Store::open(&path, WritePolicy::default()).expect("free again once the first is dropped");
}

#[test]
fn a_row_that_cannot_be_read_is_an_error_naming_it() {
    let (_dir, path) = path();
    let now = Instant::now();
    {
        let mut store = Store::open(&path, WritePolicy::default()).unwrap();
        let msg = message("room", Body::Text("fine".into()));
        store.put(now, SendId(1), "k1", &msg).unwrap();
        store.put(now, SendId(2), "k2", &msg).unwrap();
    }
    for (sql, what) in [
        ("UPDATE outbox SET body = x'ff00' WHERE id = 2", "UTF-8"),
        (
            "UPDATE outbox SET kind = 0, body = CAST('{' AS BLOB) WHERE id = 2",
            "not JSON",
        ),
        (
            "UPDATE outbox SET kind = 9 WHERE id = 2",
            "unknown body kind",
        ),
        (
            "UPDATE outbox SET delivery = 7, kind = 1, body = CAST('x' AS BLOB) WHERE id = 2",
            "unknown delivery",
        ),
        (
            "UPDATE outbox SET delivery = NULL, ttl_ms = -5 WHERE id = 2",
            "negative TTL",
        ),
    ] {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute(sql, []).unwrap();
        drop(db);
        let store = Store::open(&path, WritePolicy::default()).unwrap();
        match store.load() {
            Err(StoreError::Corrupt { id: 2, what: found }) => {
                assert!(found.contains(what), "{sql}: {found}")
            }
            other => panic!("{sql}: {other:?}"),
        }
        // Still there: nothing is dropped because it could not be read.
        assert_eq!(store.len(), 2);
    }
}

#[test]
fn a_file_of_another_schema_version_is_refused() {
    let (_dir, path) = path();
    drop(Store::open(&path, WritePolicy::default()).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    assert!(matches!(
        Store::open(&path, WritePolicy::default()),
        Err(StoreError::Version {
            found: 99,
            expected: 1
        })
    ));
}

#[test]
fn a_group_is_synced_when_full_or_when_its_time_is_up() {
    let start = Instant::now();
    let within = Duration::from_millis(10);
    let mut store = Store::in_memory(WritePolicy::Group {
        messages: 3,
        within,
    })
    .unwrap();
    assert_eq!(store.poll_timeout(), None, "nothing waits");
    let msg = message("room", Body::Text("x".into()));
    store.put(start, SendId(0), "k0", &msg).unwrap();
    assert_eq!(
        store.poll_timeout(),
        Some(start + within),
        "the first commit's clock"
    );
    let later = start + Duration::from_millis(4);
    store.put(later, SendId(1), "k1", &msg).unwrap();
    assert_eq!(
        store.poll_timeout(),
        Some(start + within),
        "still the first one's"
    );
    store.put(later, SendId(2), "k2", &msg).unwrap();
    assert_eq!(store.poll_timeout(), None, "the third filled the group");
    store.put(later, SendId(3), "k3", &msg).unwrap();
    store
        .handle_timeout(later + within - Duration::from_millis(1))
        .unwrap();
    assert_eq!(store.poll_timeout(), Some(later + within), "not yet due");
    // Time standing still or going back syncs nothing early.
    store.handle_timeout(start).unwrap();
    assert_eq!(store.poll_timeout(), Some(later + within));
    store.handle_timeout(later + within).unwrap();
    assert_eq!(store.poll_timeout(), None, "synced when due");

    let mut never = Store::in_memory(WritePolicy::Group {
        messages: usize::MAX,
        within: Duration::MAX,
    })
    .unwrap();
    never.put(start, SendId(0), "k", &msg).unwrap();
    assert_eq!(
        never.poll_timeout(),
        None,
        "a time too far to represent is no timer"
    );
    let mut every = Store::in_memory(WritePolicy::EveryMessage).unwrap();
    every.put(start, SendId(0), "k", &msg).unwrap();
    assert_eq!(every.poll_timeout(), None, "synced by the commit itself");
}

#[test]
fn ids_beyond_sqlite_integers_are_refused_not_wrapped() {
    let mut store = Store::in_memory(WritePolicy::default()).unwrap();
    let msg = message("room", Body::Text("x".into()));
    let id = SendId(u64::MAX);
    assert!(matches!(
        store.put(Instant::now(), id, "k", &msg),
        Err(StoreError::OutOfRange {
            id: SendId(u64::MAX)
        })
    ));
    let mut long = msg.clone();
    long.ttl = Some(Duration::MAX);
    assert!(matches!(
        store.put(Instant::now(), SendId(1), "k", &long),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(store.is_empty(), "nothing half-written");
}

#[test]
fn debug_output_shows_no_message() {
    let mut store = Store::in_memory(WritePolicy::default()).unwrap();
    let msg = message("secret-room", Body::Text("secret body".into()));
    store
        .put(Instant::now(), SendId(0), "secret-key", &msg)
        .unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[derive(Debug, Clone)]
enum Op {
    Put { body: Vec<u8> },
    Forget { pick: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|body| Op::Put { body }),
        3 => any::<usize>().prop_map(|pick| Op::Forget { pick }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    // Each case makes and reopens SQLite files on disk: at most 256 cases however many
    // PROPTEST_CASES asks for, so that CI's 2,000 stay a matter of seconds.
    #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases.min(256)))]

    /// Q5: whatever mix of puts, forgets and reopens, the store holds exactly the messages put
    /// and not forgotten, in id order, each unchanged, and never hands out a held id again.
    #[test]
    fn q5_the_store_holds_what_was_put_and_not_forgotten(ops in proptest::collection::vec(op(), 0..60)) {
        let (_dir, path) = path();
        let now = Instant::now();
        let mut store = Store::open(&path, WritePolicy::default()).unwrap();
        let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { body } => {
                    let id = store.next_id();
                    prop_assert!(model.keys().all(|held| *held < id.0));
                    let msg = message("c", Body::Binary(body.clone().into()));
                    store.put(now, id, &format!("k{}", id.0), &msg).unwrap();
                    model.insert(id.0, body);
                }
                Op::Forget { pick } => {
                    if let Some(&id) = model.keys().nth(pick % (model.len() + 1)) {
                        model.remove(&id);
                        store.forget(now, [SendId(id)]).unwrap();
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open(&path, WritePolicy::default()).unwrap();
                }
            }
            prop_assert_eq!(store.len(), model.len());
        }
        let loaded: Vec<(u64, Vec<u8>)> = store
            .load()
            .unwrap()
            .into_iter()
            .map(|Stored { id, message, .. }| (id.0, message.body.as_bytes().to_vec()))
            .collect();
        let expected: Vec<(u64, Vec<u8>)> = model.into_iter().collect();
        prop_assert_eq!(loaded, expected);
    }
}

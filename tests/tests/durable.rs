//! Q5 durable, through im-tokio: what a store holds from an earlier run goes out first under
//! its old ids and keys; a store ends empty once every fate is reported; a message the client
//! refuses is not left in the store. (Killing a process is `cargo run -p im-tests --bin
//! crash-test`.)

use std::time::Duration;

use im_tests::wait::until;
use im_tests::LiveChatServer;
use im_tokio::{
    Body, Client, Event, Limits, LiveChat, OutgoingMessage, SendError, SendId, Store, WritePolicy,
};
use serde_json::json;

const KEY: &str = "durable-key";

fn livechat(url: &str, store: Store) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(LiveChat::new(1, 7, KEY))
        .store(store)
}

fn chat(n: u64) -> OutgoingMessage {
    OutgoingMessage::new("lobby", Body::json(&json!({ "n": n })).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_earlier_run_left_goes_out_first_under_its_ids_and_keys() {
    let server = LiveChatServer::start(KEY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    // What a killed run would have left: two messages under its ids and keys.
    {
        let mut store = Store::open(&path, WritePolicy::EveryMessage).unwrap();
        let now = im_proto::Instant::now();
        store.put(now, SendId(40), "run1-40", &chat(1)).unwrap();
        store.put(now, SendId(41), "run1-41", &chat(2)).unwrap();
    }
    let store = Store::open(&path, WritePolicy::default()).unwrap();
    let (client, mut events) = livechat(&server.url(), store).connect().unwrap();
    let new = client.send(chat(3)).unwrap();
    assert_eq!(new, SendId(42), "numbered after what was restored");
    let mut pending = vec![SendId(40), SendId(41), new];
    let seen = until(&mut events, "three acks", |e| {
        if let Event::Acked { id } = e {
            pending.retain(|p| p != id);
        }
        pending.is_empty()
    })
    .await;
    let restored: Vec<SendId> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Restored { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(restored, [SendId(40), SendId(41)]);
    let delivered = server.delivered();
    let got: Vec<(&str, i64)> = delivered
        .iter()
        .map(|d| (d.key.as_str(), d.message["n"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got[..2],
        [("run1-40", 1), ("run1-41", 2)],
        "old keys, in order"
    );
    assert_eq!(got[2].1, 3);
    client.close().await;
    let store = Store::open(&path, WritePolicy::default()).unwrap();
    assert!(store.is_empty(), "every fate reported: nothing left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_not_kept_and_a_close_empties_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    let store = Store::open(&path, WritePolicy::EveryMessage).unwrap();
    // Nothing listens there: everything waits in the outbox, which holds two.
    let port = im_tests::peers::free_port();
    let (client, mut events) = livechat(&format!("ws://127.0.0.1:{port}/ws"), store)
        .limits(Limits::default().outbox_messages(2))
        .reconnect(
            im_tokio::ReconnectPolicy::default()
                .initial(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60)),
        )
        .connect()
        .unwrap();
    let a = client.send(chat(1)).unwrap();
    let b = client.send(chat(2)).unwrap();
    assert!(matches!(
        client.send(chat(3)),
        Err(SendError::OutboxFull { .. })
    ));
    // Another client cannot take the store meanwhile.
    assert!(matches!(
        Store::open(&path, WritePolicy::default()),
        Err(im_tokio::StoreError::InUse)
    ));
    client.close().await;
    let mut handed_back = Vec::new();
    until(&mut events, "Closed", |e| {
        if let Event::Undelivered { id, .. } = e {
            handed_back.push(*id);
        }
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert_eq!(handed_back, [a, b], "each told once, by id");
    let store = Store::open(&path, WritePolicy::default()).unwrap();
    assert!(
        store.is_empty(),
        "handed back means forgotten; refused means never kept: {store:?}"
    );
}

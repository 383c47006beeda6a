//! Socket.IO on two nodes sharing rooms through `@socket.io/redis-adapter` and a real
//! redis-server, all on free loopback ports. A client on node A receives what is sent on node
//! B; node A is killed (SIGKILL); the client fails over to B (its second endpoint, R7),
//! rejoins the room and keeps receiving. Socket.IO broadcasts are at-most-once: what is sent
//! during the gap is lost, and the test prints how much.

use std::time::{Duration, Instant};

use im_tests::wait::until;
use im_tests::{RedisServer, SocketIoServer};
use im_tokio::{Client, Event, ReconnectPolicy, SocketIo};

const PING: Duration = Duration::from_millis(500);

fn number(e: &Event) -> Option<u64> {
    match e {
        Event::Message(m) => m.body.decode::<u64>().ok(),
        _ => None,
    }
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm, im_missing_redis_server),
    ignore = "needs node, npm and redis-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fails_over_between_nodes_sharing_rooms_through_redis() {
    let redis = RedisServer::start();
    let mut node_a = SocketIoServer::start_with_redis(PING, PING, Some(redis.url()));
    let node_b = SocketIoServer::start_with_redis(PING, PING, Some(redis.url()));
    let (reader, mut events) = Client::builder()
        .endpoint(node_a.url())
        .endpoint(node_b.url())
        .protocol(
            // The project's test app: rooms through its `subscribe` event, acks on every event.
            SocketIo::new()
                .room_events("subscribe", "unsubscribe")
                .ack_emits(true),
        )
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(100))
                .max_delay(Duration::from_millis(500)),
        )
        .connect()
        .unwrap();
    reader.subscribe("ticks").unwrap();
    until(&mut events, "joined on node A", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;

    let (writer, _writer_events) = Client::builder()
        .endpoint(node_b.url())
        .protocol(
            // The project's test app: rooms through its `subscribe` event, acks on every event.
            SocketIo::new()
                .room_events("subscribe", "unsubscribe")
                .ack_emits(true),
        )
        .connect()
        .unwrap();
    let w = writer.clone();
    let pumping = tokio::spawn(async move {
        for n in 0u64.. {
            if w.send_json("ticks", &n).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let mut received = Vec::new();
    until(&mut events, "50 messages sent on B, read on A", |e| {
        received.extend(number(e));
        received.len() >= 50
    })
    .await;
    node_a.kill();
    let killed = Instant::now();
    let last_before = *received.last().unwrap();
    let seen = until(&mut events, "a message after the failover", |e| {
        received.extend(number(e));
        received.last().is_some_and(|n| *n > last_before + 1)
    })
    .await;
    let gap = killed.elapsed();
    until(&mut events, "50 more", |e| {
        received.extend(number(e));
        received.len() >= 150
    })
    .await;
    pumping.abort();
    let connected_to = seen.iter().rev().find_map(|e| match e {
        Event::Connected { endpoint, .. } => Some(endpoint.to_string()),
        _ => None,
    });
    let first_after = received.iter().copied().find(|n| *n > last_before).unwrap();
    let lost = first_after - last_before - 1;
    let mut unique = received.clone();
    unique.dedup();
    let duplicates = received.len() - unique.len();
    println!(
        "Socket.IO failover: node A killed; reconnected to {connected_to:?}; first message after \
         {gap:?}; lost {lost} sent during the gap; duplicates {duplicates}"
    );
    assert!(connected_to.is_some_and(|e| e.contains(&node_b.port().to_string())));
    assert!(gap < Duration::from_secs(3), "failover took {gap:?}");
    assert_eq!(duplicates, 0);
    assert!(received.windows(2).all(|w| w[0] < w[1]), "in order");
    reader.close().await;
    writer.close().await;
}

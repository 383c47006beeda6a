//! Socket.IO on two nodes sharing rooms through Redis, all on free loopback ports; a client on
//! node A receives what is sent on node B, and node A goes away.
//!
//! - Without recovery (`@socket.io/redis-adapter`): node A is SIGKILLed, the client fails over
//!   to B (its second endpoint, R7), rejoins the room and keeps receiving. Broadcasts are
//!   at-most-once: what is sent during the gap is lost, and the test prints how much.
//! - With connection state recovery (`@socket.io/redis-streams-adapter`, which keeps broadcasts
//!   in a Redis stream and sessions in Redis): node A shutting down (SIGTERM) writes the
//!   client's session, B restores it and replays what was missed; the stock server can drop
//!   the one broadcast made while it restores (a race of its own, measured and bounded here). A
//!   SIGKILLed node writes nothing: B cannot restore the session, and the client reports the
//!   gap.

use std::time::{Duration, Instant};

use im_tests::wait::{all_acked, until};
use im_tests::{RedisServer, SocketIoServer};
use im_tokio::{Client, Event, ReconnectPolicy, ReportedError, SocketIo};

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
    let (reader, mut events) = test_app_client(&[node_a.url(), node_b.url()])
        .connect()
        .unwrap();
    reader.subscribe("ticks").unwrap();
    until(&mut events, "joined on node A", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;

    // Its events are not read: dropped, so they hold nothing back (Q7).
    let (writer, writer_events) = test_app_client(&[node_b.url()]).connect().unwrap();
    drop(writer_events);
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

/// A client of the project's test app (`server.js`) on `endpoints`, in order: rooms through its
/// `subscribe` event, acks on every event.
fn test_app_client(endpoints: &[String]) -> im_tokio::ClientBuilder {
    let mut builder = Client::builder();
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint.as_str());
    }
    builder
        .protocol(
            SocketIo::new()
                .room_events("subscribe", "unsubscribe")
                .ack_emits(true),
        )
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(100))
                .max_delay(Duration::from_millis(500)),
        )
}

/// What one failover of the recovery cluster came to.
struct Failover {
    published: u64,
    received: u64,
    duplicates: u64,
    gap: Duration,
    /// Numbers sent after the last one read on node A and before the first one read after it.
    skipped: u64,
    /// Numbers never read, and of those, how many were sent more than [`RESTORE_WINDOW`] away
    /// from the moment the session was restored.
    lost: u64,
    lost_outside_restore: u64,
    recovered: Option<bool>,
    gap_reported: bool,
}

/// How far from the reader's recovery (its `Connected`) a broadcast may be made and still fall
/// into the server's restore race (see `a_recovered_session_misses_only_the_servers_restore_race`):
/// the race itself lasts a few milliseconds; the rest is scheduling slack on a loaded machine.
const RESTORE_WINDOW: Duration = Duration::from_millis(100);

/// Two Socket.IO nodes with connection state recovery through Redis streams; a reader on node
/// A, a writer on node B sending `messages` numbered events, acked; after 200 arrive, `end`
/// ends node A. Waits (up to a minute) for everything the server acked, or, when the session
/// could not be restored, for the gap to be reported and 100 messages after it.
async fn recovery_failover(messages: u64, end: fn(&mut SocketIoServer)) -> Failover {
    let redis = RedisServer::start();
    let mut node_a = SocketIoServer::start_with_recovery(PING, PING, redis.url());
    let node_b = SocketIoServer::start_with_recovery(PING, PING, redis.url());
    let (reader, mut events) = test_app_client(&[node_a.url(), node_b.url()])
        .connect()
        .unwrap();
    reader.subscribe("ticks").unwrap();
    until(&mut events, "joined on node A", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    let (writer, writer_events) = test_app_client(&[node_b.url()]).connect().unwrap();
    let fates = tokio::spawn(all_acked(writer_events, messages));
    let w = writer.clone();
    // When each number was sent.
    let sent_at = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stamps = sent_at.clone();
    let pumping = tokio::spawn(async move {
        for n in 0..messages {
            stamps.lock().unwrap().push(Instant::now());
            w.send_json("ticks", &n).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut received = Vec::new();
    until(&mut events, "200 messages sent on B, read on A", |e| {
        received.extend(number(e));
        received.len() >= 200
    })
    .await;
    let last_before = *received.last().unwrap();
    let ended = Instant::now();
    end(&mut node_a);
    let (mut gap, mut recovered, mut gap_reported) = (None, None, false);
    let mut first_after = None;
    let distinct = |r: &Vec<u64>| r.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut after_gap = 0;
    let mut recovered_at = None;
    // Until the last number: live events come in order, after whatever was replayed.
    while received.last() != Some(&(messages - 1)) && !(gap_reported && after_gap >= 100) {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| {
                let got: std::collections::BTreeSet<u64> = received.iter().copied().collect();
                let missing: Vec<u64> = (0..messages).filter(|n| !got.contains(n)).collect();
                panic!(
                    "{} of {messages} a minute after the failover (the last before it: \
                     {last_before}); missing {missing:?}",
                    got.len()
                )
            })
            .expect("the reader's events");
        if number(&event).is_none() {
            eprintln!(
                "reader, {:?} after node A ended: {event:?}",
                ended.elapsed()
            );
        }
        match &event {
            Event::Connected { recovered: r, .. } => {
                recovered = Some(*r);
                recovered_at = Some(Instant::now());
            }
            Event::Error(ReportedError::Gap { .. }) => gap_reported = true,
            _ => {}
        }
        if let Some(n) = number(&event) {
            if n > last_before + 1 && gap.is_none() {
                gap = Some(ended.elapsed());
                eprintln!(
                    "reader, {:?} after node A ended: {n} (the first after {last_before})",
                    ended.elapsed()
                );
            }
            if n > last_before && first_after.is_none() {
                first_after = Some(n);
            }
            after_gap += u64::from(gap_reported);
            received.push(n);
        }
    }
    pumping.await.unwrap();
    let acked = fates.await.unwrap();
    reader.close().await;
    writer.close().await;
    let got: std::collections::BTreeSet<u64> = received.iter().copied().collect();
    let missing: Vec<u64> = (0..messages).filter(|n| !got.contains(n)).collect();
    let sent_at = sent_at.lock().unwrap();
    let outside = missing
        .iter()
        .filter(|n| {
            let sent = sent_at[**n as usize];
            recovered_at.is_none_or(|at| sent + RESTORE_WINDOW < at || sent > at + RESTORE_WINDOW)
        })
        .count() as u64;
    if !missing.is_empty() {
        eprintln!("missing {missing:?}; {outside} of them sent away from the restore");
    }
    Failover {
        published: acked,
        received: distinct(&received),
        duplicates: received.len() as u64 - distinct(&received),
        gap: gap.unwrap_or_default(),
        skipped: first_after.map_or(0, |n| n - last_before - 1),
        lost: missing.len() as u64,
        lost_outside_restore: outside,
        recovered,
        gap_reported,
    }
}

/// Issue 20's failover line for Socket.IO: the node the reader is on shuts down (SIGTERM, as a
/// deploy does) while a writer on the other node keeps sending; the reader's session is
/// restored on the other node from Redis with what it missed. Nothing is lost but, at times,
/// the one broadcast the stock server drops while it restores the session (below).
#[cfg_attr(
    any(im_missing_node, im_missing_npm, im_missing_redis_server),
    ignore = "needs node, npm and redis-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_session_misses_only_the_servers_restore_race() {
    let run = recovery_failover(1000, SocketIoServer::stop).await;
    println!(
        "failover, Socket.IO (2 nodes, Redis streams adapter, connection state recovery, node A \
         shut down): published {}, received {}, lost {} (sent while the server restored the \
         session: {}), duplicates after dedupe {}, gap {} ms, recovered {:?}",
        run.published,
        run.received,
        run.lost,
        run.lost - run.lost_outside_restore,
        run.duplicates,
        run.gap.as_millis(),
        run.recovered
    );
    assert_eq!(run.recovered, Some(true));
    assert!(!run.gap_reported);
    assert_eq!(run.duplicates, 0);
    // Stock socket.io (4.8) with @socket.io/redis-streams-adapter (0.3) restores a session by
    // reading the missed broadcasts from the Redis stream and only then puts the socket back in
    // its rooms: a broadcast made between the two reaches neither, and the server still says
    // `recovered`. Seen in about one run of seven; the client cannot see it (offsets are Redis
    // stream ids, not a sequence). Anything else lost is ours.
    assert_eq!(run.lost_outside_restore, 0, "lost away from the restore");
    assert!(run.lost <= 1, "more than the restore race explains");
}

/// A node that is SIGKILLed cannot write its sockets' sessions: another node cannot restore
/// them, and the reader reports the gap instead of losing messages silently.
#[cfg_attr(
    any(im_missing_node, im_missing_npm, im_missing_redis_server),
    ignore = "needs node, npm and redis-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_with_a_killed_node_is_reported_as_a_gap() {
    let run = recovery_failover(1000, SocketIoServer::kill).await;
    println!(
        "failover, Socket.IO (2 nodes, recovery, node A SIGKILLed): lost {} sent during the \
         gap, reported as a gap: {}; gap {} ms",
        run.skipped,
        run.gap_reported,
        run.gap.as_millis()
    );
    assert_eq!(run.recovered, Some(false));
    assert!(run.gap_reported, "the lost session must be reported");
}

//! Riding a real cluster: three nats-server nodes with WebSocket listeners, routed together,
//! started on free loopback ports. The client is given one node's URL, learns the others from
//! INFO (R7), and when its node is killed (SIGKILL) fails over, resubscribes, and keeps
//! receiving what is published on another node. NATS core is at-most-once: what is published
//! during the gap is lost, and the test prints how much.

use std::time::{Duration, Instant};

use im_tests::wait::until;
use im_tests::NatsCluster;
use im_tokio::{
    Client, Delivery, EncodeError, Event, Nats, OutgoingMessage, ReconnectPolicy, SendError,
};

fn nats(url: &str, name: &str) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(Nats::new(name))
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(100))
                .max_delay(Duration::from_millis(500)),
        )
}

fn number(e: &Event) -> Option<u64> {
    match e {
        Event::Message(m) => m.body.as_text()?.parse().ok(),
        _ => None,
    }
}

#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_learns_the_cluster_and_fails_over_when_its_node_dies() {
    let mut cluster = NatsCluster::start(3);
    let (sub, mut events) = nats(&cluster.url(0), "subscriber").connect().unwrap();
    sub.subscribe("im.cluster").unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;

    // A publisher on node 1, one numbered message every 10 ms.
    // Its events are not read: dropped, so they hold nothing back (Q7).
    let (publ, pub_events) = nats(&cluster.url(1), "publisher").connect().unwrap();
    drop(pub_events);
    let publisher = publ.clone();
    let pumping = tokio::spawn(async move {
        for n in 0u64.. {
            if publisher.send_text("im.cluster", n.to_string()).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    // Traffic flows across the route from node 1 to node 0 (the cluster is formed, and INFO
    // has told the subscriber about the other nodes).
    let mut received: Vec<u64> = Vec::new();
    until(&mut events, "100 messages via node 0", |e| {
        received.extend(number(e));
        received.len() >= 100
    })
    .await;

    cluster.kill(0);
    let killed = Instant::now();
    let last_before = *received.last().unwrap();
    // Messages already in flight may still arrive from the dying node; wait for one that was
    // published after the kill (its number jumps past the gap).
    let seen = until(&mut events, "a message after the failover", |e| {
        received.extend(number(e));
        received.last().is_some_and(|n| *n > last_before + 1)
    })
    .await;
    let gap = killed.elapsed();
    let connected_to = seen.iter().rev().find_map(|e| match e {
        Event::Connected { endpoint, .. } => Some(endpoint.to_string()),
        _ => None,
    });
    // Some more after the failover, then count.
    until(&mut events, "100 more messages", |e| {
        received.extend(number(e));
        received.len() >= 300
    })
    .await;
    pumping.abort();
    let first_after = received.iter().copied().find(|n| *n > last_before).unwrap();
    let lost = first_after - last_before - 1;
    let mut sorted = received.clone();
    sorted.dedup();
    let duplicates = received.len() - sorted.len();
    println!(
        "NATS failover: node 0 killed; reconnected to {connected_to:?} (given only {}); \
         first message after {gap:?}; lost {lost} published during the gap; duplicates {duplicates}",
        cluster.url(0)
    );
    let endpoint = connected_to.expect("reconnected");
    assert_ne!(endpoint, cluster.url(0), "failed over to a learnt node");
    assert!(gap < Duration::from_secs(3), "failover took {gap:?}");
    assert_eq!(duplicates, 0);
    assert!(received.windows(2).all(|w| w[0] < w[1]), "in order");
    sub.close().await;
    publ.close().await;
}

/// NATS core has no acks: a publish ends `Sent` once written, and asking for at-least-once is
/// refused at `send` with a typed error instead of being silently weakened.
#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_end_sent_and_acks_are_refused_up_front() {
    let cluster = NatsCluster::start(1);
    let (client, mut events) = nats(&cluster.url(0), "im-sent").connect().unwrap();
    client.subscribe("fates").unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let id = client.send_text("fates", "1").unwrap();
    let seen = until(&mut events, "the message back", |e| number(e) == Some(1)).await;
    assert!(seen.contains(&Event::Sent { id }), "{seen:?}");
    let refused =
        client.send(OutgoingMessage::text("fates", "2").with_delivery(Delivery::AtLeastOnce));
    assert!(
        matches!(
            refused,
            Err(SendError::Encode(EncodeError::Unsupported {
                protocol: "nats",
                ..
            }))
        ),
        "{refused:?}"
    );
    client.close().await;
}

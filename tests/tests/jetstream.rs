//! NATS JetStream against stock nats-server (2.9, JetStream on, streams added the way an
//! operator adds them): publishes acked by the stream and stored once per idempotency key,
//! durable consumers that replay what a client missed while it was away (closed, or cut off),
//! a consumer lost on the server reported as a gap, and a three-node R3 cluster losing the node
//! the subscriber is on without losing a message.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use im_tests::proxy::Mode;
use im_tests::wait::{cut_off, until};
use im_tests::{FaultProxy, NatsCluster};
use im_tokio::{
    Client, Delivery, Event, JetStream, Nats, OutgoingMessage, ReconnectPolicy, ReportedError,
    SendError, Undelivered,
};

const STREAM: &str = "CHAT";

fn jetstream(url: &str, name: &str) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(
            Nats::new(name).jetstream(JetStream::new(STREAM).ack_wait(Duration::from_secs(1))),
        )
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(100))
                .max_delay(Duration::from_millis(500)),
        )
        .connect_timeout(Duration::from_millis(500))
        .handshake_timeout(Duration::from_millis(500))
}

fn text_of(e: &Event) -> Option<String> {
    match e {
        Event::Message(m) => m.body.as_text().map(str::to_owned),
        _ => None,
    }
}

fn number(e: &Event) -> Option<u64> {
    text_of(e)?.parse().ok()
}

/// Publish `texts` on `subject` through a JetStream client of its own; returns once the stream
/// acked every one.
async fn publish_stored(url: &str, subject: &str, texts: &[&str]) {
    let (publisher, mut events) = jetstream(url, "publisher").connect().unwrap();
    let mut ids = BTreeSet::new();
    for text in texts {
        ids.insert(publisher.send_text(subject, *text).unwrap());
    }
    until(&mut events, "every publish acked", |e| {
        if let Event::Acked { id } = e {
            ids.remove(id);
        }
        ids.is_empty()
    })
    .await;
    publisher.close().await;
}

#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_acked_by_the_stream_and_stored_once_per_key() {
    let cluster = NatsCluster::start_jetstream(1);
    cluster.add_stream(STREAM, &["chat.>"], 1);
    let (client, mut events) = jetstream(&cluster.url(0), "fates").connect().unwrap();
    client.subscribe("chat.fates").unwrap();
    until(
        &mut events,
        "the consumer bound",
        |e| matches!(e, Event::Subscribed { channel } if channel == "chat.fates"),
    )
    .await;
    // The same key twice (a retransmission, as after a crash): two acks, one stored message.
    let first = client
        .send(OutgoingMessage::text("chat.fates", "once").with_key("key-1"))
        .unwrap();
    let again = client
        .send(OutgoingMessage::text("chat.fates", "once").with_key("key-1"))
        .unwrap();
    // At-most-once on request: written, never acked.
    let loose = client
        .send(OutgoingMessage::text("chat.fates", "loose").with_delivery(Delivery::AtMostOnce))
        .unwrap();
    let sentinel = client.send_text("chat.fates", "sentinel").unwrap();
    let (mut back, mut acked) = (false, false);
    let seen = until(&mut events, "the sentinel back and acked", |e| {
        back |= text_of(e).as_deref() == Some("sentinel");
        acked |= *e == Event::Acked { id: sentinel };
        back && acked
    })
    .await;
    assert!(seen.contains(&Event::Acked { id: first }), "{seen:#?}");
    assert!(seen.contains(&Event::Acked { id: again }), "{seen:#?}");
    assert!(seen.contains(&Event::Sent { id: loose }), "{seen:#?}");
    let texts: Vec<String> = seen.iter().filter_map(text_of).collect();
    assert_eq!(
        texts,
        ["once", "loose", "sentinel"],
        "the repeat was stored once"
    );
    // Each delivery carries its stream sequence as the message id.
    let ids: Vec<Option<String>> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [Some("1".into()), Some("2".into()), Some("3".into())]);
    client.close().await;
}

/// Q6 against stock nats-server: a stream that will never take a message (over its
/// `max_msg_size`) refuses it, and the message ends at once, `Undelivered` with the stream's
/// reason and not maybe delivered, instead of after every ack retry; a message it takes is
/// acked beside it. The ack timeout is a minute, so only the refusal can end it in time.
#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_stream_refuses_for_good_ends_at_once_with_its_reason() {
    let cluster = NatsCluster::start_jetstream(1);
    cluster.add_stream_with(
        STREAM,
        &["chat.>"],
        1,
        serde_json::json!({ "max_msg_size": 64 }),
    );
    let (client, mut events) = jetstream(&cluster.url(0), "refused")
        .ack_timeout(Duration::from_secs(60))
        .connect()
        .unwrap();
    until(&mut events, "connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let big = client.send_text("chat.refused", "x".repeat(200)).unwrap();
    let small = client.send_text("chat.refused", "fits").unwrap();
    let (mut refused, mut acked) = (None, false);
    let seen = until(
        &mut events,
        "the big one refused and the small one acked",
        |e| {
            match e {
                Event::Undelivered {
                    id,
                    reason,
                    maybe_delivered,
                    ..
                } if *id == big => refused = Some((reason.clone(), *maybe_delivered)),
                Event::Acked { id } if *id == small => acked = true,
                _ => {}
            }
            refused.is_some() && acked
        },
    )
    .await;
    let (reason, maybe_delivered) = refused.unwrap();
    assert!(
        matches!(&reason, Undelivered::Refused { reason } if reason.contains("maximum")),
        "{reason:?}; saw {seen:#?}"
    );
    assert!(!maybe_delivered, "refused on its only transmission");
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Acked { id } if *id == big)),
        "{seen:#?}"
    );
    client.close().await;
}

/// A client that was closed comes back under the same consumer name (a restarted process) and
/// gets exactly what was published while it was gone: nothing it had already, nothing missing.
#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_replays_what_was_published_while_the_client_was_gone() {
    let cluster = NatsCluster::start_jetstream(1);
    cluster.add_stream(STREAM, &["chat.>"], 1);
    let url = cluster.url(0);
    let (sub, mut events) = jetstream(&url, "alice").connect().unwrap();
    sub.subscribe("chat.room").unwrap();
    until(&mut events, "the consumer bound", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    publish_stored(&url, "chat.room", &["before"]).await;
    until(&mut events, "the first message", |e| {
        text_of(e).as_deref() == Some("before")
    })
    .await;
    sub.close().await;

    publish_stored(&url, "chat.room", &["away 1", "away 2", "away 3"]).await;

    let (sub, mut events) = jetstream(&url, "alice").connect().unwrap();
    sub.subscribe("chat.room").unwrap();
    let mut seen = until(&mut events, "the consumer bound again", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    publish_stored(&url, "chat.room", &["back"]).await;
    seen.extend(
        until(&mut events, "the sentinel", |e| {
            text_of(e).as_deref() == Some("back")
        })
        .await,
    );
    let texts: Vec<String> = seen.iter().filter_map(text_of).collect();
    assert_eq!(texts, ["away 1", "away 2", "away 3", "back"]);
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Error(ReportedError::Gap { .. }))),
        "{seen:#?}"
    );
    sub.close().await;
}

/// A consumer deleted on the server while its client was cut off cannot replay what it held:
/// on the reconnect the client sees a new consumer and says so.
#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_lost_on_the_server_is_reported_as_a_gap() {
    let cluster = NatsCluster::start_jetstream(1);
    cluster.add_stream(STREAM, &["chat.>"], 1);
    let proxy = FaultProxy::start(([127, 0, 0, 1], cluster.ws_port(0)).into()).unwrap();
    let protocol = Nats::new("bob").jetstream(JetStream::new(STREAM));
    let durable = protocol.consumer_name("chat.gap").unwrap();
    let (sub, mut events) = jetstream(&proxy.url(""), "bob")
        .protocol(protocol)
        .connect()
        .unwrap();
    sub.subscribe("chat.gap").unwrap();
    until(&mut events, "the consumer bound", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    cut_off(&proxy, &mut events).await;
    cluster.delete_consumer(STREAM, &durable);
    proxy.set_mode(Mode::Pass);
    let seen = until(&mut events, "the gap", |e| {
        matches!(e, Event::Error(ReportedError::Gap { .. }))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Connected { .. })));
    sub.close().await;
}

/// Issue 20's failover line for NATS: three JetStream nodes, an R3 stream, a subscriber on
/// node 0 and a publisher on node 1 publishing continuously; node 0 is SIGKILLed. Every
/// message the stream acked reaches the subscriber once.
#[cfg_attr(
    im_missing_nats_server,
    ignore = "needs nats-server, not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_loses_nothing_when_the_subscribers_node_dies() {
    const MESSAGES: u64 = 1500;
    let mut cluster = NatsCluster::start_jetstream(3);
    cluster.add_stream(STREAM, &["chat.>"], 3);
    let (sub, mut events) = jetstream(&cluster.url(0), "failover-sub")
        .connect()
        .unwrap();
    sub.subscribe("chat.failover").unwrap();
    until(&mut events, "the consumer bound", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;

    // Acks may stall while the cluster elects leaders: retried every 500 ms, for a minute.
    let (publ, mut pub_events) = jetstream(&cluster.url(1), "failover-pub")
        .ack_timeout(Duration::from_millis(500))
        .ack_retries(120)
        .connect()
        .unwrap();
    let publisher = publ.clone();
    let t0 = Instant::now();
    // The publisher's fates, counted; anything else it reports is printed.
    let fates = tokio::spawn(async move {
        let mut acked = 0u64;
        let mut undelivered = 0u64;
        while let Some(e) = pub_events.recv().await {
            match e {
                Event::Acked { .. } => acked += 1,
                Event::Undelivered { .. } => undelivered += 1,
                e => eprintln!("publisher, {:?} after the start: {e:?}", t0.elapsed()),
            }
            if acked + undelivered == MESSAGES {
                break;
            }
        }
        (acked, undelivered)
    });
    let pumping = tokio::spawn(async move {
        for n in 0..MESSAGES {
            // A full outbox (acks stalled by an election) is backpressure: wait, then go on.
            while let Err(e) = publisher.send_text("chat.failover", n.to_string()) {
                assert!(matches!(e, SendError::OutboxFull { .. }), "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    });

    let mut received: Vec<u64> = Vec::new();
    until(&mut events, "300 messages via node 0", |e| {
        received.extend(number(e));
        received.len() >= 300
    })
    .await;
    cluster.kill(0);
    let killed = Instant::now();
    let last_before = *received.last().unwrap();
    let mut gap = None;
    let mut connected_to = None;
    let distinct = |r: &Vec<u64>| r.iter().collect::<BTreeSet<_>>().len() as u64;
    // Long enough for the leader elections of an R3 stream on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while distinct(&received) < MESSAGES {
        let event = match tokio::time::timeout_at(deadline.into(), events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the subscriber's events ended"),
            Err(_) => {
                let got: BTreeSet<u64> = received.iter().copied().collect();
                let missing: Vec<u64> = (0..MESSAGES).filter(|n| !got.contains(n)).collect();
                panic!(
                    "{} of {MESSAGES} a minute after the failover; missing {missing:?}",
                    got.len()
                )
            }
        };
        match number(&event) {
            Some(n) => {
                if n > last_before + 1 && gap.is_none() {
                    gap = Some(killed.elapsed());
                }
                received.push(n);
            }
            None => {
                eprintln!("subscriber, {:?} after the start: {event:?}", t0.elapsed());
                if let Event::Connected { endpoint, .. } = event {
                    connected_to = Some(endpoint.to_string());
                }
            }
        }
    }
    pumping.await.unwrap();
    let (acked, undelivered) = fates.await.unwrap();
    let duplicates = received.len() as u64 - distinct(&received);
    let lost = acked.saturating_sub(distinct(&received));
    println!(
        "failover, NATS JetStream (3 nodes, R3 stream, node 0 SIGKILLed): published {MESSAGES}, \
         acked by the stream {acked}, received {}, lost {lost}, duplicates after dedupe \
         {duplicates}, gap {} ms (reconnected to {})",
        distinct(&received),
        gap.map_or(0, |g| g.as_millis()),
        connected_to.as_deref().unwrap_or("?")
    );
    assert_eq!(undelivered, 0, "every publish stored");
    assert_eq!(lost, 0);
    assert_eq!(duplicates, 0);
    assert_ne!(connected_to.as_deref(), Some(cluster.url(0).as_str()));
    sub.close().await;
    publ.close().await;
}

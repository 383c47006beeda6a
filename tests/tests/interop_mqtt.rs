//! MQTT 3.1.1 over WebSocket against a real, stock Mosquitto 2 broker (nothing but a WebSocket
//! listener configured), started by each test on a free loopback port (built ignored when
//! mosquitto is missing on a developer machine; a failure under CI).

use std::time::Duration;

use im_tests::peers::Mosquitto;
use im_tests::proxy::Mode;
use im_tests::wait::{
    all_acked, blackhole_until_dead_link, cut_off, resubscribed_after_restart, until,
};
use im_tests::FaultProxy;
use im_tokio::{Client, Delivery, Event, HeartbeatMode, Mqtt, OutgoingMessage, ReconnectPolicy};

fn mqtt(url: &str, id: &str) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(Mqtt::new(id))
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(50))
                .max_delay(Duration::from_millis(300)),
        )
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        })
}

fn text_of(e: &Event) -> Option<String> {
    match e {
        Event::Message(m) => m.body.as_text().map(str::to_owned),
        _ => None,
    }
}

#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_subscribe_receive_send_and_ack() {
    let broker = Mosquitto::start();
    let (sub, mut sub_events) = mqtt(&broker.url(), "im-sub").connect().unwrap();
    sub.subscribe("im/room").unwrap();
    until(&mut sub_events, "SUBACK", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    let (publ, mut pub_events) = mqtt(&broker.url(), "im-pub").connect().unwrap();
    let id = publ
        .send_json("im/room", &serde_json::json!({"text": "hello mqtt"}))
        .unwrap();
    until(&mut pub_events, "PUBACK", |e| *e == Event::Acked { id }).await;
    let got = until(&mut sub_events, "the message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.channel, "im/room");
    assert_eq!(
        m.body.decode::<serde_json::Value>().unwrap()["text"],
        "hello mqtt"
    );
    sub.close().await;
    publ.close().await;
}

#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_broker_reconnect_resubscribe_and_traffic_resumes() {
    let mut broker = Mosquitto::start();
    let (sub, mut events) = mqtt(&broker.url(), "im-sub2").connect().unwrap();
    sub.subscribe("im/resume").unwrap();
    resubscribed_after_restart(
        &mut events,
        &mut broker,
        Mosquitto::kill,
        Mosquitto::restart,
    )
    .await;
    let (publ, mut pub_events) = mqtt(&broker.url(), "im-pub2").connect().unwrap();
    let id = publ.send_text("im/resume", "after the restart").unwrap();
    until(&mut pub_events, "PUBACK", |e| *e == Event::Acked { id }).await;
    let got = until(&mut events, "the message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    assert_eq!(
        text_of(got.last().unwrap()).as_deref(),
        Some("after the restart")
    );
    sub.close().await;
    publ.close().await;
}

#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_message_unacked_at_the_kill_is_redelivered() {
    let mut broker = Mosquitto::start();
    let proxy = FaultProxy::start(([127, 0, 0, 1], broker.port()).into()).unwrap();
    let (publ, mut pub_events) = mqtt(&proxy.url(""), "im-pub3").connect().unwrap();
    until(&mut pub_events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    // The PUBLISH goes into a black hole: in flight, never acked.
    proxy.set_mode(Mode::Blackhole);
    let id = publ
        .send_text("im/redeliver", "in flight at the kill")
        .unwrap();
    broker.restart();
    // A subscriber on the new broker, before the publisher can come back.
    let (sub, mut sub_events) = mqtt(&broker.url(), "im-sub3").connect().unwrap();
    sub.subscribe("im/redeliver").unwrap();
    until(&mut sub_events, "SUBACK", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    proxy.reset_all();
    proxy.set_mode(Mode::Pass);
    until(&mut pub_events, "PUBACK of the redelivery", |e| {
        *e == Event::Acked { id }
    })
    .await;
    let got = until(&mut sub_events, "the redelivered message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    assert_eq!(
        text_of(got.last().unwrap()).as_deref(),
        Some("in flight at the kill")
    );
    sub.close().await;
    publ.close().await;
}

#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_link_is_detected_by_pingreq() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(([127, 0, 0, 1], broker.port()).into()).unwrap();
    let (client, mut events) = mqtt(&proxy.url(""), "im-ping").connect().unwrap();
    until(&mut events, "a PINGRESP", |e| {
        matches!(e, Event::Heartbeat { rtt: Some(_) })
    })
    .await;
    let detected = blackhole_until_dead_link(&proxy, &mut events).await;
    println!("MQTT half-open link detected after {detected:?} (bound: keepalive interval 1 s + timeout 1 s)");
    assert!(detected <= Duration::from_millis(2_500), "{detected:?}");
    proxy.set_mode(Mode::Pass);
    until(&mut events, "Connected again", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    client.close().await;
}

/// QoS per message: 0 ends `Sent` (no PUBACK to wait for), 1 ends `Acked` by the broker's
/// PUBACK; the retain flag makes the broker hand the message to a later subscriber.
#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_is_sent_qos_1_is_acked_and_retained_reaches_a_later_subscriber() {
    let broker = Mosquitto::start();
    let (publ, mut p) = mqtt(&broker.url(), "im-qos-pub").connect().unwrap();
    until(&mut p, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let qos0 = publ
        .send(
            OutgoingMessage::text("qos/zero", "fire and forget")
                .with_delivery(Delivery::AtMostOnce),
        )
        .unwrap();
    let qos1 = publ
        .send(OutgoingMessage::text("qos/one", "acked"))
        .unwrap();
    let retained = publ
        .send(OutgoingMessage::text("qos/retained", "for latecomers").retained())
        .unwrap();
    let seen = until(&mut p, "both acks", {
        let mut acked = 0;
        move |e| {
            acked +=
                usize::from(matches!(e, Event::Acked { id } if *id == qos1 || *id == retained));
            acked == 2
        }
    })
    .await;
    assert!(
        seen.contains(&Event::Sent { id: qos0 }),
        "QoS 0 ends Sent: {seen:?}"
    );
    assert!(!seen.contains(&Event::Acked { id: qos0 }));
    // Subscribed after the publish: only a retained message can reach it.
    let (late, mut l) = mqtt(&broker.url(), "im-qos-late").connect().unwrap();
    late.subscribe("qos/#").unwrap();
    let got = until(&mut l, "the retained message", |e| text_of(e).is_some()).await;
    assert_eq!(
        text_of(got.last().unwrap()).as_deref(),
        Some("for latecomers")
    );
    publ.close().await;
    late.close().await;
}

/// Publish `n` QoS 1 messages to `topic` from a client of its own, each acked by the broker.
async fn publish_acked(url: &str, topic: &str, texts: &[&str]) {
    let (publ, mut events) = mqtt(url, "im-persist-pub").connect().unwrap();
    let mut pending: Vec<_> = texts
        .iter()
        .map(|t| publ.send(OutgoingMessage::text(topic, *t)).unwrap())
        .collect();
    until(&mut events, "every PUBACK", |e| {
        if let Event::Acked { id } = e {
            pending.retain(|p| p != id);
        }
        pending.is_empty()
    })
    .await;
    publ.close().await;
}

/// Inbound resume: with a persistent session the broker queues what is published while the
/// subscriber is away and delivers it when it is back; with a clean session it is gone (the
/// same run, so the test can tell them apart).
#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_what_was_published_while_it_was_away() {
    let broker = Mosquitto::start();
    for persistent in [true, false] {
        let proxy = FaultProxy::start(([127, 0, 0, 1], broker.port()).into()).unwrap();
        let id = format!("im-persist-sub-{persistent}");
        let protocol = if persistent {
            Mqtt::new(id.as_str()).persistent_session()
        } else {
            Mqtt::new(id.as_str())
        };
        let (sub, mut events) = mqtt(&proxy.url(""), &id)
            .protocol(protocol)
            .connect_timeout(Duration::from_millis(300))
            .handshake_timeout(Duration::from_millis(300))
            .connect()
            .unwrap();
        let topic = format!("persist/{persistent}");
        sub.subscribe(&topic).unwrap();
        until(&mut events, "SUBACK", |e| {
            matches!(e, Event::Subscribed { .. })
        })
        .await;
        cut_off(&proxy, &mut events).await;
        publish_acked(
            &broker.url(),
            &topic,
            &["while away 1", "while away 2", "while away 3"],
        )
        .await;
        proxy.set_mode(Mode::Pass);
        // Everything from the reconnect on: queued messages come right after CONNACK.
        let mut seen = until(&mut events, "SUBACK again", |e| {
            matches!(e, Event::Subscribed { .. })
        })
        .await;
        assert!(seen.iter().any(|e| matches!(e, Event::Connected { .. })));
        // A sentinel after the reconnect: whatever was queued arrives before it.
        publish_acked(&broker.url(), &topic, &["back"]).await;
        seen.extend(
            until(&mut events, "the sentinel", |e| {
                text_of(e).as_deref() == Some("back")
            })
            .await,
        );
        let texts: Vec<String> = seen.iter().filter_map(text_of).collect();
        if persistent {
            assert_eq!(
                texts,
                ["while away 1", "while away 2", "while away 3", "back"]
            );
        } else {
            assert_eq!(texts, ["back"], "a clean session keeps nothing");
        }
        sub.close().await;
    }
}

/// A broker that lost the session (restarted without persistence) cannot close the gap: the
/// client says so.
#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_reported_as_a_gap() {
    let mut broker = Mosquitto::start();
    let (sub, mut events) = mqtt(&broker.url(), "im-gap")
        .protocol(Mqtt::new("im-gap").persistent_session())
        .connect()
        .unwrap();
    sub.subscribe("gap/room").unwrap();
    until(&mut events, "SUBACK", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    broker.kill();
    broker.restart();
    let seen = until(&mut events, "the gap", |e| {
        matches!(e, Event::Error(im_tokio::ReportedError::Gap { .. }))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Disconnected { .. })));
    sub.close().await;
}

/// Issue 20's failover line for MQTT: a broker with persistence restarts (SIGTERM, then started
/// again on the same port) while a publisher sends numbered QoS 1 messages to a subscriber with
/// a persistent session. What the broker held is written and queued again, the publisher sends
/// again what was not PUBACKed, and nothing is lost. MQTT 3.1.1 has no idempotency key: a
/// PUBLISH whose PUBACK was lost with the broker is published twice, so the application
/// dedupes by the number in the body, and the test counts the repeats it saw.
#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_broker_restart_loses_nothing() {
    const MESSAGES: u64 = 1000;
    let mut broker = Mosquitto::start_persistent();
    let (sub, mut events) = mqtt(&broker.url(), "im-failover-sub")
        .protocol(Mqtt::new("im-failover-sub").persistent_session())
        .connect()
        .unwrap();
    sub.subscribe("failover/ticks").unwrap();
    until(&mut events, "SUBACK", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    let (publ, pub_events) = mqtt(&broker.url(), "im-failover-pub")
        .ack_timeout(Duration::from_millis(500))
        .ack_retries(120)
        .connect()
        .unwrap();
    let fates = tokio::spawn(all_acked(pub_events, MESSAGES));
    let p = publ.clone();
    let pumping = tokio::spawn(async move {
        for n in 0..MESSAGES {
            p.send_text("failover/ticks", n.to_string()).unwrap();
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    });
    let number = |e: &Event| text_of(e).and_then(|t| t.parse::<u64>().ok());
    let mut received = Vec::new();
    until(&mut events, "200 messages", |e| {
        received.extend(number(e));
        received.len() >= 200
    })
    .await;
    let last_before = *received.last().unwrap();
    let restarted = std::time::Instant::now();
    broker.restart_gracefully();
    let (mut gap, mut resumed, mut gap_reported) = (None, None, false);
    let distinct = |r: &Vec<u64>| r.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while distinct(&received) < MESSAGES {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {MESSAGES} a minute after", distinct(&received)))
            .expect("the subscriber's events");
        if number(&event).is_none() {
            eprintln!(
                "subscriber, {:?} after the restart: {event:?}",
                restarted.elapsed()
            );
        }
        match &event {
            Event::Connected { recovered, .. } => resumed = Some(*recovered),
            Event::Error(im_tokio::ReportedError::Gap { .. }) => gap_reported = true,
            _ => {}
        }
        if let Some(n) = number(&event) {
            if n > last_before + 1 && gap.is_none() {
                gap = Some(restarted.elapsed());
            }
            received.push(n);
        }
    }
    pumping.await.unwrap();
    let acked = fates.await.unwrap();
    let duplicates = received.len() as u64 - distinct(&received);
    println!(
        "failover, MQTT (Mosquitto with persistence, restarted): published {acked}, received {}, \
         lost {}, duplicates seen {duplicates} (0 after the application's dedupe by number), gap \
         {} ms, session resumed {resumed:?}",
        distinct(&received),
        acked - distinct(&received),
        gap.unwrap_or_default().as_millis()
    );
    assert_eq!(resumed, Some(true));
    assert!(!gap_reported);
    assert_eq!(distinct(&received), MESSAGES);
    sub.close().await;
    publ.close().await;
}

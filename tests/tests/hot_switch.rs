//! Hot vendor switch on real servers: a client moves from livechat (the reference server) to
//! MQTT (a real Mosquitto) while messages are in flight and more are sent mid-switch. The event
//! stream and the subscription survive; every message reaches exactly one vendor, once, in order.

use std::time::Duration;

use im_tests::peers::Mosquitto;
use im_tests::wait::until;
use im_tests::LiveChatServer;
use im_tokio::{Cause, Client, Event, LiveChat, Mqtt, ReconnectPolicy};

#[cfg_attr(im_missing_mosquitto, ignore = "needs mosquitto, not installed here")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_from_livechat_to_mqtt_loses_and_duplicates_nothing() {
    let broker = Mosquitto::start();
    let livechat = LiveChatServer::start("k").unwrap();
    let room = "chat/room";

    // Someone already on the MQTT side, to see what arrives there.
    let (watcher, mut watched) = Client::builder()
        .endpoint(broker.url())
        .protocol(Mqtt::new("watcher"))
        .connect()
        .unwrap();
    watcher.subscribe(room).unwrap();
    until(&mut watched, "SUBACK", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;

    let (client, mut events) = Client::builder()
        .endpoint(livechat.url())
        .protocol(LiveChat::new(1, 1, "k"))
        .reconnect(ReconnectPolicy::default().initial(Duration::from_millis(50)))
        .connect()
        .unwrap();
    client.subscribe(room).unwrap();
    until(&mut events, "joined", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;

    let total = 40;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            client
                .send_json(room, &serde_json::json!({ "n": n }))
                .unwrap(),
        );
    }
    // Mid-stream: some of the first 20 are still in flight on livechat.
    client
        .switch_protocol(Mqtt::new("switcher"), vec![broker.url().into()])
        .unwrap();
    for n in 20..total {
        ids.push(
            client
                .send_json(room, &serde_json::json!({ "n": n }))
                .unwrap(),
        );
    }
    let seen = until(&mut events, "every ack", {
        let mut left = ids.clone();
        move |e| {
            if let Event::Acked { id } = e {
                left.retain(|x| x != id);
            }
            left.is_empty()
        }
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Disconnected {
            cause: Cause::Switched
        }
    )));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Subscribed { channel } if channel == room)),
        "resubscribed on the new vendor"
    );

    let on_livechat: Vec<i64> = livechat
        .delivered()
        .iter()
        .map(|d| d.message["n"].as_i64().unwrap())
        .collect();
    let mut on_mqtt = Vec::new();
    while on_livechat.len() + on_mqtt.len() < total as usize {
        let got = until(&mut watched, "the rest on MQTT", |e| {
            matches!(e, Event::Message(_))
        })
        .await;
        if let Some(Event::Message(m)) = got.last() {
            on_mqtt.push(
                m.body.decode::<serde_json::Value>().unwrap()["n"]
                    .as_i64()
                    .unwrap(),
            );
        }
    }
    println!(
        "hot switch: {} messages on livechat ({:?}…), {} on MQTT (…{:?}), {} sent",
        on_livechat.len(),
        on_livechat.first(),
        on_mqtt.len(),
        on_mqtt.last(),
        total
    );
    let mut all = on_livechat.clone();
    all.extend(&on_mqtt);
    assert_eq!(
        all,
        (0..total as i64).collect::<Vec<_>>(),
        "each message once, in order, none lost"
    );
    assert!(
        on_mqtt.len() >= 20,
        "the messages sent mid-switch went to MQTT"
    );
    client.close().await;
    watcher.close().await;
}

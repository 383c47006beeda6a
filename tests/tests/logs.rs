//! Two clients in one process, told apart in the log: each line a client writes carries its
//! span, `im_client{id=… name=… vendor=…}`, and the lines of a reconnect carry their fields.

use std::time::Duration;

use im_tests::logs::LogCapture;
use im_tests::wait::until;
use im_tests::LiveChatServer;
use im_tokio::{Client, Event, LiveChat, ReconnectPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_log_with_their_own_id_name_and_vendor() {
    let log = LogCapture::install(tracing::Level::INFO);

    let mut server = LiveChatServer::start("logs-key").unwrap();
    let policy = ReconnectPolicy::default()
        .initial(Duration::from_millis(50))
        .max_delay(Duration::from_millis(200));
    let mut clients = Vec::new();
    for (user, name) in [(1, "alice"), (2, "bob")] {
        let (client, mut events) = Client::builder()
            .endpoint(server.url())
            .protocol(LiveChat::new(1, user, "logs-key"))
            .reconnect(policy.clone())
            .name(name)
            .connect()
            .unwrap();
        until(&mut events, "Connected", |e| {
            matches!(e, Event::Connected { .. })
        })
        .await;
        clients.push((client, events, name));
    }
    server.restart().unwrap();
    for (_, events, _) in &mut clients {
        until(events, "Connected again", |e| {
            matches!(e, Event::Connected { .. })
        })
        .await;
    }
    for (client, _, _) in &clients {
        client.close().await;
    }

    let text = log.text();
    println!("{text}");
    let (alice, bob) = (clients[0].0.id(), clients[1].0.id());
    assert_ne!(alice, bob, "ids are unique");
    for (id, name) in [(alice, "alice"), (bob, "bob")] {
        let span = format!("im_client{{id={id} vendor=\"livechat\" name=\"{name}\"}}");
        let mine: Vec<&str> = text.lines().filter(|l| l.contains(&span)).collect();
        for what in ["connected", "disconnected", "reconnecting", "closed"] {
            assert!(
                mine.iter().any(|l| l.contains(what)),
                "{name}: no {what:?} line in its span {span}:\n{text}"
            );
        }
        let reconnecting = mine.iter().find(|l| l.contains("reconnecting")).unwrap();
        for field in ["attempt=", "delay_ms=", "cause="] {
            assert!(reconnecting.contains(field), "{reconnecting}");
        }
    }
    assert!(
        text.lines()
            .filter(|l| l.contains("reconnecting") || l.contains("connected"))
            .all(|l| l.contains("im_client{id=")),
        "every lifecycle line says which client: {text}"
    );
}

//! Socket.IO v4 against the real Node `socket.io` 4 server (tests/socketio), started by each
//! test on a free loopback port (skipped loudly when node or its npm dependencies are missing
//! on a developer machine; a failure under CI).

use std::time::Duration;

use im_tests::proxy::Mode;
use im_tests::wait::{blackhole_until_dead_link, resubscribed_after_restart, until, SOON};
use im_tests::{FaultProxy, SocketIoServer};
use im_tokio::{Client, CloseReason, Event, ReconnectPolicy, SocketIo};

const PING: Duration = Duration::from_millis(500);

fn sio(url: &str) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(
            // The project's test app: rooms through its `subscribe` event, acks on every event.
            SocketIo::new()
                .room_events("subscribe", "unsubscribe")
                .ack_emits(true),
        )
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(50))
                .max_delay(Duration::from_millis(300)),
        )
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_subscribe_receive_send_and_ack() {
    let server = SocketIoServer::start(PING, PING);
    let (alice, mut a) = sio(&server.url()).connect().unwrap();
    let (bob, mut b) = sio(&server.url()).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    bob.subscribe("lobby").unwrap();
    until(&mut a, "subscribe ack", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    until(&mut b, "subscribe ack", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    let id = alice
        .send_json("lobby", &serde_json::json!({"text": "hello socket.io"}))
        .unwrap();
    until(&mut a, "the server's ack", |e| *e == Event::Acked { id }).await;
    let got = until(&mut b, "the message", |e| matches!(e, Event::Message(_))).await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.channel, "lobby");
    assert_eq!(
        m.body.decode::<serde_json::Value>().unwrap()["text"],
        "hello socket.io"
    );
    // The server's pings are answered: the link outlives several ping intervals.
    let pings = until(&mut b, "three server pings", {
        let mut n = 0;
        move |e| {
            n += usize::from(matches!(e, Event::Heartbeat { rtt: None }));
            n >= 3
        }
    })
    .await;
    assert!(!pings
        .iter()
        .any(|e| matches!(e, Event::Disconnected { .. })));
    alice.close().await;
    bob.close().await;
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_reconnect_resubscribe_and_traffic_resumes() {
    let mut server = SocketIoServer::start(PING, PING);
    let (bob, mut b) = sio(&server.url()).connect().unwrap();
    bob.subscribe("news").unwrap();
    resubscribed_after_restart(
        &mut b,
        &mut server,
        SocketIoServer::kill,
        SocketIoServer::restart,
    )
    .await;
    let (alice, mut a) = sio(&server.url()).connect().unwrap();
    let id = alice.send_text("news", "after the restart").unwrap();
    until(&mut a, "ack", |e| *e == Event::Acked { id }).await;
    let got = until(&mut b, "the message", |e| matches!(e, Event::Message(_))).await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.body.decode::<String>().unwrap(), "after the restart");
    alice.close().await;
    bob.close().await;
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_link_is_detected_by_the_server_ping_rule() {
    let server = SocketIoServer::start(PING, PING);
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let url = proxy.url("/socket.io/?EIO=4&transport=websocket");
    let (client, mut events) = sio(&url).connect().unwrap();
    until(&mut events, "a server ping", |e| {
        matches!(e, Event::Heartbeat { rtt: None })
    })
    .await;
    let detected = blackhole_until_dead_link(&proxy, &mut events).await;
    println!("Socket.IO half-open link detected after {detected:?} (bound: pingInterval + pingTimeout = {:?})", PING * 2);
    assert!(
        detected <= PING * 2 + Duration::from_millis(500),
        "{detected:?}"
    );
    proxy.set_mode(Mode::Pass);
    until(&mut events, "Connected again", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    client.close().await;
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_disconnect_is_a_kick_and_never_reconnects() {
    let server = SocketIoServer::start(PING, PING);
    let (client, mut events) = sio(&server.url()).connect().unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    // The test server disconnects a socket that emits `kick` (packet 41).
    client.send_text("kick", "please").unwrap();
    let seen = until(&mut events, "Closed", |e| matches!(e, Event::Closed { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, Event::Kicked { .. })));
    assert!(matches!(
        client.state(),
        im_tokio::State::Closed(CloseReason::Kicked { .. })
    ));
    tokio::time::timeout(SOON, client.close())
        .await
        .expect("driver ended");
}

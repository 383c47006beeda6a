//! Socket.IO against a stock app: the tutorial's chat server (`tests/socketio/tutorial.js`: one
//! `chat message` event echoed to everyone, no acks, no rooms), reached by its `http://` URL as
//! a socket.io-client user would. Nothing on the server side knows about im.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use im_tests::wait::{until, SOON};
use im_tests::SocketIoServer;
use im_tokio::{
    Client, CloseReason, Delivery, Event, OutgoingMessage, ReconnectPolicy, SendId, SocketIo,
    Undelivered,
};

const CHAT: &str = "chat message";

fn policy() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .initial(Duration::from_millis(100))
        .max_delay(Duration::from_millis(500))
}

#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_emits_are_sent_once_and_echoed_by_the_tutorial_server() {
    let server = SocketIoServer::start_tutorial();
    let (client, mut events) = Client::builder()
        .endpoint(server.http_url())
        .protocol(SocketIo::new())
        .reconnect(policy())
        .connect()
        .unwrap();
    // Listening needs nothing from the server.
    client.subscribe(CHAT).unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let id = client.send_text(CHAT, "hello tutorial").unwrap();
    let seen = until(&mut events, "the echo", |e| matches!(e, Event::Message(_))).await;
    assert!(
        seen.contains(&Event::Sent { id }),
        "a plain emit ends Sent: {seen:?}"
    );
    let Some(Event::Message(m)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        (
            m.channel.as_str(),
            m.body.decode::<String>().unwrap().as_str()
        ),
        (CHAT, "hello tutorial")
    );
    client.close().await;
}

/// Acked emits are an opt-in the server must honour; the tutorial's handler takes no callback,
/// so no ack ever comes: each message is retried after the ack timeout, then handed back, and
/// the outbox is free again (a silent server cannot fill it).
#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_emits_to_a_server_that_never_acks_end_undelivered_after_their_retries() {
    let server = SocketIoServer::start_tutorial();
    let (client, mut events) = Client::builder()
        .endpoint(server.http_url())
        .protocol(SocketIo::new())
        .reconnect(policy())
        .ack_timeout(Duration::from_millis(200))
        .ack_retries(1)
        .connect()
        .unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let asked = OutgoingMessage::text(CHAT, "ack me").with_delivery(Delivery::AtLeastOnce);
    let id = client.send(asked).unwrap();
    let seen = until(&mut events, "Undelivered", |e| {
        matches!(e, Event::Undelivered { .. })
    })
    .await;
    let echoes = seen
        .iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .count();
    assert_eq!(echoes, 2, "sent once and retried once: {seen:?}");
    assert!(matches!(
        seen.last(),
        Some(Event::Undelivered { id: i, reason: Undelivered::AckTimeout, maybe_delivered: true, .. }) if *i == id
    ));
    client.close().await;
}

/// A namespace the server does not have is refused by the server (`44/ns,{…}`): fatal, as
/// socket.io-client reports `connect_error`, and the client does not loop.
#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_namespace_in_the_url_is_refused_by_the_server() {
    let server = SocketIoServer::start_tutorial();
    let (client, mut events) = Client::builder()
        .endpoint(format!("{}/admin", server.http_url()))
        .protocol(SocketIo::new())
        .reconnect(policy())
        .connect()
        .unwrap();
    let seen = until(&mut events, "Closed", |e| matches!(e, Event::Closed { .. })).await;
    let Some(Event::Closed {
        reason: CloseReason::Fatal(error),
    }) = seen.last()
    else {
        panic!("{seen:?}")
    };
    assert!(error.to_string().contains("Invalid namespace"), "{error}");
    client.close().await;
}

/// What the soak's reader saw.
#[derive(Default)]
struct Soak {
    fates: HashMap<SendId, Vec<&'static str>>,
    echoes: BTreeMap<u64, usize>,
    /// Connections after the first.
    connected: usize,
}

/// 10,000 plain emits at a steady pace while the tutorial server is killed and restarted five
/// times, with default limits: none refused, none duplicated, each with exactly one fate.
#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_10000_sends_across_5_restarts_of_the_tutorial_server() {
    const SENDS: u64 = 10_000;
    const RESTARTS: u64 = 5;
    let server = Arc::new(Mutex::new(SocketIoServer::start_tutorial()));
    let url = server.lock().unwrap().http_url();
    let (client, mut events) = Client::builder()
        .endpoint(url)
        .protocol(SocketIo::new())
        .reconnect(policy())
        .connect()
        .unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    let soak = Arc::new(Mutex::new(Soak::default()));
    let reader = tokio::spawn({
        let soak = soak.clone();
        async move {
            while let Some(event) = events.recv().await {
                let mut s = soak.lock().unwrap();
                match event {
                    Event::Sent { id } => s.fates.entry(id).or_default().push("sent"),
                    Event::Acked { id } => s.fates.entry(id).or_default().push("acked"),
                    Event::Undelivered { id, .. } => {
                        s.fates.entry(id).or_default().push("undelivered")
                    }
                    Event::Connected { .. } => s.connected += 1,
                    Event::Message(m) => {
                        let n: u64 = m.body.decode().expect("a number");
                        *s.echoes.entry(n).or_default() += 1;
                    }
                    Event::Closed { .. } => break,
                    _ => {}
                }
            }
        }
    });
    let mut refused = 0;
    let mut ids = Vec::new();
    for n in 0..SENDS {
        if n > 0 && n % (SENDS / (RESTARTS + 1)) == 0 && n / (SENDS / (RESTARTS + 1)) <= RESTARTS {
            // SIGKILL and start again on the same port, on a thread of its own: sends go on.
            let server = server.clone();
            std::thread::spawn(move || server.lock().unwrap().restart());
        }
        match client.send_json(CHAT, &n) {
            Ok(id) => ids.push(id),
            Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Every send has its fate; then one more message marks the end of the echoes.
    let deadline = tokio::time::Instant::now() + SOON * 3;
    while soak.lock().unwrap().fates.len() < ids.len() {
        assert!(tokio::time::Instant::now() < deadline, "fates missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.send_json(CHAT, &SENDS).unwrap();
    while !soak.lock().unwrap().echoes.contains_key(&SENDS) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the end marker never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.close().await;
    reader.await.unwrap();
    let s = soak.lock().unwrap();
    let count = |fate| {
        ids.iter()
            .filter(|id| s.fates.get(id).is_some_and(|f| f == &vec![fate]))
            .count()
    };
    let (sent, acked, undelivered) = (count("sent"), count("acked"), count("undelivered"));
    let once = ids
        .iter()
        .all(|id| s.fates.get(id).is_some_and(|f| f.len() == 1));
    let duplicates: usize = s.echoes.values().map(|n| n - 1).sum();
    let echoed = s.echoes.range(..SENDS).count();
    println!(
        "socket.io soak (tutorial server, {SENDS} sends, {RESTARTS} restarts, default limits): refused at send {refused}, duplicates {duplicates}, every send id ended exactly once: {once} (Sent {sent} / Acked {acked} / Undelivered {undelivered}); echoed back {echoed} (at-most-once: the rest were written to a server that was being killed); reconnected {} times",
        s.connected
    );
    assert_eq!(refused, 0);
    assert_eq!(duplicates, 0);
    assert!(once, "a send without exactly one fate");
    assert_eq!(sent + acked + undelivered, ids.len());
    assert!(
        s.connected >= RESTARTS as usize,
        "reconnected after each restart"
    );
}

/// A tutorial client: `SocketIo::new()` on `url`, listening to `chat message`, connected,
/// reconnecting quickly and giving up on a black-holed attempt soon.
async fn listener(url: &str) -> (Client, im_tokio::Events) {
    let (client, mut events) = Client::builder()
        .endpoint(url)
        .protocol(SocketIo::new())
        .reconnect(policy())
        .connect_timeout(Duration::from_millis(300))
        .handshake_timeout(Duration::from_millis(300))
        .connect()
        .unwrap();
    client.subscribe(CHAT).unwrap();
    until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    (client, events)
}

fn chat_text(e: &Event) -> Option<String> {
    match e {
        Event::Message(m) if m.channel == CHAT => m.body.decode::<String>().ok(),
        _ => None,
    }
}

/// Emit `texts` from a client of its own and wait until `events` (another client) has them.
async fn say(url: &str, texts: &[&str]) {
    let (client, mut events) = listener(url).await;
    for text in texts {
        client.send_text(CHAT, *text).unwrap();
    }
    let last = texts.last().unwrap().to_string();
    until(&mut events, "its own echo", |e| {
        chat_text(e).as_ref() == Some(&last)
    })
    .await;
    client.close().await;
}

/// Connection state recovery, as the tutorial's recovery step ships it: a client cut off for
/// a moment gets what was said meanwhile, once, in order, and `Connected { recovered: true }`;
/// after a server restart (sessions gone) the reconnect says it could not close the gap.
#[cfg_attr(
    any(im_missing_node, im_missing_npm),
    ignore = "needs node and npm (the Socket.IO server), not installed here"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_session_gets_what_it_missed_and_a_lost_one_says_so() {
    use im_tests::proxy::Mode;
    let mut server = SocketIoServer::start_tutorial_with_recovery();
    let proxy = im_tests::FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port());
    let (client, mut events) = listener(&via_proxy).await;
    // One event first: its offset is where a recovery starts from.
    say(&server.http_url(), &["before"]).await;
    until(&mut events, "before", |e| {
        chat_text(e).as_deref() == Some("before")
    })
    .await;
    im_tests::wait::cut_off(&proxy, &mut events).await;
    say(&server.http_url(), &["away 1", "away 2", "away 3"]).await;
    proxy.set_mode(Mode::Pass);
    let seen = until(&mut events, "the missed lines", |e| {
        chat_text(e).as_deref() == Some("away 3")
    })
    .await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Connected {
                recovered: true,
                ..
            }
        )),
        "recovered: {seen:#?}"
    );
    let texts: Vec<String> = seen.iter().filter_map(chat_text).collect();
    assert_eq!(
        texts,
        ["away 1", "away 2", "away 3"],
        "once each, in order, offsets taken off"
    );
    // The server restarts: every session it kept is gone.
    server.kill();
    server.restart();
    let seen = until(&mut events, "the gap", |e| {
        matches!(e, Event::Error(im_tokio::ReportedError::Gap { .. }))
    })
    .await;
    assert!(!seen.iter().any(|e| matches!(
        e,
        Event::Connected {
            recovered: true,
            ..
        }
    )));
    let seen = until(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert!(seen.iter().all(|e| !matches!(
        e,
        Event::Connected {
            recovered: true,
            ..
        }
    )));
    client.close().await;
}

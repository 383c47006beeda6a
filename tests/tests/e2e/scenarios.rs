//! The end-to-end scenarios, written once, generic over the client's runtime: the client
//! against the reference livechat server on real loopback sockets, through the fault proxy
//! where a scenario needs a broken network. Every wait is for an event, with a deadline that
//! fails the test; no scenario sleeps to synchronise.

use std::time::Duration;

use im_driver::{Client, ClientBuilder, Events, Runtime, SendJsonError};
use im_proto::{
    Cause, CloseReason, Event, HeartbeatMode, LiveChat, ProtocolError, ReconnectPolicy, SendError,
    State,
};
use im_tests::peers::free_port;
use im_tests::proxy::Mode;
use im_tests::wait::{blackhole_until_dead_link, cut_off, eventually, until, within};
use im_tests::{FaultProxy, LiveChatServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "e2e-key";
const ROOM: u64 = 7;

pub fn fast_policy() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .initial(Duration::from_millis(50))
        .multiplier(1.5)
        .max_delay(Duration::from_millis(300))
        .jitter(0.5)
        .stable_after(Duration::from_secs(1))
        .max_attempts(None)
}

fn client<R: Runtime + Default>(url: &str, user: u64) -> ClientBuilder<R> {
    Client::<R>::builder()
        .endpoint(url)
        .protocol(LiveChat::new(ROOM, user, KEY))
        .reconnect(fast_policy())
        .connect_timeout(Duration::from_secs(2))
        .handshake_timeout(Duration::from_secs(2))
}

pub async fn connected(events: &mut Events) {
    until(events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
}

async fn subscribed(events: &mut Events, channel: &str) {
    until(
        events,
        "Subscribed",
        |e| matches!(e, Event::Subscribed { channel: c } if c == channel),
    )
    .await;
}

pub async fn connect_auth_and_message<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut alice_events) = client::<R>(&server.url(), 1).connect().unwrap();
    let (bob, mut bob_events) = client::<R>(&server.url(), 2).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    bob.subscribe("lobby").unwrap();
    subscribed(&mut alice_events, "lobby").await;
    subscribed(&mut bob_events, "lobby").await;

    let id = alice
        .send_json("lobby", &json!({"text": "hello bob"}))
        .unwrap();
    until(&mut alice_events, "Acked", |e| *e == Event::Acked { id }).await;
    let got = until(&mut bob_events, "Message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.channel, "lobby");
    assert_eq!(m.from.as_deref(), Some("1"));
    assert_eq!(
        m.body.decode::<serde_json::Value>().unwrap(),
        json!({"text": "hello bob"})
    );
    alice.close().await;
    bob.close().await;
}

pub async fn server_close_reconnects_with_backoff_resubscribes_and_delivers_queued_in_order<
    R: Runtime + Default,
>() {
    let mut server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    subscribed(&mut events, "lobby").await;

    server.stop();
    until(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    // Queued while the server is down.
    let ids: Vec<_> = (0..5)
        .map(|i| alice.send_json("lobby", &json!({"n": i})).unwrap())
        .collect();
    // Let at least two attempts fail against the stopped server, then bring it back.
    let seen = until(&mut events, "a second Reconnecting", {
        let mut n = 0;
        move |e| {
            n += usize::from(matches!(e, Event::Reconnecting { .. }));
            n >= 2
        }
    })
    .await;
    for e in &seen {
        if let Event::Reconnecting { delay, .. } = e {
            assert!(*delay <= fast_policy().max_delay && *delay >= Duration::from_millis(1));
        }
    }
    server.resume().unwrap();
    let seen = until(&mut events, "all five Acked", {
        let mut pending = ids.clone();
        move |e| {
            if let Event::Acked { id } = e {
                pending.retain(|p| p != id);
            }
            pending.is_empty()
        }
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Subscribed { channel } if channel == "lobby")),
        "resubscribed after reconnect"
    );
    let delivered: Vec<i64> = server
        .delivered()
        .iter()
        .map(|d| d.message["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        delivered,
        vec![0, 1, 2, 3, 4],
        "queued sends delivered once, in order"
    );
    alice.close().await;
}

pub async fn half_open_link_is_detected_within_interval_plus_timeout<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    half_open_is_detected(&server, "", |url| client::<R>(url, 1)).await;
}

/// Connect with a client-driven heartbeat and wait for one answered heartbeat, so the link is
/// known good right before a fault.
pub async fn heartbeating<R: Runtime + Default>(
    builder: ClientBuilder<R>,
    interval: Duration,
    timeout: Duration,
) -> (Client<R>, Events) {
    let (client, mut events) = builder
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .connect()
        .unwrap();
    connected(&mut events).await;
    until(&mut events, "an answered heartbeat", |e| {
        matches!(e, Event::Heartbeat { rtt: Some(_) })
    })
    .await;
    (client, events)
}

/// H2 on a half-open link: through the fault proxy turned black hole, the client declares the
/// link dead within interval + timeout (+ scheduling slack), and reconnects once the proxy
/// heals. On any server dialect, through `login`; `what` prefixes the printed figure.
pub async fn half_open_is_detected<R: Runtime + Default>(
    server: &LiveChatServer,
    what: &str,
    login: impl Fn(&str) -> ClientBuilder<R>,
) {
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let interval = Duration::from_millis(500);
    let timeout = Duration::from_millis(500);
    let (alice, mut events) = heartbeating(login(&proxy.url("/ws")), interval, timeout).await;
    let detected = blackhole_until_dead_link(&proxy, &mut events).await;
    let bound = interval + timeout;
    let slack = Duration::from_millis(500);
    println!("{what}half-open link detected after {detected:?} (bound: interval + timeout = {bound:?}, + {slack:?} scheduling slack)");
    assert!(detected <= bound + slack, "detected after {detected:?}");
    proxy.set_mode(Mode::Pass);
    connected(&mut events).await;
    // A seed-dialect client is ready once auth2 is written: the server counts the login when it
    // has read it.
    eventually("a second login through the healed proxy", || {
        server.logins() == 2
    })
    .await;
    alice.close().await;
}

pub async fn kicked_client_never_reconnects<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    second_login_kicks_the_first(&server, |url| client::<R>(url, 1)).await;
}

/// The same user logs in twice: the first session is kicked (`conn_close`), closes for good and
/// never reconnects. On any server dialect, through `login` (a builder for that user).
pub async fn second_login_kicks_the_first<R: Runtime + Default>(
    server: &LiveChatServer,
    login: impl Fn(&str) -> ClientBuilder<R>,
) {
    let (first, mut first_events) = login(&server.url()).connect().unwrap();
    connected(&mut first_events).await;
    // The same user logs in elsewhere.
    let (second, mut second_events) = login(&server.url()).connect().unwrap();
    connected(&mut second_events).await;
    let seen = until(&mut first_events, "Closed", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Kicked { .. })));
    assert!(matches!(
        first.state(),
        State::Closed(CloseReason::Kicked { .. })
    ));
    // The driver task is gone: nothing is left that could reconnect.
    within(first.close()).await;
    assert!(first.is_finished());
    assert_eq!(server.accepted(), 2, "exactly the two logins, no reconnect");
    assert_eq!(server.online(), 1);
    second.close().await;
}

/// Counts of the events the soak cares about, read from the one event stream.
#[derive(Default)]
struct Tally {
    acked: usize,
    connected: usize,
    causes: Vec<Cause>,
}

impl Tally {
    async fn until(&mut self, events: &mut Events, what: &str, done: impl Fn(&Tally) -> bool) {
        while !done(self) {
            let event = until(events, what, |_| true).await.pop().unwrap();
            match event {
                Event::Acked { .. } => self.acked += 1,
                Event::Connected { .. } => self.connected += 1,
                Event::Disconnected { cause } => self.causes.push(cause),
                Event::Undelivered { .. } | Event::Closed { .. } => panic!("soak lost {event:?}"),
                _ => {}
            }
        }
    }
}

pub async fn first_connect_refused_is_retried<R: Runtime + Default>() {
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (alice, mut events) = client::<R>(&url, 1).connect().unwrap();
    until(&mut events, "two Reconnecting", {
        let mut n = 0;
        move |e| {
            n += usize::from(matches!(e, Event::Reconnecting { .. }));
            n >= 2
        }
    })
    .await;
    let server = LiveChatServer::start_on(port, KEY).unwrap();
    connected(&mut events).await;
    assert_eq!(server.logins(), 1);
    alice.close().await;
}

pub async fn max_attempts_gives_up<R: Runtime + Default>() {
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (alice, mut events) = client::<R>(&url, 1)
        .reconnect(fast_policy().max_attempts(Some(3)))
        .connect()
        .unwrap();
    let queued = alice.send_text("lobby", "never sent").unwrap();
    let seen = until(&mut events, "Closed", |e| matches!(e, Event::Closed { .. })).await;
    assert!(seen.contains(&Event::GaveUp { attempts: 3 }));
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::Undelivered { id, .. } if *id == queued)));
    assert_eq!(
        seen.last(),
        Some(&Event::Closed {
            reason: CloseReason::GaveUp { attempts: 3 }
        })
    );
    within(alice.close()).await;
    assert!(matches!(
        alice.send_text("lobby", "late"),
        Err(SendError::Closed)
    ));
}

pub async fn hostile_frames_are_errors_and_the_connection_survives<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    subscribed(&mut events, "lobby").await;

    server.send_raw(Message::Text("{garbage".into()));
    server.send_raw(Message::Binary(vec![0xde, 0xad].into()));
    server.send_raw(Message::Text(json!({"cmd": "nope"}).to_string().into()));
    server.send_raw(Message::Text(
        format!("{{\"cmd\":\"{}\"}}", "x".repeat(2 << 20)).into(),
    ));
    server.send_raw(Message::Text(
        format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)).into(),
    ));
    server.broadcast("lobby", json!({"text": "still here"}));

    let seen = until(&mut events, "the valid message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    let errors = seen.iter().filter(|e| matches!(e, Event::Error(_))).count();
    assert_eq!(errors, 5, "one error per hostile frame: {seen:#?}");
    assert_eq!(alice.state(), State::Ready);
    assert_eq!(server.accepted(), 1, "the connection survived");

    // Invalid UTF-8 in a text frame is the one case RFC 6455 (section 8.1) says must fail the
    // connection: reported as a typed error, then a reconnect, and traffic goes on.
    server.send_invalid_utf8();
    let seen = until(&mut events, "Connected again", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert!(
        seen.contains(&Event::Error(im_proto::ReportedError::Protocol(
            ProtocolError::InvalidUtf8
        )))
    );
    subscribed(&mut events, "lobby").await;
    server.broadcast("lobby", json!({"text": "after"}));
    until(&mut events, "a message after reconnecting", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    alice.close().await;
}

pub async fn close_ends_the_driver_and_nothing_reconnects<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    connected(&mut events).await;
    alice.close().await;
    assert!(alice.is_finished());
    ends_closed_by_user(&mut events).await;
    assert!(matches!(alice.state(), State::Closed(CloseReason::User)));
    assert_eq!(server.accepted(), 1);
}

/// Clones share one connection: dropping one leaves the client working, dropping the last one
/// closes it as `close` would.
pub async fn dropping_the_last_handle_closes_the_client<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    connected(&mut events).await;
    let twin = alice.clone();
    drop(alice);
    let id = twin.send_json("lobby", &json!({ "n": 1 })).unwrap();
    let seen = until(&mut events, "Acked", |e| *e == Event::Acked { id }).await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Closed { .. })),
        "closed while a handle was left: {seen:?}"
    );
    drop(twin);
    ends_closed_by_user(&mut events).await;
}

/// Read to the end: the last event is `Closed` by the user, and the stream ends after it.
async fn ends_closed_by_user(events: &mut Events) {
    let rest = until(events, "Closed", |e| matches!(e, Event::Closed { .. })).await;
    assert_eq!(
        rest.last(),
        Some(&Event::Closed {
            reason: CloseReason::User
        })
    );
    assert!(
        events.recv().await.is_none(),
        "the stream ends after Closed"
    );
}

pub async fn soak_2000_sends_across_10_restarts_arrive_exactly_once_in_order<
    R: Runtime + Default,
>() {
    let mut server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    let total = 2_000;
    let mut tally = Tally::default();
    let mut restarts = 0;
    for n in 0..total {
        loop {
            match alice.send_json("soak", &json!({ "n": n })) {
                Ok(_) => break,
                // Backpressure: wait for acks to make room, never drop.
                Err(SendJsonError::Send(SendError::OutboxFull { .. })) => {
                    let acked = tally.acked;
                    tally
                        .until(&mut events, "an ack", |t| t.acked > acked)
                        .await;
                }
                Err(e) => panic!("send failed: {e}"),
            }
        }
        // A restart every 200 sends; the next 50 go out while the client may still be
        // reconnecting, then the client must have logged in again before the next restart.
        if n % 200 == 199 && restarts < 10 {
            server.restart().unwrap();
            restarts += 1;
        }
        if n % 200 == 49 {
            let want = restarts + 1;
            tally
                .until(&mut events, "the reconnect", |t| t.connected >= want)
                .await;
        }
    }
    tally
        .until(&mut events, "every ack", |t| t.acked == total)
        .await;
    let delivered = server.delivered();
    let received: Vec<i64> = delivered
        .iter()
        .map(|d| d.message["n"].as_i64().unwrap())
        .collect();
    let duplicates = received.len() - {
        let mut u = received.clone();
        u.dedup();
        u.len()
    };
    println!(
        "soak: sent {total}, acked {}, server received {} (each once after dedupe), \
         duplicates seen by the handler {duplicates}, retransmissions deduplicated by the server {}, \
         restarts {restarts}, logins {}, disconnect causes {:?}",
        tally.acked,
        received.len(),
        server.duplicates(),
        server.logins(),
        tally.causes
    );
    assert_eq!(restarts, 10);
    assert_eq!(
        received,
        (0..total as i64).collect::<Vec<_>>(),
        "each once, in order"
    );
    assert_eq!(duplicates, 0);
    // Logins are reported, not asserted: a restart that meets a client still reconnecting from
    // another loss costs no login. The causes are printed to show every reconnect's reason.
    alice.close().await;
}

pub async fn unanswered_heartbeats_are_a_dead_link_and_the_client_reconnects<
    R: Runtime + Default,
>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1)
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
        })
        .connect()
        .unwrap();
    connected(&mut events).await;
    server.set_answer_heartbeats(false);
    until(&mut events, "dead link", |e| {
        matches!(
            e,
            Event::Disconnected {
                cause: Cause::DeadLink
            }
        )
    })
    .await;
    server.set_answer_heartbeats(true);
    connected(&mut events).await;
    until(&mut events, "an answered heartbeat", |e| {
        matches!(e, Event::Heartbeat { rtt: Some(_) })
    })
    .await;
    alice.close().await;
}

pub async fn hung_websocket_handshake_times_out_and_is_retried<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    server.set_hang_handshake(true);
    let (alice, mut events) = client::<R>(&server.url(), 1)
        .connect_timeout(Duration::from_millis(400))
        .connect()
        .unwrap();
    let seen = until(&mut events, "Reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Connected { .. })));
    server.set_hang_handshake(false);
    connected(&mut events).await;
    assert!(server.accepted() >= 2);
    alice.close().await;
}

pub async fn reset_connection_is_reestablished<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let (alice, mut events) = client::<R>(&proxy.url("/ws"), 1).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    subscribed(&mut events, "lobby").await;
    proxy.reset_all();
    let seen = until(&mut events, "resubscribed", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Disconnected {
            cause: Cause::Transport(_) | Cause::ClosedByPeer { .. }
        }
    )));
    assert_eq!(server.logins(), 2);
    alice.close().await;
}

pub async fn round_trip_time_reflects_link_delay<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let (alice, mut events) = client::<R>(&proxy.url("/ws"), 1)
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
        })
        .connect()
        .unwrap();
    connected(&mut events).await;
    proxy.set_mode(Mode::Delay(Duration::from_millis(100)));
    // The first heartbeat after the change may have crossed before it; the next ones cannot.
    let mut rtts = Vec::new();
    until(&mut events, "three heartbeats", |e| {
        if let Event::Heartbeat { rtt: Some(rtt) } = e {
            rtts.push(*rtt);
        }
        rtts.len() >= 3
    })
    .await;
    // Delay on both legs: at least 200 ms per round trip.
    assert!(
        rtts[1..].iter().all(|r| *r >= Duration::from_millis(200)),
        "{rtts:?}"
    );
    alice.close().await;
}

/// The driver task reads the socket whenever no reader waits in `recv`: a reader that gave up
/// waiting (its `recv` dropped by a timeout) and then stays away for ten dead-link bounds does
/// not stall the link — heartbeat replies are still read, so no dead link is declared — and
/// what arrived meanwhile is all there, in order, read afterwards as a `Stream`.
pub async fn an_absent_reader_does_not_stall_the_link<R: Runtime + Default>() {
    use futures_util::StreamExt;

    let server = LiveChatServer::start(KEY).unwrap();
    let interval = Duration::from_millis(100);
    let (alice, mut events) = client::<R>(&server.url(), 1)
        .heartbeat(HeartbeatMode::ClientDriven {
            interval,
            timeout: interval,
        })
        .connect()
        .unwrap();
    alice.subscribe("lobby").unwrap();
    subscribed(&mut events, "lobby").await;

    // Park in `recv` with nothing to read, then give up waiting: the future is dropped.
    let parked = futures_util::future::select(
        Box::pin(events.recv()),
        async_io::Timer::after(Duration::from_millis(50)),
    )
    .await;
    assert!(
        matches!(parked, futures_util::future::Either::Right(_)),
        "nothing was due"
    );
    drop(parked);
    for n in 0..3 {
        server.broadcast("lobby", json!({ "n": n }));
    }
    // The reader stays away for ten heartbeat periods (interval + timeout is the dead-link
    // bound): this sleep is the scenario, not a synchronisation.
    async_io::Timer::after(interval * 10).await;
    assert_eq!(alice.state(), State::Ready);
    assert_eq!(server.accepted(), 1, "the link was never declared dead");

    let n_of = |e: &Event| match e {
        Event::Message(m) => m.body.decode::<serde_json::Value>().ok()?["n"].as_i64(),
        _ => None,
    };
    let mut seen = Vec::new();
    while seen.last().and_then(n_of) != Some(2) {
        let next = within(events.next()).await;
        seen.push(next.expect("the stream goes on"));
    }
    let ns: Vec<i64> = seen.iter().filter_map(n_of).collect();
    assert_eq!(ns, [0, 1, 2], "each message once, in order: {seen:#?}");
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Disconnected { .. })),
        "no disconnect while the reader was away: {seen:#?}"
    );
    alice.close().await;
}

/// What a chat event said, when it said a JSON string.
fn said(e: &Event) -> Option<String> {
    match e {
        Event::Message(m) => m.body.decode::<String>().ok(),
        _ => None,
    }
}

/// Bob says each of `lines` in the lobby; returns once the server acked them all.
async fn say_acked(bob: &Client<impl Runtime>, events: &mut Events, lines: &[&str]) {
    let mut ids: Vec<_> = lines
        .iter()
        .map(|line| bob.send_json("lobby", line).unwrap())
        .collect();
    until(events, "every ack", |e| {
        if let Event::Acked { id } = e {
            ids.retain(|i| i != id);
        }
        ids.is_empty()
    })
    .await;
}

/// im's resume point: a client cut off while a room goes on rejoins with the last message it
/// saw and gets exactly what it missed, in order, once; when the server no longer keeps all
/// of it (a resume window of 2), the client reports the gap and gets what is left.
pub async fn a_rejoin_resumes_from_the_last_message_seen_and_a_gap_is_reported<
    R: Runtime + Default,
>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let (alice, mut alice_events) = client::<R>(&proxy.url("/ws"), 1).connect().unwrap();
    let (bob, mut bob_events) = client::<R>(&server.url(), 2).connect().unwrap();
    alice.subscribe("lobby").unwrap();
    bob.subscribe("lobby").unwrap();
    subscribed(&mut alice_events, "lobby").await;
    subscribed(&mut bob_events, "lobby").await;
    say_acked(&bob, &mut bob_events, &["before"]).await;
    until(&mut alice_events, "the first line", |e| {
        said(e).as_deref() == Some("before")
    })
    .await;

    cut_off(&proxy, &mut alice_events).await;
    say_acked(&bob, &mut bob_events, &["away 1", "away 2", "away 3"]).await;
    proxy.set_mode(Mode::Pass);
    let mut seen = until(&mut alice_events, "the lobby rejoined", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    say_acked(&bob, &mut bob_events, &["back"]).await;
    seen.extend(
        until(&mut alice_events, "the line after", |e| {
            said(e).as_deref() == Some("back")
        })
        .await,
    );
    let lines: Vec<String> = seen.iter().filter_map(said).collect();
    assert_eq!(lines, ["away 1", "away 2", "away 3", "back"]);
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Error(im_proto::ReportedError::Gap { .. }))),
        "{seen:#?}"
    );

    // Away for 5 messages where the server keeps 2.
    server.set_resume_window(2);
    cut_off(&proxy, &mut alice_events).await;
    say_acked(
        &bob,
        &mut bob_events,
        &["lost 1", "lost 2", "lost 3", "kept 1", "kept 2"],
    )
    .await;
    proxy.set_mode(Mode::Pass);
    let seen = until(&mut alice_events, "what is left", |e| {
        said(e).as_deref() == Some("kept 2")
    })
    .await;
    let gap = seen
        .iter()
        .position(|e| matches!(e, Event::Error(im_proto::ReportedError::Gap { .. })))
        .expect("the gap reported");
    let lines: Vec<String> = seen[gap..].iter().filter_map(said).collect();
    assert_eq!(
        lines,
        ["kept 1", "kept 2"],
        "the gap first, then what is left"
    );
    alice.close().await;
    bob.close().await;
}

/// `event_capacity` at its extremes: 1 (the socket is read one event at a time) and
/// `usize::MAX` (kept as `u32::MAX`, never a limit in practice). Each client still hears the
/// other, in order, and closes cleanly.
pub async fn event_capacity_at_its_extremes_delivers_everything<R: Runtime + Default>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (one, mut one_events) = client::<R>(&server.url(), 1)
        .event_capacity(1)
        .connect()
        .unwrap();
    let (most, mut most_events) = client::<R>(&server.url(), 2)
        .event_capacity(usize::MAX)
        .connect()
        .unwrap();
    for (c, events) in [(&one, &mut one_events), (&most, &mut most_events)] {
        c.subscribe("lobby").unwrap();
        subscribed(events, "lobby").await;
    }
    for (from, to, events) in [(&one, 2, &mut most_events), (&most, 1, &mut one_events)] {
        for n in 0..20 {
            from.send_json("lobby", &json!({"n": n, "to": to})).unwrap();
        }
        let mut heard = Vec::new();
        until(events, "twenty messages", |e| {
            if let Event::Message(m) = e {
                let v: serde_json::Value = m.body.decode().unwrap();
                if v["to"] == to {
                    heard.push(v["n"].as_u64().unwrap());
                }
            }
            heard.len() == 20
        })
        .await;
        assert_eq!(heard, (0..20).collect::<Vec<u64>>());
    }
    one.close().await;
    most.close().await;
    ends_closed_by_user(&mut one_events).await;
    ends_closed_by_user(&mut most_events).await;
}

/// Q7 through a driver: a sender that reads no events while it sends thousands of messages
/// meets a full outbox (`OutboxFull`, which it can wait out), never a closed client. Once it
/// reads, every accepted message has its fate, in order, and the client goes on.
pub async fn a_sender_that_reads_no_events_meets_a_full_outbox_not_a_closed_client<
    R: Runtime + Default,
>() {
    let server = LiveChatServer::start(KEY).unwrap();
    let (c, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    connected(&mut events).await;
    let at_most_once = |n: u64| {
        im_proto::OutgoingMessage::json("lobby", &json!({ "n": n }))
            .unwrap()
            .with_delivery(im_proto::Delivery::AtMostOnce)
    };
    let mut accepted = Vec::new();
    let refused = loop {
        match c.send(at_most_once(accepted.len() as u64)) {
            Ok(id) => accepted.push(id),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100_000, "the outbox never filled");
        // Room for the driver to write what was sent (and, before Q7, to queue its fates).
        if accepted.len() % 50 == 0 {
            async_io::Timer::after(Duration::from_millis(1)).await;
        }
    };
    assert!(
        matches!(refused, SendError::OutboxFull { .. }),
        "after {} sends: {refused:?}",
        accepted.len()
    );
    let mut fates = Vec::new();
    let seen = until(&mut events, "every accepted message's fate", |e| {
        if let Event::Sent { id } = e {
            fates.push(*id);
        }
        matches!(e, Event::Closed { .. }) || fates.len() == accepted.len()
    })
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Closed { .. })),
        "closed: {:?}",
        seen.last()
    );
    assert_eq!(fates, accepted, "each accepted message Sent once, in order");
    let last = c.send(at_most_once(u64::MAX)).unwrap();
    until(&mut events, "the next message's fate", |e| {
        *e == Event::Sent { id: last }
    })
    .await;
    c.close().await;
    ends_closed_by_user(&mut events).await;
}

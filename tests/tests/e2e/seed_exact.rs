//! The scenarios that apply to a server speaking exactly the seed's livechat protocol (no
//! `auth_ok`, no rooms, no acks, no reconnect hints): the client must be ready once it has
//! answered the challenge, keep the link alive and notice when it dies within interval +
//! timeout, deliver what was queued offline once and in order, stop on a kick, back off from a
//! flapping server and give up where told to. Generic over the runtime, like `scenarios.rs`.

use std::time::Duration;

use im_driver::{Client, ClientBuilder, Events, Runtime};
use im_proto::{Cause, Event, LiveChat};
use im_tests::wait::{eventually, until, within};
use im_tests::LiveChatServer;

use super::scenarios::{
    connected, fast_policy, half_open_is_detected, heartbeating, second_login_kicks_the_first,
};
use serde_json::json;

const KEY: &str = "seed-key";
const ROOM: u64 = 3;
/// The home room every client of these scenarios is in (`auth2`'s `room_id`).
const HOME: &str = "livechat_3";

fn client<R: Runtime + Default>(url: &str, user: u64) -> ClientBuilder<R> {
    Client::<R>::builder()
        .endpoint(url)
        .protocol(LiveChat::new(ROOM, user, KEY))
        .reconnect(fast_policy())
        .connect_timeout(Duration::from_secs(2))
        .handshake_timeout(Duration::from_secs(2))
}

/// Wait until every id in `ids` ended `Sent`; any other fate fails the test.
async fn all_sent(events: &mut Events, ids: &[im_proto::SendId]) {
    let mut pending = ids.to_vec();
    until(events, "every send Sent", move |e| {
        match e {
            Event::Sent { id } => pending.retain(|p| p != id),
            Event::Acked { id } | Event::Undelivered { id, .. } => {
                panic!("{id} ended {e:?} on a server that never acks")
            }
            _ => {}
        }
        pending.is_empty()
    })
    .await;
}

pub async fn seed_exact_ready_after_auth2_chats_at_most_once<R: Runtime + Default>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    let (alice, mut alice_events) = client::<R>(&server.url(), 1).connect().unwrap();
    let (bob, mut bob_events) = client::<R>(&server.url(), 2).connect().unwrap();
    connected(&mut alice_events).await;
    connected(&mut bob_events).await;
    // Nothing confirms a seed login: wait until the server has read both auth2 frames, or the
    // chat may reach it before bob is in the room (at-most-once, as the seed is).
    eventually("both logged in", || server.online() == 2).await;
    let id = alice
        .send_json(HOME, &json!({"text": "hello bob"}))
        .unwrap();
    all_sent(&mut alice_events, &[id]).await;
    let got = until(&mut bob_events, "Message", |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.channel, HOME, "a frame without a room is the home room's");
    assert_eq!(m.from.as_deref(), Some("1"));
    assert_eq!(
        m.body.decode::<serde_json::Value>().unwrap(),
        json!({"text": "hello bob"})
    );
    alice.close().await;
    bob.close().await;
}

pub async fn seed_exact_offline_queue_goes_out_once_in_order_after_reconnect<
    R: Runtime + Default,
>() {
    let mut server = LiveChatServer::start_seed_exact(KEY).unwrap();
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    connected(&mut events).await;
    server.stop();
    until(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    let ids: Vec<_> = (0..5)
        .map(|i| alice.send_json(HOME, &json!({"n": i})).unwrap())
        .collect();
    until(&mut events, "Reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    server.resume().unwrap();
    connected(&mut events).await;
    all_sent(&mut events, &ids).await;
    // `Sent` means written; the server reads them a moment later.
    eventually("the server has the five", || server.delivered().len() >= 5).await;
    let delivered: Vec<i64> = server
        .delivered()
        .iter()
        .map(|d| d.message["n"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, vec![0, 1, 2, 3, 4], "once each, in order");
    assert_eq!(server.duplicates(), 0);
    alice.close().await;
}

pub async fn seed_exact_half_open_link_is_detected_within_interval_plus_timeout<
    R: Runtime + Default,
>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    half_open_is_detected(&server, "seed-exact: ", |url| client::<R>(url, 1)).await;
}

pub async fn seed_exact_silent_server_is_a_dead_link_and_the_client_reconnects<
    R: Runtime + Default,
>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    let (interval, timeout) = (Duration::from_millis(300), Duration::from_millis(300));
    let (alice, mut events) = heartbeating(client::<R>(&server.url(), 1), interval, timeout).await;
    server.set_answer_heartbeats(false);
    let silent_from = std::time::Instant::now();
    until(&mut events, "dead link", |e| {
        matches!(
            e,
            Event::Disconnected {
                cause: Cause::DeadLink
            }
        )
    })
    .await;
    let detected = silent_from.elapsed();
    println!(
        "seed-exact: silent server detected after {detected:?} (bound {:?})",
        interval + timeout
    );
    assert!(detected <= interval + timeout + Duration::from_millis(500));
    server.set_answer_heartbeats(true);
    connected(&mut events).await;
    alice.close().await;
}

pub async fn seed_exact_kick_never_reconnects<R: Runtime + Default>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    second_login_kicks_the_first(&server, |url| client::<R>(url, 1)).await;
}

/// A server that logs the client in and drops it at once: every drop before `stable_after`
/// is a failed attempt (R2), so the attempt count and the waits grow instead of restarting.
pub async fn seed_exact_flapping_server_backs_off<R: Runtime + Default>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    server.set_close_after_login(true);
    let (alice, mut events) = client::<R>(&server.url(), 1).connect().unwrap();
    let mut attempts = Vec::new();
    until(&mut events, "five Reconnecting", |e| {
        if let Event::Reconnecting { attempt, .. } = e {
            attempts.push(*attempt);
        }
        attempts.len() >= 5
    })
    .await;
    assert!(
        server.logins() >= 4,
        "each attempt logged in ({})",
        server.logins()
    );
    let seen: Vec<u32> = attempts.clone();
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "R2: the attempt count never restarts while the server flaps: {seen:?}"
    );
    alice.close().await;
}

pub async fn seed_exact_flapping_server_with_max_attempts_gives_up<R: Runtime + Default>() {
    let server = LiveChatServer::start_seed_exact(KEY).unwrap();
    server.set_close_after_login(true);
    let (alice, mut events) = client::<R>(&server.url(), 1)
        .reconnect(fast_policy().max_attempts(Some(3)))
        .connect()
        .unwrap();
    let seen = until(&mut events, "Closed", |e| matches!(e, Event::Closed { .. })).await;
    assert!(seen.contains(&Event::GaveUp { attempts: 3 }), "{seen:?}");
    assert!(server.logins() <= 3, "no attempt after giving up");
    within(alice.close()).await;
}

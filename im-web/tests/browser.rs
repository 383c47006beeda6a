//! im-web in a real browser: headless Chromium through `wasm-bindgen-test`, against the
//! reference livechat server, a fault proxy and Mosquitto. Run with
//! `cargo run -p im-tests --bin browser-tests`, which starts those peers and compiles their
//! control socket's address into this suite (`IM_WEB_CONTROL`).
//!
//! Every wait is for an event, with a deadline that fails the test; none sleeps to
//! synchronise.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use im_web::{
    BuildError, Cause, Client, ClientBuilder, CloseReason, Event, Events, HeartbeatMode, LiveChat,
    Mqtt, ReconnectPolicy, State,
};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_time::Instant;

wasm_bindgen_test_configure!(run_in_browser);

const KEY: &str = "browser-key";
const ROOM: u64 = 7;

// ---- the control socket ----------------------------------------------------------------

/// Ask the peers' control socket (see `im_tests::browser`) and return its JSON answer.
// Not `env!`: a build without the variable (clippy, `cargo check`) must still compile; running
// the suite without the servers fails loudly here.
#[allow(clippy::option_env_unwrap)]
async fn control(command: &str) -> Value {
    let url = option_env!("IM_WEB_CONTROL").expect(
        "IM_WEB_CONTROL is not set: run the browser tests with \
         `cargo run -p im-tests --bin browser-tests`, which starts the servers",
    );
    let ws = web_sys::WebSocket::new(url).expect("open the control socket");
    let command = command.to_owned();
    let socket = ws.clone();
    let asked = command.clone();
    let answer = js_sys::Promise::new(&mut |resolve, reject| {
        let sender = socket.clone();
        let asked = asked.clone();
        let open = Closure::once_into_js(move || {
            sender
                .send_with_str(&asked)
                .expect("send a control command");
        });
        socket.set_onopen(Some(open.unchecked_ref()));
        let message = Closure::once_into_js(move |event: web_sys::MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &event.data());
        });
        socket.set_onmessage(Some(message.unchecked_ref()));
        let error = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = reject.call1(&JsValue::NULL, &"the control socket failed".into());
        });
        socket.set_onerror(Some(error.unchecked_ref()));
    });
    let answer = JsFuture::from(answer)
        .await
        .unwrap_or_else(|e| panic!("control {command:?}: {e:?}"));
    let _ = ws.close();
    let text = answer.as_string().expect("a text answer");
    assert!(!text.starts_with("error"), "control {command:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("control {command:?}: {e}: {text}"))
}

/// A peer of this test's own (see `im_tests::browser`): its id and its URLs.
struct Peer(Value);

impl Peer {
    async fn start(kind: &'static str) -> Peer {
        Peer(control(&format!("{kind} start")).await)
    }

    fn url(&self, which: &str) -> String {
        self.0[which].as_str().expect("a URL").to_owned()
    }

    async fn control(&self, kind: &str, what: &str) -> Value {
        control(&format!("{kind} {} {what}", self.0["id"])).await
    }
}

// ---- waiting -----------------------------------------------------------------------------

async fn sleep(d: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .expect("a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, d.as_millis() as i32)
            .expect("setTimeout");
    });
    let _ = JsFuture::from(promise).await;
}

/// Read events until `done` says so; fail after `limit` with what was seen.
async fn until(
    events: &mut Events,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("no {what} within {limit:?}; seen: {seen:#?}");
        }
        let next = events.next();
        let timer = Box::pin(sleep(left));
        match select(next, timer).await {
            Either::Left((Some(event), _)) => {
                let finished = done(&event);
                seen.push(event);
                if finished {
                    return seen;
                }
            }
            Either::Left((None, _)) => panic!("the event stream ended before {what}: {seen:#?}"),
            Either::Right(_) => {}
        }
    }
}

const WAIT: Duration = Duration::from_secs(15);

async fn connected(events: &mut Events) -> Vec<Event> {
    until(events, "Connected", WAIT, |e| {
        matches!(e, Event::Connected { .. })
    })
    .await
}

async fn subscribed(events: &mut Events, channel: &str) -> Vec<Event> {
    until(
        events,
        "Subscribed",
        WAIT,
        |e| matches!(e, Event::Subscribed { channel: c } if c == channel),
    )
    .await
}

fn fast_policy() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .initial(Duration::from_millis(50))
        .multiplier(1.5)
        .max_delay(Duration::from_millis(300))
        .jitter(0.5)
        .stable_after(Duration::from_secs(1))
        .max_attempts(None)
}

fn livechat(url: &str, user: u64) -> ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(LiveChat::new(ROOM, user, KEY))
        .reconnect(fast_policy())
        .connect_timeout(Duration::from_secs(3))
        .handshake_timeout(Duration::from_secs(3))
}

// ---- the suite ---------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn two_clients_in_the_page_exchange_messages() {
    let server = Peer::start("livechat").await;
    let url = server.url("url");
    let (alice, mut alice_events) = livechat(&url, 101).connect().unwrap();
    let (bob, mut bob_events) = livechat(&url, 102).connect().unwrap();
    alice.subscribe("exchange").unwrap();
    bob.subscribe("exchange").unwrap();
    subscribed(&mut alice_events, "exchange").await;
    subscribed(&mut bob_events, "exchange").await;

    let id = alice
        .send_json("exchange", &json!({"text": "hello bob"}))
        .unwrap();
    until(&mut alice_events, "Acked", WAIT, |e| {
        *e == Event::Acked { id }
    })
    .await;
    let got = until(&mut bob_events, "Message", WAIT, |e| {
        matches!(e, Event::Message(_))
    })
    .await;
    let Some(Event::Message(m)) = got.last() else {
        unreachable!()
    };
    assert_eq!(m.channel, "exchange");
    assert_eq!(m.from.as_deref(), Some("101"));
    assert_eq!(
        m.body.decode::<Value>().unwrap(),
        json!({"text": "hello bob"})
    );
    alice.close().await;
    bob.close().await;
    assert!(alice.is_finished() && bob.is_finished());
}

#[wasm_bindgen_test]
async fn a_server_restart_reconnects_resubscribes_and_delivers_the_queue_once_in_order() {
    let server = Peer::start("livechat").await;
    let url = server.url("url");
    let (alice, mut events) = livechat(&url, 201).connect().unwrap();
    alice.subscribe("restart").unwrap();
    subscribed(&mut events, "restart").await;

    server.control("livechat", "stop").await;
    until(&mut events, "Disconnected", WAIT, |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    // Queued while the server is down.
    let ids: Vec<_> = (0..5)
        .map(|n| alice.send_json("restart", &json!({ "n": n })).unwrap())
        .collect();
    let mut failed = 0;
    until(&mut events, "a second Reconnecting", WAIT, |e| {
        failed += usize::from(matches!(e, Event::Reconnecting { .. }));
        failed >= 2
    })
    .await;
    server.control("livechat", "resume").await;
    let mut pending = ids.clone();
    let seen = until(&mut events, "all five Acked", WAIT, |e| {
        if let Event::Acked { id } = e {
            pending.retain(|p| p != id);
        }
        pending.is_empty()
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Subscribed { channel } if channel == "restart")),
        "resubscribed after the restart: {seen:#?}"
    );
    let delivered: Vec<i64> = server
        .control("livechat", "delivered restart")
        .await
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["message"]["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(delivered, [0, 1, 2, 3, 4], "delivered once each, in order");
    alice.close().await;
}

#[wasm_bindgen_test]
async fn a_kicked_client_never_reconnects() {
    let server = Peer::start("livechat").await;
    let url = server.url("url");
    let (first, mut first_events) = livechat(&url, 301).connect().unwrap();
    connected(&mut first_events).await;
    let accepted_before = server
        .control("livechat", "accepted")
        .await
        .as_u64()
        .unwrap();
    // The same user logs in again: the server kicks the first session (`conn_close`).
    let (second, mut second_events) = livechat(&url, 301).connect().unwrap();
    connected(&mut second_events).await;
    let seen = until(&mut first_events, "Closed", WAIT, |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Kicked { .. })));
    assert!(matches!(
        first.state(),
        State::Closed(CloseReason::Kicked { .. })
    ));
    first.close().await;
    assert!(first.is_finished(), "no task is left that could reconnect");
    // Longer than the whole backoff policy: a reconnect would have come by now.
    sleep(fast_policy().max_delay * 4).await;
    let accepted = server
        .control("livechat", "accepted")
        .await
        .as_u64()
        .unwrap();
    assert_eq!(
        accepted,
        accepted_before + 1,
        "only the second login connected"
    );
    second.close().await;
}

#[wasm_bindgen_test]
async fn a_half_open_link_is_detected_within_interval_plus_timeout() {
    let server = Peer::start("livechat").await;
    let url = server.url("proxied");
    let interval = Duration::from_millis(500);
    let timeout = Duration::from_millis(500);
    let (alice, mut events) = livechat(&url, 401)
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .connect()
        .unwrap();
    until(&mut events, "an answered heartbeat", WAIT, |e| {
        matches!(e, Event::Heartbeat { rtt: Some(_) })
    })
    .await;
    server.control("proxy", "blackhole").await;
    let cut = Instant::now();
    until(&mut events, "a dead link", WAIT, |e| {
        matches!(
            e,
            Event::Disconnected {
                cause: Cause::DeadLink
            }
        )
    })
    .await;
    let detected = cut.elapsed();
    let bound = interval + timeout;
    let slack = Duration::from_millis(500);
    web_sys::console::log_1(
        &format!("half-open link detected after {detected:?} (bound {bound:?} + {slack:?} slack)")
            .into(),
    );
    assert!(detected <= bound + slack, "detected after {detected:?}");
    server.control("proxy", "pass").await;
    connected(&mut events).await;
    alice.close().await;
}

#[wasm_bindgen_test]
async fn mqtt_binary_frames_over_mosquitto_survive_a_broker_restart() {
    let broker = Peer::start("mosquitto").await;
    let url = broker.url("url");
    let (client, mut events) = Client::builder()
        .endpoint(url.as_str())
        .protocol(Mqtt::new("im-web-test").qos(1))
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    client.subscribe("im/web").unwrap();
    subscribed(&mut events, "im/web").await;
    let id = client.send_text("im/web", "first").unwrap();
    let (mut acked, mut back) = (false, false);
    until(&mut events, "the PUBACK and the message back", WAIT, |e| {
        acked |= *e == Event::Acked { id };
        back |= matches!(e, Event::Message(m) if m.body.as_text() == Some("first"));
        acked && back
    })
    .await;

    broker.control("mosquitto", "kill").await;
    until(&mut events, "Disconnected", WAIT, |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    let queued = client.send_text("im/web", "second").unwrap();
    broker.control("mosquitto", "restart").await;
    let (mut resubscribed, mut acked, mut back) = (false, false, false);
    until(
        &mut events,
        "the queued message acked and back",
        WAIT,
        |e| {
            resubscribed |= matches!(e, Event::Subscribed { .. });
            acked |= *e == Event::Acked { id: queued };
            back |= matches!(e, Event::Message(m) if m.body.as_text() == Some("second"));
            resubscribed && acked && back
        },
    )
    .await;
    client.close().await;
}

#[wasm_bindgen_test]
async fn the_online_event_skips_the_backoff_wait() {
    let server = Peer::start("livechat").await;
    let url = server.url("url");
    let slow = ReconnectPolicy::default()
        .initial(Duration::from_secs(60))
        .max_delay(Duration::from_secs(60))
        .jitter(0.0);
    let (alice, mut events) = livechat(&url, 501).reconnect(slow).connect().unwrap();
    connected(&mut events).await;
    server.control("livechat", "stop").await;
    let seen = until(&mut events, "Reconnecting", WAIT, |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    assert!(seen.iter().any(
        |e| matches!(e, Event::Reconnecting { delay, .. } if *delay >= Duration::from_secs(30))
    ));
    server.control("livechat", "resume").await;
    let online = web_sys::Event::new("online").unwrap();
    web_sys::window().unwrap().dispatch_event(&online).unwrap();
    // Far sooner than the minute the backoff asked for.
    until(
        &mut events,
        "Connected after `online`",
        Duration::from_secs(5),
        |e| matches!(e, Event::Connected { .. }),
    )
    .await;
    alice.close().await;
}

#[wasm_bindgen_test]
async fn a_page_back_in_view_probes_the_link() {
    let server = Peer::start("livechat").await;
    let url = server.url("url");
    let interval = Duration::from_secs(60);
    let (alice, mut events) = livechat(&url, 601)
        .heartbeat(HeartbeatMode::ClientDriven {
            interval,
            timeout: Duration::from_secs(10),
        })
        .connect()
        .unwrap();
    connected(&mut events).await;
    let visible = web_sys::Event::new("visibilitychange").unwrap();
    web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .dispatch_event(&visible)
        .unwrap();
    // The probe is a heartbeat now, not a minute from now, and its answer proves the link.
    until(
        &mut events,
        "the probe's answer",
        Duration::from_secs(5),
        |e| matches!(e, Event::Heartbeat { rtt: Some(_) }),
    )
    .await;
    alice.close().await;
}

#[wasm_bindgen_test]
fn ping_frame_heartbeats_are_refused_at_connect() {
    let result = Client::builder()
        .endpoint("ws://127.0.0.1:9/ws")
        .protocol(LiveChat::new(ROOM, 701, KEY))
        .heartbeat(HeartbeatMode::WebSocketPing {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        })
        .connect();
    assert!(matches!(result, Err(BuildError::PingFramesUnsupported)));
}

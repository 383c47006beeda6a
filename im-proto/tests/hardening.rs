//! Regression tests for the edges the property suite once missed: each test is named after what
//! it protects, and each failed on the code before its fix (issue "core hardening").

use std::sync::mpsc;
use std::time::{Duration, Instant};

use im_proto::sim::{Accept, Harness, Reply, ScriptedPeer};
use im_proto::{
    Cause, Config, ConfigBuilder, ConfigError, Endpoint, Event, Frame, HeartbeatMode, Limits,
    LiveChat, Mqtt, Nats, OutgoingMessage, Protocol, ProtocolEvent, ReconnectPolicy, SendId,
    SendInfo, State, Undelivered,
};

mod support;
use support::toy::{parse_client, ClientFrame, Toy};

/// A toy server that welcomes, answers pings and acks every message.
fn toy_server() -> ScriptedPeer {
    ScriptedPeer::new()
        .greeting(|_| vec![Frame::Text("WELCOME".into())])
        .respond(|_, frame| match parse_client(frame) {
            Some(ClientFrame::Ping) => vec![Reply::text("PONG")],
            Some(ClientFrame::Msg { packet, .. }) => vec![Reply::text(format!("ACK {packet}"))],
            _ => vec![],
        })
}

fn base() -> ConfigBuilder {
    Config::builder().endpoint("ws://edge/ws").seed(7)
}

fn ready(config: Config, peer: ScriptedPeer) -> Harness {
    support::toy_connected(config, true, peer)
}

/// `f` must return within `limit` (a hang is a failure, not a stuck test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("hung")
}

// ----- 1. hang -----

#[test]
fn mqtt_packet_ids_run_out_with_an_error_not_a_hang() {
    within(Duration::from_secs(20), || {
        let mut mqtt = Mqtt::new("edge");
        let limits = Limits::default();
        let msg = OutgoingMessage::text("t", "x");
        let mut refused = 0;
        for i in 0..70_000u64 {
            let send = SendInfo {
                id: SendId(i),
                key: "k",
                redelivery: false,
            };
            if mqtt.encode_message(&msg, send).is_err() {
                refused += 1;
            }
        }
        let _ = limits;
        assert_eq!(refused, 70_000 - 65_535, "65,535 ids, then typed errors");
    });
}

#[test]
fn mqtt_subscribe_churn_without_subacks_neither_hangs_nor_grows() {
    within(Duration::from_secs(20), || {
        let mut mqtt = Mqtt::new("edge");
        for _ in 0..70_000 {
            assert!(mqtt.encode_subscribe("a/b").is_ok());
            assert!(mqtt.encode_unsubscribe("a/b").is_ok());
        }
    });
}

// ----- 2. panics on values validation accepts -----

fn survives(config: Config, drive: impl FnOnce(&mut Harness)) {
    let mut sim = ready(config, toy_server());
    drive(&mut sim);
    sim.run_for(Duration::from_secs(3_600));
    // No deadline left behind in the past (a loop of immediate timeouts).
    let now = sim.clock.now();
    assert!(sim.client.poll_timeout().is_none_or(|t| t >= now));
}

#[test]
fn a_message_ttl_of_duration_max_means_keep_forever() {
    let config = base().build().unwrap();
    survives(config, |sim| {
        sim.server_close(None);
        let msg = OutgoingMessage::text("c", "x").with_ttl(Duration::MAX);
        sim.client.send(sim.clock.now(), msg).unwrap();
    });
}

#[test]
fn an_outbox_ttl_of_duration_max_means_keep_forever() {
    let config = base().outbox_ttl(Some(Duration::MAX)).build().unwrap();
    survives(config, |sim| {
        sim.server_close(None);
        sim.client
            .send(sim.clock.now(), OutgoingMessage::text("c", "x"))
            .unwrap();
    });
}

#[test]
fn timeouts_and_intervals_of_duration_max_mean_never() {
    for config in [
        base().connect_timeout(Duration::MAX).build().unwrap(),
        base().handshake_timeout(Duration::MAX).build().unwrap(),
        base()
            .heartbeat(HeartbeatMode::ClientDriven {
                interval: Duration::MAX,
                timeout: Duration::MAX,
            })
            .build()
            .unwrap(),
        base()
            .heartbeat(HeartbeatMode::ServerDriven {
                interval: Duration::MAX,
                timeout: Duration::from_secs(1),
            })
            .build()
            .unwrap(),
        base()
            .reconnect(ReconnectPolicy::default().stable_after(Duration::MAX))
            .build()
            .unwrap(),
        base().ack_timeout(Duration::MAX).build().unwrap(),
        base().clock_jump_threshold(Duration::MAX).build().unwrap(),
    ] {
        survives(config, |sim| {
            sim.client.network_online(sim.clock.now());
            sim.server_close(None);
        });
    }
}

#[test]
fn a_max_delay_of_duration_max_parks_without_a_panic() {
    let config = base()
        .reconnect(
            ReconnectPolicy::default()
                .multiplier(2.0)
                .max_delay(Duration::MAX)
                .jitter(0.0),
        )
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(Toy::new(true)),
        ScriptedPeer::new(),
        Instant::now(),
    )
    .unwrap();
    sim.peer.accept = Accept::Refuse("refused".into());
    sim.client.connect(sim.clock.now());
    // 200 failures: the backoff passes any representable deadline long before that, and the
    // client parks (nothing scheduled) until the platform says the network is back.
    let mut parked = 0;
    for _ in 0..200 {
        sim.settle();
        match sim.client.poll_timeout() {
            Some(t) => sim.run_until(t),
            None => parked += 1,
        }
        sim.client.network_online(sim.clock.now());
    }
    assert!(parked > 0, "a wait of centuries parks the client");
    assert!(sim.client.failures() >= 60, "{}", sim.client.failures());
}

#[test]
fn a_config_whose_fields_were_changed_after_the_builder_is_refused() {
    let mut config = base().build().unwrap();
    config.endpoints.clear();
    let made = std::panic::catch_unwind(|| {
        im_proto::Client::new(config, Box::new(Toy::new(true)), Instant::now()).map(|_| ())
    });
    assert_eq!(
        made.ok(),
        Some(Err(ConfigError::NoEndpoints)),
        "an invalid config must be an error, not a panic"
    );
}

// ----- 3. idempotency keys across processes -----

#[test]
fn two_processes_with_the_default_config_do_not_repeat_idempotency_keys() {
    // The default configuration has no seed: a client needs entropy per process, so two
    // processes cannot both start from seed 0 and repeat each other's keys.
    let config = Config::builder().endpoint("ws://edge/ws").build().unwrap();
    let made = im_proto::Client::new(config, Box::new(Toy::new(true)), Instant::now());
    assert_eq!(made.map(|_| ()), Err(ConfigError::NoSeed));
    // Two processes with their own entropy: different keys for the same send id.
    let key = |seed| {
        let config = base().seed(seed).build().unwrap();
        let mut sim = ready(config, toy_server());
        sim.client
            .send(sim.clock.now(), OutgoingMessage::text("c", "x"))
            .unwrap();
        sim.settle();
        sim.peer
            .received
            .iter()
            .find_map(|(_, _, f)| match parse_client(f) {
                Some(ClientFrame::Msg { key, .. }) => Some(key),
                _ => None,
            })
            .unwrap()
    };
    assert_ne!(
        key(1),
        key(2),
        "a deduplicating server would drop the second"
    );
}

// ----- 4. NATS discovery keeps TLS -----

#[test]
fn nats_discovery_keeps_tls_and_never_sends_the_token_in_clear() {
    let mut nats = Nats::new("edge").with_token("s3cret");
    let _ = nats.resolve_endpoint(&Endpoint::new("wss://nats.example.com:443"));
    let (events, r) = support::in_context(&Limits::default(), |cx| {
        nats.on_open(cx);
        nats.on_frame(
            cx,
            Frame::Binary(
                b"INFO {\"connect_urls\":[\"10.0.0.2:4222\"],\"ws_connect_urls\":[\"ws://10.0.0.3:8080\"]}\r\n"
                    .to_vec().into(),
            ),
        )
    });
    r.unwrap();
    let found: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ProtocolEvent::Endpoints(found) => Some(found.iter().map(|e| e.url().to_owned())),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!found.is_empty());
    for url in &found {
        assert!(
            url.starts_with("wss://"),
            "{url} downgrades a wss:// cluster"
        );
    }
}

// ----- 5, 6. network_online -----

#[test]
fn network_online_cannot_postpone_a_dead_link() {
    let (interval, timeout) = (Duration::from_secs(10), Duration::from_secs(5));
    let config = base()
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .build()
        .unwrap();
    let mut sim = ready(config, toy_server());
    sim.peer.silent = true;
    let first = sim.clock.now();
    // The platform says "online" every second, forever.
    for _ in 0..60 {
        sim.client.network_online(sim.clock.now());
        sim.run_for(Duration::from_secs(1));
    }
    let dead = sim
        .timed_events()
        .find_map(|(t, e)| {
            matches!(
                e,
                Event::Disconnected {
                    cause: Cause::DeadLink
                }
            )
            .then_some(t)
        })
        .expect("declared dead despite the hints");
    assert!(dead <= first + timeout, "dead only at {:?}", dead - first);
}

#[test]
fn network_online_respects_the_servers_not_before() {
    let config = base().build().unwrap();
    let mut sim = ready(config, toy_server());
    let asked = sim.clock.now();
    sim.server_send(Frame::Text("RETRY 60000".into()));
    assert_eq!(sim.client.state(), State::Backoff);
    let connects = sim.peer.connects.len();
    sim.run_for(Duration::from_secs(1));
    sim.client.network_online(sim.clock.now());
    sim.settle();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.peer.connects.len(), connects, "R8: not before 60 s");
    sim.run_for(Duration::from_secs(40));
    let next = sim.peer.connects[connects].0;
    assert!(next >= asked + Duration::from_secs(60));
}

// ----- 7. livechat: one key, two sends -----

#[test]
fn livechat_two_sends_with_one_key_are_both_acked() {
    let mut lc = LiveChat::new(1, 2, "k");
    let auth1 = r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s","dialect":"im"}}"#;
    let run = |p: &mut LiveChat, text: &str| {
        support::in_context(&Limits::default(), |cx| {
            p.on_frame(cx, Frame::Text(text.into()))
        })
        .0
    };
    run(&mut lc, auth1);
    let msg = OutgoingMessage::text("room", "hi").with_key("same");
    for id in [1, 2] {
        let send = SendInfo {
            id: SendId(id),
            key: "same",
            redelivery: false,
        };
        lc.encode_message(&msg, send).unwrap();
    }
    let mut acked = Vec::new();
    for _ in 0..2 {
        for e in run(&mut lc, r#"{"cmd":"ack","msg_id":"same"}"#) {
            if let ProtocolEvent::Acked(id) = e {
                acked.push(id);
            }
        }
    }
    assert_eq!(acked, vec![SendId(1), SendId(2)]);
}

// ----- 8. not reading before Ready -----

#[test]
fn not_reading_before_ready_is_remembered() {
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_secs(1));
    let config = base()
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(Toy::new(true)),
        toy_server(),
        Instant::now(),
    )
    .unwrap();
    sim.client.set_reading(sim.clock.now(), false);
    sim.client.connect(sim.clock.now());
    sim.settle();
    assert_eq!(sim.client.state(), State::Ready);
    sim.peer.silent = true;
    sim.run_for((interval + timeout) * 10);
    assert!(
        !sim.events()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "silence while the driver is not reading proves nothing"
    );
}

// ----- 10. NATS tabs -----

#[test]
fn nats_msg_with_tabs_keeps_its_payload() {
    let mut nats = Nats::new("edge");
    let (events, r) = support::in_context(&Limits::default(), |cx| {
        nats.on_open(cx);
        nats.on_frame(
            cx,
            Frame::Binary(b"MSG\tsubj\t1\t5\r\nhello\r\n".to_vec().into()),
        )
    });
    r.unwrap();
    let Some(ProtocolEvent::Message(m)) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(
        (m.channel.as_str(), m.body.as_text()),
        ("subj", Some("hello"))
    );
}

// ----- 11. oversized frames are liveness -----

#[test]
fn an_oversized_frame_proves_the_link_alive() {
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_secs(1));
    let config = base()
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .limits(Limits::default().max_frame_bytes(16))
        .build()
        .unwrap();
    let mut sim = ready(config, toy_server());
    sim.peer.silent = true;
    for _ in 0..20 {
        sim.run_for(Duration::from_millis(500));
        sim.server_send(Frame::Text("IN c this-frame-is-longer-than-16".into()));
    }
    assert!(
        !sim.events()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "a server sending (too large) frames is alive"
    );
}

// ----- 12. a TTL of zero -----

#[test]
fn a_ttl_of_zero_while_offline_ends_at_once() {
    let config = base().build().unwrap();
    let mut sim = ready(config, toy_server());
    sim.server_close(None);
    let now = sim.clock.now();
    let id = sim
        .client
        .send(
            now,
            OutgoingMessage::text("c", "x").with_ttl(Duration::ZERO),
        )
        .unwrap();
    sim.settle();
    assert!(
        sim.events().any(|e| matches!(e, Event::Undelivered { id: i, reason: Undelivered::Expired, .. } if *i == id)),
        "expired when sent, not left as an overdue deadline"
    );
    assert!(sim.client.poll_timeout().is_none_or(|t| t > now));
}

// ----- 13. a server hint has a ceiling -----

#[test]
fn a_server_hint_is_capped_and_reported() {
    let config = base().build().unwrap();
    let mut sim = ready(config, toy_server());
    sim.server_send(Frame::Text(format!("RETRY {}", u64::MAX).into()));
    let delay = sim
        .events()
        .find_map(|e| match e {
            Event::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .unwrap();
    let cap = sim.client.config().max_server_delay;
    assert!(delay <= cap, "{delay:?} beyond the {cap:?} ceiling");
    assert!(sim.events().any(|e| matches!(
        e,
        Event::Error(im_proto::ReportedError::ServerHintCapped { applied, .. }) if *applied == cap
    )));
}

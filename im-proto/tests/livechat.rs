//! The seed's protocol end to end through the core, against scripted livechat servers: one that
//! speaks im's dialect (announced in auth1) and one that speaks exactly the seed's protocol.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use im_proto::sim::{Harness, Reply, ScriptedPeer};
use im_proto::{CloseReason, Config, Event, Frame, LiveChat, OutgoingMessage, SendError, State};
use serde_json::{json, Value};

const KEY: &str = "room-key";

fn server(logins: Rc<RefCell<Vec<Value>>>) -> ScriptedPeer {
    ScriptedPeer::new()
        .greeting(|_| {
            vec![Frame::Text(
                r#"{"cmd":"auth1","msg_id":"a1","result":{"seed":"s33d","dialect":"im"}}"#.into(),
            )]
        })
        .respond(move |_, frame| {
            let Frame::Text(t) = frame else { return vec![] };
            let v: Value = serde_json::from_str(t).unwrap();
            match v["cmd"].as_str().unwrap() {
                "auth2" => {
                    logins.borrow_mut().push(v.clone());
                    if v["authCode"] == LiveChat::auth_code("s33d", KEY) {
                        vec![Reply::text(r#"{"cmd":"auth_ok"}"#)]
                    } else {
                        vec![Reply::text(
                            r#"{"cmd":"auth_fail","result":{"reason":"bad code"}}"#,
                        )]
                    }
                }
                "wd_heartbeat" => vec![Reply::text(r#"{"cmd":"wd_heartbeat"}"#)],
                "join" => vec![Reply::text(
                    json!({"cmd":"joined","room":v["room"]}).to_string(),
                )],
                "chat" => vec![Reply::text(
                    json!({"cmd":"ack","msg_id":v["msg_id"]}).to_string(),
                )],
                _ => vec![],
            }
        })
}

fn harness(key: &str, logins: Rc<RefCell<Vec<Value>>>) -> Harness {
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://livechat/ws")
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(LiveChat::new(1, 9527, key)),
        server(logins),
        Instant::now(),
    )
    .unwrap();
    sim.client.connect(sim.clock.now());
    sim.settle();
    sim
}

#[test]
fn auth_chat_heartbeat_and_kick() {
    let logins = Rc::new(RefCell::new(Vec::new()));
    let mut sim = harness(KEY, logins.clone());
    assert_eq!(sim.client.state(), State::Ready);
    assert_eq!(logins.borrow()[0]["msg_id"], "a1");
    assert_eq!(logins.borrow()[0]["room_id"], "livechat_1");

    sim.client.subscribe(sim.clock.now(), "lobby").unwrap();
    let id = sim
        .client
        .send(
            sim.clock.now(),
            OutgoingMessage::json("lobby", &json!({"text": "hi"})).unwrap(),
        )
        .unwrap();
    sim.settle();
    assert!(sim.events().any(|e| *e == Event::Acked { id }));
    assert!(sim
        .events()
        .any(|e| matches!(e, Event::Subscribed { channel } if channel == "lobby")));

    // Heartbeats are answered: RTT reported, link stays up for minutes.
    sim.run_for(Duration::from_secs(300));
    assert_eq!(sim.client.state(), State::Ready);
    assert!(sim
        .events()
        .any(|e| matches!(e, Event::Heartbeat { rtt: Some(_) })));

    // A chat message from the server.
    sim.server_send(Frame::Text(
        r#"{"cmd":"chat","result":{"room":"lobby","from":7,"msg_id":"m9","message":{"text":"yo"}}}"#.into(),
    ));
    assert!(sim.events().any(|e| matches!(e, Event::Message(m)
        if m.channel == "lobby" && m.body.as_text() == Some(r#"{"text":"yo"}"#))));

    // Logged in elsewhere: kicked, closed, and never back.
    sim.server_send(Frame::Text(r#"{"cmd":"conn_close"}"#.into()));
    assert!(sim.events().any(|e| matches!(e, Event::Kicked { .. })));
    assert!(matches!(
        sim.client.state(),
        State::Closed(CloseReason::Kicked { .. })
    ));
    let connects = sim.peer.connects.len();
    sim.run_for(Duration::from_secs(600));
    assert_eq!(sim.peer.connects.len(), connects);
    assert_eq!(sim.client.poll_timeout(), None);
    assert_eq!(
        sim.client
            .send(sim.clock.now(), OutgoingMessage::text("lobby", "late")),
        Err(SendError::Closed)
    );
}

#[test]
fn wrong_key_is_fatal_not_retried() {
    let logins = Rc::new(RefCell::new(Vec::new()));
    let mut sim = harness("wrong", logins);
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.client.state(),
        State::Closed(CloseReason::Fatal(_))
    ));
    assert_eq!(sim.peer.connects.len(), 1);
}

#[test]
fn hostile_frames_are_errors_and_the_connection_survives() {
    let logins = Rc::new(RefCell::new(Vec::new()));
    let mut sim = harness(KEY, logins);
    for junk in [
        Frame::Text("{not json".into()),
        Frame::Text(r#"{"cmd":"who-knows"}"#.into()),
        Frame::Binary(bytes::Bytes::from(vec![0xff, 0xfe])),
        Frame::Text("[".repeat(10_000).into()),
        Frame::Text("x".repeat(2 << 20).into()),
    ] {
        sim.server_send(junk);
    }
    let errors = sim
        .events()
        .filter(|e| matches!(e, Event::Error(_)))
        .count();
    assert_eq!(errors, 5);
    assert_eq!(sim.client.state(), State::Ready);
    sim.server_send(Frame::Text(
        r#"{"cmd":"x","result":{"message":"still here"}}"#.into(),
    ));
    assert!(sim.events().any(|e| matches!(e, Event::Message(_))));
}

/// Exactly the seed's server: a challenge, heartbeat answers (while `answer` holds), chat
/// frames taken in and never acknowledged, no `auth_ok`, no rooms.
fn seed_server(chats: Rc<RefCell<Vec<Value>>>, answer: Rc<RefCell<bool>>) -> ScriptedPeer {
    ScriptedPeer::new()
        .greeting(|_| {
            vec![Frame::Text(
                r#"{"cmd":"auth1","msg_id":7,"result":{"seed":"s33d"}}"#.into(),
            )]
        })
        .respond(move |_, frame| {
            let Frame::Text(t) = frame else { return vec![] };
            let v: Value = serde_json::from_str(t).unwrap();
            match v["cmd"].as_str().unwrap() {
                "wd_heartbeat" if *answer.borrow() => {
                    vec![Reply::text(r#"{"cmd":"wd_heartbeat"}"#)]
                }
                "chat" => {
                    chats.borrow_mut().push(v);
                    vec![]
                }
                _ => vec![],
            }
        })
}

#[test]
fn a_seed_exact_server_gets_ready_heartbeats_at_most_once_sends_and_dead_link_detection() {
    let chats = Rc::new(RefCell::new(Vec::new()));
    let answer = Rc::new(RefCell::new(true));
    let (interval, timeout) = (Duration::from_secs(25), Duration::from_secs(10));
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://livechat/ws")
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(LiveChat::new(1, 9527, KEY)),
        seed_server(chats.clone(), answer.clone()),
        Instant::now(),
    )
    .unwrap();
    // Queued before the first connect: goes out once, in order, after auth2.
    let first = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("livechat_1", "one"))
        .unwrap();
    sim.client.subscribe(sim.clock.now(), "livechat_1").unwrap();
    sim.client.connect(sim.clock.now());
    sim.settle();
    assert_eq!(
        sim.client.state(),
        State::Ready,
        "ready once auth2 is written"
    );
    assert!(sim.events().any(|e| matches!(e, Event::Connected { .. })));
    let second = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("livechat_1", "two"))
        .unwrap();
    sim.settle();
    for id in [first, second] {
        assert!(sim.events().any(|e| *e == Event::Sent { id }), "{id} Sent");
    }
    assert_eq!(
        sim.client.outbox_len(),
        0,
        "nothing held for an ack that never comes"
    );
    let bodies: Vec<_> = chats
        .borrow()
        .iter()
        .map(|c| c["message"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("one"), json!("two")]);

    // Heartbeats at the interval, answered: the link stays up.
    sim.run_for(interval * 4);
    assert_eq!(sim.client.state(), State::Ready);
    let beats = sim
        .events()
        .filter(|e| matches!(e, Event::Heartbeat { rtt: Some(_) }))
        .count();
    assert!(beats >= 4, "{beats} heartbeats answered in 4 intervals");

    // The server falls silent: dead at interval + timeout after the last inbound frame.
    *answer.borrow_mut() = false;
    let silent_from = sim.clock.now();
    sim.run_for(interval + timeout + Duration::from_secs(30));
    let dead = sim
        .timed_events()
        .find(|(_, e)| {
            matches!(
                e,
                Event::Disconnected {
                    cause: im_proto::Cause::DeadLink
                }
            )
        })
        .map(|(t, _)| t)
        .expect("a dead link declared");
    assert!(
        dead <= silent_from + interval + timeout,
        "declared {:?} after the server fell silent",
        dead - silent_from
    );
    assert_eq!(chats.borrow().len(), 2, "nothing resent");
}

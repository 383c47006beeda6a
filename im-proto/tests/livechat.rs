//! The seed's protocol end to end through the core, against a scripted livechat server.

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
                r#"{"cmd":"auth1","msg_id":"a1","result":{"seed":"s33d"}}"#.into(),
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
        .endpoint("ws://livechat/ws")
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(LiveChat::new(1, 9527, key)),
        server(logins),
        Instant::now(),
    );
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
        Frame::Binary(vec![0xff, 0xfe]),
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

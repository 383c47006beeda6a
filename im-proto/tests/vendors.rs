//! The trait is right for more than the seed: a server-driven-ping text protocol (Engine.IO
//! shaped) and a binary protocol with 16-bit packet-id acks (MQTT shaped) run through the same
//! core, with no special case, in virtual time.

mod support;

use std::time::{Duration, Instant};

use im_proto::sim::{Harness, Reply, ScriptedPeer};
use im_proto::{Body, Cause, Config, Event, Frame, HeartbeatMode, OutgoingMessage, State};
use support::packets::{self, Packets};
use support::pinger::Pinger;

#[test]
fn server_driven_ping_protocol_takes_its_heartbeat_from_the_server() {
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://eio/ws")
        .build()
        .unwrap();
    let peer = ScriptedPeer::new().greeting(|_| {
        vec![Frame::Text(
            r#"0{"pingInterval":2000,"pingTimeout":1000}"#.into(),
        )]
    });
    let mut sim = Harness::new(config, Box::new(Pinger), peer, Instant::now()).unwrap();
    sim.client.connect(sim.clock.now());
    sim.settle();
    assert_eq!(sim.client.state(), State::Ready);

    // The server pings; the client answers `3` and stays up well past the default 35 s window.
    for _ in 0..30 {
        sim.run_for(Duration::from_millis(1_900));
        assert!(sim.server_send(Frame::Text("2".into())));
    }
    let answers = sim
        .peer
        .received
        .iter()
        .filter(|(_, _, f)| *f == Frame::Text("3".into()))
        .count();
    assert_eq!(answers, 30);
    assert_eq!(sim.client.state(), State::Ready);
    // The client never sent a heartbeat of its own: the server drives.
    assert_eq!(sim.peer.received.len(), 30);

    // A message, and a send (no acks: reported Sent once written).
    sim.server_send(Frame::Text("4room:hello".into()));
    let id = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("room", "hi"))
        .unwrap();
    sim.settle();
    assert!(sim
        .events()
        .any(|e| matches!(e, Event::Message(m) if m.channel == "room")));
    assert!(sim.events().any(|e| *e == Event::Sent { id }));

    // The server stops pinging: dead at last ping + pingInterval + pingTimeout, as it said.
    let last_ping = sim.clock.now();
    sim.run_for(Duration::from_secs(5));
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
        .expect("dead link detected");
    assert_eq!(dead - last_ping, Duration::from_millis(3_000));
}

#[test]
fn binary_protocol_with_packet_id_acks_redelivers_after_reconnect() {
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://mqtt/ws")
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        })
        // The unacked message must still be held when the link drops at 30 s (Q3's ack timeout
        // would otherwise retry it and hand it back first).
        .ack_timeout(Duration::from_secs(3_600))
        .build()
        .unwrap();
    let peer = ScriptedPeer::new().respond(|_, f| match packets::split(f) {
        Some((packets::CONNECT, _, _)) => {
            vec![Reply::Frame(packets::packet(packets::CONNACK, 0, &[0]))]
        }
        Some((packets::PINGREQ, _, _)) => {
            vec![Reply::Frame(packets::packet(packets::PINGRESP, 0, &[]))]
        }
        _ => vec![],
    });
    let mut sim = Harness::new(config, Box::new(Packets::default()), peer, Instant::now()).unwrap();
    sim.client.connect(sim.clock.now());
    sim.client.subscribe(sim.clock.now(), "sensors").unwrap();
    sim.settle();
    assert_eq!(sim.client.state(), State::Ready);

    let now = sim.clock.now();
    let a = sim
        .client
        .send(now, OutgoingMessage::binary("sensors", vec![1, 2, 3]))
        .unwrap();
    let b = sim
        .client
        .send(now, OutgoingMessage::binary("sensors", vec![4]))
        .unwrap();
    sim.settle();
    // Ack only the first, by its packet id.
    let publishes: Vec<(u8, u16)> = sim
        .peer
        .received
        .iter()
        .filter_map(|(_, _, f)| packets::split(f))
        .filter(|(k, _, _)| k & !packets::DUP == packets::PUBLISH)
        .map(|(k, id, _)| (k, id))
        .collect();
    assert_eq!(publishes.len(), 2);
    sim.server_send(packets::packet(packets::PUBACK, publishes[0].1, &[]));
    assert!(sim.events().any(|e| *e == Event::Acked { id: a }));

    // Heartbeats keep it alive; then the connection drops and comes back.
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.client.state(), State::Ready);
    sim.server_close(None);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.client.state(), State::Ready);

    // The unacked one went out again with DUP and the same key; the acked one did not.
    let redelivered: Vec<_> = sim
        .peer
        .received
        .iter()
        .filter(|(_, c, _)| c.get() == 1)
        .filter_map(|(_, _, f)| packets::split(f))
        .filter(|(k, _, _)| k & !packets::DUP == packets::PUBLISH)
        .map(|(k, _, p)| (k, packets::publish_fields(p).unwrap().1.to_owned()))
        .collect();
    assert_eq!(redelivered.len(), 1);
    assert_eq!(redelivered[0].0, packets::PUBLISH | packets::DUP);
    assert!(redelivered[0].1.ends_with(&format!("-{}", b.0)));
    // And the subscription was restored on the new connection (S1).
    assert!(sim.peer.received.iter().any(|(_, c, f)| c.get() == 1
        && packets::split(f).is_some_and(|(k, _, p)| k == packets::SUBSCRIBE && p == b"sensors")));

    // Server-sent binary message reaches the user as a binary body.
    let mut payload = vec![7u8];
    payload.extend_from_slice(b"sensors");
    payload.push(0);
    payload.extend_from_slice(&[9, 9]);
    sim.server_send(packets::packet(packets::PUBLISH, 5, &payload));
    assert!(sim.events().any(
        |e| matches!(e, Event::Message(m) if m.body == Body::Binary(bytes::Bytes::from(vec![9, 9])))
    ));
}

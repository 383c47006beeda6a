//! Q5 durable: a message a store kept from an earlier run is held again under its old id and
//! key, announced, sent ahead of anything newer as a redelivery, and ends in one fate; what
//! this client would refuse today is handed back at once; ids out of order are misuse.

use std::time::{Duration, Instant};

use im_proto::{
    Body, Client, Config, ConnId, Event, Frame, HeartbeatMode, Limits, LiveChat, OutgoingMessage,
    Output, RestoreError, SendId, Text, TransportEvent, Undelivered,
};

fn client(limits: Limits) -> Client {
    let config = Config::builder()
        .endpoint("ws://a/ws")
        .heartbeat(HeartbeatMode::Off)
        .limits(limits)
        .seed(7)
        .build()
        .unwrap();
    Client::new(config, Box::new(LiveChat::new(1, 1, "k")), Instant::now()).unwrap()
}

fn drain(core: &mut Client) -> (Vec<String>, Vec<Event>) {
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    loop {
        match core.poll_output() {
            Output::Timeout(_) => return (frames, events),
            Output::Transmit {
                frame: Frame::Text(t),
                ..
            } => frames.push(t.to_string()),
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
}

/// Connect and log in with the im dialect (acks, keys on the wire).
fn ready(core: &mut Client, now: Instant) -> ConnId {
    let conn = ConnId::from_raw(0);
    let frame = |text: &str| TransportEvent::Frame(Frame::Text(Text::from(text)));
    core.connect(now);
    core.handle_transport(now, conn, TransportEvent::Opened);
    core.handle_transport(
        now,
        conn,
        frame(r#"{"cmd":"auth1","result":{"seed":"s","dialect":"im"}}"#),
    );
    core.handle_transport(now, conn, frame(r#"{"cmd":"auth_ok"}"#));
    conn
}

#[test]
fn q5_restored_messages_keep_id_and_key_and_go_first() {
    let now = Instant::now();
    let mut core = client(Limits::default());
    for (id, key, n) in [(4, "run1-4", 1), (9, "run1-9", 2)] {
        let msg = OutgoingMessage::new("lobby", Body::Text(format!("restored {n}").into()));
        core.restore(now, SendId(id), key.into(), msg).unwrap();
    }
    let (_, events) = drain(&mut core);
    let restored: Vec<SendId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Restored { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(restored, [SendId(4), SendId(9)]);
    // New sends are numbered after the last restored id, and queue behind them (Q2).
    let new = core
        .send(now, OutgoingMessage::text("lobby", "new"))
        .unwrap();
    assert_eq!(new, SendId(10));
    assert_eq!(core.generated_key(new).len(), 16 + 1 + 2);
    assert_eq!(core.outbox_len(), 3);
    let conn = ready(&mut core, now);
    let (frames, _) = drain(&mut core);
    let chats: Vec<&String> = frames
        .iter()
        .filter(|f| f.contains(r#""cmd":"chat""#))
        .collect();
    assert_eq!(chats.len(), 3, "{frames:?}");
    assert!(chats[0].contains(r#""msg_id":"run1-4""#) && chats[0].contains("restored 1"));
    assert!(chats[1].contains(r#""msg_id":"run1-9""#) && chats[1].contains("restored 2"));
    assert!(chats[2].contains(&core.generated_key(new)));
    // Their fates name the old ids.
    let ack = |key: &str| {
        TransportEvent::Frame(Frame::Text(Text::from(format!(
            r#"{{"cmd":"ack","msg_id":"{key}"}}"#
        ))))
    };
    core.handle_transport(now, conn, ack("run1-9"));
    core.handle_transport(now, conn, ack("run1-4"));
    let (_, events) = drain(&mut core);
    let acked: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Acked { .. }))
        .collect();
    assert_eq!(
        acked,
        [
            &Event::Acked { id: SendId(9) },
            &Event::Acked { id: SendId(4) }
        ]
    );
}

#[test]
fn q5_ids_must_rise_and_stay_above_every_send() {
    let now = Instant::now();
    let mut core = client(Limits::default());
    let msg = || OutgoingMessage::text("lobby", "x");
    core.restore(now, SendId(5), "a".into(), msg()).unwrap();
    assert_eq!(
        core.restore(now, SendId(5), "b".into(), msg()),
        Err(RestoreError::OutOfOrder {
            id: SendId(5),
            next: SendId(6)
        })
    );
    let sent = core.send(now, msg()).unwrap();
    assert_eq!(
        core.restore(now, SendId(3), "c".into(), msg()),
        Err(RestoreError::OutOfOrder {
            id: SendId(3),
            next: SendId(sent.0 + 1)
        })
    );
    // Ids past 2^63 would leave later sends no room to be numbered.
    let top = SendId(i64::MAX as u64);
    assert_eq!(
        core.restore(now, SendId(top.0 + 1), "d".into(), msg()),
        Err(RestoreError::OutOfRange {
            id: SendId(top.0 + 1)
        })
    );
    core.restore(now, top, "d".into(), msg()).unwrap();
    assert_eq!(core.send(now, msg()), Ok(SendId(top.0 + 1)));
    assert_eq!(core.outbox_len(), 4);
}

#[test]
fn q5_what_this_client_would_refuse_is_handed_back_at_once() {
    let now = Instant::now();
    let limits = Limits::default().max_message_bytes(8).outbox_messages(1);
    let mut core = client(limits);
    let ok = OutgoingMessage::text("lobby", "fits");
    let too_large = OutgoingMessage::text("lobby", "far too large now");
    let no_room = OutgoingMessage::text("lobby", "full");
    let binary = OutgoingMessage::new("lobby", Body::Binary(bytes::Bytes::from(vec![1])));
    core.restore(now, SendId(1), "k1".into(), ok).unwrap();
    core.restore(now, SendId(2), "k2".into(), too_large)
        .unwrap();
    core.restore(now, SendId(3), "k3".into(), no_room).unwrap();
    core.restore(now, SendId(4), "k4".into(), binary).unwrap();
    let (_, events) = drain(&mut core);
    let handed_back: Vec<(SendId, Undelivered, bool)> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::Undelivered {
                id,
                reason,
                maybe_delivered,
                ..
            } => Some((id, reason, maybe_delivered)),
            _ => None,
        })
        .collect();
    assert_eq!(handed_back.len(), 3, "{handed_back:?}");
    assert_eq!(handed_back[0], (SendId(2), Undelivered::OverLimits, true));
    assert_eq!(handed_back[1], (SendId(3), Undelivered::OverLimits, true));
    assert!(matches!(
        handed_back[2],
        (SendId(4), Undelivered::Encode(_), true)
    ));
    assert_eq!(core.outbox_len(), 1);

    core.close(now);
    drain(&mut core);
    let late = OutgoingMessage::text("lobby", "late");
    assert_eq!(
        core.restore(now, SendId(9), "k9".into(), late),
        Err(RestoreError::Closed)
    );
    assert!(drain(&mut core).1.is_empty(), "nothing after Closed (R4)");
}

#[test]
fn q5_a_restored_message_counts_as_maybe_delivered() {
    let now = Instant::now();
    let mut core = client(Limits::default());
    let mut msg = OutgoingMessage::text("lobby", "x");
    msg.ttl = Some(Duration::ZERO);
    core.restore(now, SendId(0), "k".into(), msg).unwrap();
    let (_, events) = drain(&mut core);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Undelivered {
                id: SendId(0),
                reason: Undelivered::Expired,
                maybe_delivered: true,
                ..
            }
        )),
        "{events:?}"
    );
}

//! The livechat codec on its own: frames in, protocol events out.
mod support;

use im_proto::protocols::livechat::Dialect;
use im_proto::{
    Delivery, EncodeError, Frame, Limits, LiveChat, OutgoingMessage, Protocol, ProtocolError,
    ProtocolEvent, SendId, SendInfo,
};
use serde_json::Value;

fn run(p: &mut LiveChat, frame: &str) -> (Vec<ProtocolEvent>, Result<(), ProtocolError>) {
    support::in_context(&Limits::default(), |cx| {
        p.on_frame(cx, Frame::Text(frame.into()))
    })
}

const IM_AUTH1: &str = r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s","dialect":"im"}}"#;
const SEED_AUTH1: &str = r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#;

/// A message's frame, and whether the server will ack it.
struct Encoded {
    frame: Frame,
    delivery: Delivery,
}

fn encode(p: &mut LiveChat, msg: &OutgoingMessage) -> Result<Encoded, EncodeError> {
    let send = SendInfo {
        id: SendId(3),
        key: "tag-3",
        redelivery: false,
    };
    let (delivery, frame) = p.encode_message(msg, send)?;
    Ok(Encoded { frame, delivery })
}

#[test]
fn auth1_is_answered_with_md5_of_seed_and_key() {
    let mut p = LiveChat::new(7, 9527, "k3y");
    let (events, r) = run(
        &mut p,
        r#"{"cmd":"auth1","msg_id":42,"result":{"seed":"abc"}}"#,
    );
    r.unwrap();
    // The seed's dialect: answering the challenge is the whole handshake.
    let [ProtocolEvent::Transmit(Frame::Text(reply)), ProtocolEvent::Ready] = events.as_slice()
    else {
        panic!("expected the reply then Ready, got {events:?}");
    };
    let reply: Value = serde_json::from_str(reply).unwrap();
    assert_eq!(reply["cmd"], "auth2");
    assert_eq!(reply["msg_id"], 42);
    assert_eq!(reply["authCode"], LiveChat::auth_code("abc", "k3y"));
    assert_eq!(reply["room_id"], "livechat_7");
    assert_eq!(reply["userId"], 9527);
}

#[test]
fn md5_matches_a_known_vector() {
    // RFC 1321 test suite: MD5("abc").
    assert_eq!(
        LiveChat::auth_code("a", "bc"),
        "900150983cd24fb0d6963f7d28e17f72"
    );
}

#[test]
fn seed_rule_result_message_is_a_chat_message() {
    let mut p = LiveChat::new(1, 2, "k");
    let (events, r) = run(
        &mut p,
        r#"{"cmd":"whatever","result":{"message":{"text":"hi"},"from":5,"msg_id":"m1"}}"#,
    );
    r.unwrap();
    let [ProtocolEvent::Message(m)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(m.channel, "livechat_1");
    assert_eq!(m.body.as_text(), Some(r#"{"text":"hi"}"#));
    assert_eq!(m.from.as_deref(), Some("5"));
    assert_eq!(m.id.as_deref(), Some("m1"));
}

#[test]
fn escaped_strings_decode_like_plain_ones() {
    // Fields are borrowed from the frame when they can be; escapes take the owned path.
    let mut p = LiveChat::new(1, 2, "k");
    let (events, r) = run(
        &mut p,
        r#"{"cmd":"c\u0068at","result":{"room":"r\"1\u00e9","message":{"t":"\n"}}}"#,
    );
    r.unwrap();
    let [ProtocolEvent::Message(m)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(m.channel, "r\"1\u{e9}");
    assert_eq!(m.body.as_text(), Some(r#"{"t":"\n"}"#));
    let (events, r) = run(&mut p, r#"{"cmd":"joined","room":"a\/b"}"#);
    r.unwrap();
    assert_eq!(events, vec![ProtocolEvent::Subscribed("a/b".into())]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let mut p = LiveChat::new(1, 2, "k");
    assert!(matches!(
        run(&mut p, "{not json").1,
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        run(&mut p, r#"{"cmd":"nope"}"#).1,
        Err(ProtocolError::Violation(_))
    ));
    let (_, binary) = support::in_context(&Limits::default(), |cx| {
        p.on_frame(cx, Frame::Binary(bytes::Bytes::from(vec![0xff])))
    });
    assert_eq!(binary, Err(ProtocolError::UnexpectedFrame("binary")));
}

#[test]
fn the_im_dialect_is_announced_in_auth1_and_waits_for_auth_ok() {
    let mut p = LiveChat::new(7, 9527, "k3y");
    let (events, r) = run(&mut p, IM_AUTH1);
    r.unwrap();
    assert!(
        matches!(events.as_slice(), [ProtocolEvent::Transmit(_)]),
        "no Ready before auth_ok: {events:?}"
    );
    assert_eq!(p.dialect(), Some(Dialect::Im));
    let (events, _) = run(&mut p, r#"{"cmd":"auth_ok"}"#);
    assert_eq!(events, vec![ProtocolEvent::Ready]);
}

#[test]
fn the_seeds_dialect_sends_at_most_once_and_has_no_rooms() {
    let mut p = LiveChat::new(1, 2, "k");
    run(&mut p, SEED_AUTH1).1.unwrap();
    assert_eq!(p.dialect(), Some(Dialect::Seed));
    let sent = encode(&mut p, &OutgoingMessage::text("livechat_1", "hi")).unwrap();
    assert_eq!(sent.delivery, Delivery::AtMostOnce);
    let Frame::Text(t) = sent.frame else { panic!() };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (v["cmd"].as_str(), v["message"].as_str()),
        (Some("chat"), Some("hi"))
    );
    assert_eq!(p.encode_subscribe("room-2"), Ok(None));
    assert_eq!(p.encode_unsubscribe("room-2"), Ok(None));
    // Asking a seed server for acks is refused, not silently weakened.
    let acked = OutgoingMessage::text("livechat_1", "hi").with_delivery(Delivery::AtLeastOnce);
    assert!(matches!(
        encode(&mut p, &acked),
        Err(EncodeError::Unsupported { .. })
    ));
    assert!(p.validate(&acked).is_err());
}

#[test]
fn conn_close_kicks_and_ack_maps_back_to_the_send() {
    let mut p = LiveChat::new(1, 2, "k");
    run(&mut p, IM_AUTH1).1.unwrap();
    let msg = OutgoingMessage::text("room-1", "hi");
    let encoded = encode(&mut p, &msg).unwrap();
    assert_eq!(encoded.delivery, Delivery::AtLeastOnce);
    let Frame::Text(t) = encoded.frame else {
        panic!()
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["msg_id"], "tag-3");
    assert_eq!(v["message"], "hi");
    let (events, _) = run(&mut p, r#"{"cmd":"ack","msg_id":"tag-3"}"#);
    assert_eq!(events, vec![ProtocolEvent::Acked(SendId(3))]);
    let (events, _) = run(&mut p, r#"{"cmd":"conn_close"}"#);
    assert!(matches!(events[0], ProtocolEvent::Kicked { .. }));
}

#[test]
fn debug_hides_the_key() {
    let p = LiveChat::new(1, 2, "sup3r-secret");
    assert!(!format!("{p:?}").contains("sup3r-secret"));
}

#[test]
fn deep_json_is_refused_before_parsing() {
    let mut p = LiveChat::new(1, 2, "k");
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        run(&mut p, &deep).1,
        Err(ProtocolError::TooDeep { limit: 32 })
    );
    // Brackets inside strings do not count.
    let quoted = format!(
        r#"{{"cmd":"x","result":{{"message":"{}"}}}}"#,
        "[".repeat(100)
    );
    assert_eq!(run(&mut p, &quoted).1, Ok(()));
}

/// Feed `frame`, which must be accepted; what it meant.
fn fed(p: &mut LiveChat, frame: &str) -> Vec<ProtocolEvent> {
    let (events, result) = run(p, frame);
    assert_eq!(result, Ok(()), "{frame}");
    events
}

/// The `join` frame `encode_subscribe` writes for `room`, as JSON.
fn join_frame(p: &mut LiveChat, room: &str) -> Value {
    match p.encode_subscribe(room).unwrap() {
        Some(Frame::Text(t)) => serde_json::from_str(&t).unwrap(),
        other => panic!("no join frame: {other:?}"),
    }
}

fn gaps(events: &[ProtocolEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ProtocolEvent::Gap { .. }))
        .count()
}

/// im's resume point: the first join asks for nothing; `joined` says where the room's history
/// is; every message handed over moves the point (never back); the next join presents it; an
/// answer that could not serve it all, or a history that is not the one the point is in
/// (a restarted server), is a gap. Leaving forgets the room.
#[test]
fn a_rejoin_presents_the_last_message_seen_and_a_gap_is_reported() {
    let mut p = LiveChat::new(1, 2, "k");
    fed(&mut p, IM_AUTH1);
    let first = join_frame(&mut p, "r");
    assert_eq!(first.get("resume"), None, "{first}");
    let events = fed(
        &mut p,
        r#"{"cmd":"joined","room":"r","result":{"epoch":"e1","seq":5}}"#,
    );
    assert_eq!(events, [ProtocolEvent::Subscribed("r".into())]);
    fed(
        &mut p,
        r#"{"cmd":"chat","result":{"room":"r","seq":7,"message":"a"}}"#,
    );
    fed(
        &mut p,
        r#"{"cmd":"chat","result":{"room":"r","seq":6,"message":"late"}}"#,
    );
    // Another room's messages move nothing here; a room not joined is not tracked.
    fed(
        &mut p,
        r#"{"cmd":"chat","result":{"room":"other","seq":99,"message":"b"}}"#,
    );
    assert_eq!(
        join_frame(&mut p, "r")["resume"],
        serde_json::json!({"epoch": "e1", "seq": 7})
    );

    // Served in full: no gap, and the point stays until the replay moves it.
    let events = fed(
        &mut p,
        r#"{"cmd":"joined","room":"r","result":{"epoch":"e1","seq":9,"resumed":true}}"#,
    );
    assert_eq!(gaps(&events), 0);
    assert_eq!(join_frame(&mut p, "r")["resume"]["seq"], 7);

    // Not all kept: a gap, with the server's reason.
    let events = fed(
        &mut p,
        r#"{"cmd":"joined","room":"r","result":{"epoch":"e1","seq":9,"resumed":false,"reason":"2 gone"}}"#,
    );
    assert_eq!(gaps(&events), 1);
    assert!(format!("{events:?}").contains("2 gone"));

    // Another history (the server restarted) without a word about the resume: a gap too, and
    // the point starts again at that history's present.
    let events = fed(
        &mut p,
        r#"{"cmd":"joined","room":"r","result":{"epoch":"e2","seq":1}}"#,
    );
    assert_eq!(gaps(&events), 1);
    assert_eq!(
        join_frame(&mut p, "r")["resume"],
        serde_json::json!({"epoch": "e2", "seq": 1})
    );

    p.encode_unsubscribe("r").unwrap();
    assert_eq!(join_frame(&mut p, "r").get("resume"), None);
}

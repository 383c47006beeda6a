//! A message's body is the frame's own bytes: the binary vendors (MQTT, NATS) hand it on as a
//! slice of the frame the WebSocket library read, not as a copy (docs/PERFORMANCE.md), and the
//! slice is still the right bytes when a message was split across frames.

mod support;

use bytes::Bytes;
use im_proto::protocols::mqtt::Packet;
use im_proto::{Body, Frame, Limits, Message, Mqtt, Nats, Protocol, ProtocolEvent};

/// The messages `frames` gave a freshly opened `protocol`.
fn messages(protocol: &mut dyn Protocol, frames: &[Bytes]) -> Vec<Message> {
    let limits = Limits::default();
    let (events, ()) = support::in_context(&limits, |cx| {
        protocol.on_open(cx);
        for frame in frames {
            protocol.on_frame(cx, Frame::Binary(frame.clone())).unwrap();
        }
    });
    events
        .into_iter()
        .filter_map(|e| match e {
            ProtocolEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Whether `part` lies inside `frame`'s buffer.
fn within(frame: &Bytes, part: &[u8]) -> bool {
    let (start, end) = (
        frame.as_ptr() as usize,
        frame.as_ptr() as usize + frame.len(),
    );
    let at = part.as_ptr() as usize;
    start <= at && at + part.len() <= end
}

fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Packet::Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        payload: Bytes::copy_from_slice(payload),
    }
    .encode(&mut out);
    out
}

#[test]
fn an_mqtt_body_is_a_slice_of_its_frame() {
    let text = br#"{"n":1,"pad":"a body longer than an inline text"}"#;
    let binary = [0xff, 0xfe, 0x00, 0x80].repeat(10);
    let mut both = publish("blast/1", text);
    both.extend(publish("blast/1", &binary));
    let frame = Bytes::from(both);
    let got = messages(&mut Mqtt::new("t"), std::slice::from_ref(&frame));
    assert_eq!(got.len(), 2, "{got:?}");
    // Bytes either way; whether they are text is asked of the body.
    assert!(matches!(got[0].body, Body::Binary(_)), "{:?}", got[0].body);
    assert!(matches!(got[1].body, Body::Binary(_)), "{:?}", got[1].body);
    assert_eq!(got[0].body.as_text().map(str::as_bytes), Some(&text[..]));
    assert_eq!(got[1].body.as_text(), None);
    assert_eq!(got[0].body.as_bytes(), text);
    assert_eq!(got[1].body.as_bytes(), binary);
    for m in &got {
        assert_eq!(m.channel, "blast/1");
        assert!(within(&frame, m.body.as_bytes()), "copied: {m:?}");
    }
}

#[test]
fn an_mqtt_packet_split_across_frames_arrives_whole() {
    let packet = publish("t", &[7u8; 100]);
    let (a, b) = packet.split_at(30);
    let frames = [Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)];
    let got = messages(&mut Mqtt::new("t"), &frames);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_bytes(), [7u8; 100]);
}

#[test]
fn a_nats_body_is_a_slice_of_its_frame() {
    let info = Bytes::from_static(b"INFO {\"server_id\":\"s\",\"client_id\":1}\r\n");
    let body = "a body longer than twenty bytes, shared";
    let mut ops = format!(
        "MSG blast.1 1 {}\r\n{body}\r\nMSG blast.1 1 4\r\n",
        body.len()
    )
    .into_bytes();
    ops.extend_from_slice(b"\xff\xfe\x00\x80\r\n");
    let frame = Bytes::from(ops);
    let got = messages(&mut Nats::new("t"), &[info, frame.clone()]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].body.as_text(), Some(body));
    assert_eq!(got[1].body.as_bytes(), [0xff, 0xfe, 0x00, 0x80]);
    assert_eq!(got[1].body.as_text(), None);
    assert!(got.iter().all(|m| matches!(m.body, Body::Binary(_))));
    for m in &got {
        assert_eq!(m.channel, "blast.1");
        assert!(within(&frame, m.body.as_bytes()), "copied: {m:?}");
    }
}

#[test]
fn a_nats_message_split_across_frames_arrives_whole() {
    let info = Bytes::from_static(b"INFO {\"server_id\":\"s\",\"client_id\":1}\r\n");
    let op = b"MSG s 1 11\r\nhello world\r\n";
    let frames = [
        info,
        Bytes::copy_from_slice(&op[..15]),
        Bytes::copy_from_slice(&op[15..]),
    ];
    let got = messages(&mut Nats::new("t"), &frames);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_text(), Some("hello world"));
}

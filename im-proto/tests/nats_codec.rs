//! NATS operations from the server: sizes the client cannot hold are typed errors, never a
//! panic or an overflow.

mod support;

use im_proto::{Frame, Limits, Nats, Protocol, ProtocolError, ProtocolEvent};

/// Feed `bytes` as one binary frame to a freshly opened NATS protocol; what it returned and
/// emitted.
fn feed(bytes: &[u8]) -> (Result<(), ProtocolError>, Vec<ProtocolEvent>) {
    let limits = Limits::default().max_frame_bytes(4096);
    let mut nats = Nats::new("t");
    let (events, result) = support::in_context(&limits, |cx| {
        nats.on_open(cx);
        nats.on_frame(cx, Frame::Binary(bytes.to_vec().into()))
    });
    (result, events)
}

#[test]
fn a_message_declaring_more_than_the_limit_is_too_large_and_the_stream_restarts() {
    // The fuzzer's find: a size of usize::MAX overflowed the payload's end offset.
    for size in ["18446744073709551615", "4097"] {
        let op = format!("MSG lobby 1 {size}\r\nPo");
        let (result, events) = feed(op.as_bytes());
        assert!(
            matches!(result, Err(ProtocolError::TooLarge { limit: 4096, .. })),
            "{size}: {result:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ProtocolEvent::Reconnect { .. })),
            "{size}: {events:?}"
        );
    }
}

#[test]
fn a_message_within_the_limit_waits_for_its_payload() {
    let (result, _) = feed(b"MSG lobby 1 4096\r\nPo");
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_message_line_of_more_than_six_words_is_refused_without_restarting_the_stream() {
    // Seven words: the line is refused; its size (the last word) still skips its payload, so
    // the stream stays in step and need not start over.
    let (result, events) = feed(b"MSG lobby 1 reply x y 3\r\nabc\r\n");
    assert!(
        matches!(&result, Err(ProtocolError::Malformed(why)) if why == "NATS: MSG line"),
        "{result:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            ProtocolEvent::Reconnect { .. } | ProtocolEvent::Message(_)
        )),
        "{events:?}"
    );
}

/// Q6: JetStream's answer to a publish. A refusal asking again cannot change ends the message
/// (`Refused`, with the stream's reason); a transient one or an answer that is no answer does
/// not (the core's ack timeout sends it again, which the stream stores once).
#[test]
fn a_jetstream_publish_refused_for_good_ends_its_message_and_no_other_answer_does() {
    use im_proto::{JetStream, OutgoingMessage, SendId, SendInfo};

    let limits = Limits::default();
    let mut nats = Nats::new("t").jetstream(JetStream::new("S"));
    let (handshake, _) = support::in_context(&limits, |cx| {
        nats.on_open(cx);
        let info = "INFO {\"server_id\":\"srv\",\"client_id\":7}\r\n";
        nats.on_frame(cx, Frame::Binary(info.as_bytes().to_vec().into()))
            .unwrap();
        nats.on_frame(cx, Frame::Binary(b"PONG\r\n".to_vec().into()))
    });
    assert!(handshake.contains(&ProtocolEvent::Ready), "{handshake:?}");
    let id = SendId(5);
    let send = SendInfo {
        id,
        key: "k-5",
        redelivery: false,
    };
    let (_, frame) = nats
        .encode_message(&OutgoingMessage::text("chat.x", "hi"), send)
        .unwrap();
    let Frame::Binary(hpub) = frame else {
        panic!("{frame:?}")
    };
    // `HPUB subject reply header_size total_size`: the stream answers on `reply`.
    let line = std::str::from_utf8(&hpub[..hpub.iter().position(|b| *b == b'\r').unwrap()])
        .unwrap()
        .to_owned();
    let reply = line.split(' ').nth(2).unwrap().to_owned();
    let mut answer = |payload: &str| {
        let op = format!("MSG {reply} 1 {}\r\n{payload}\r\n", payload.len());
        support::in_context(&limits, |cx| {
            nats.on_frame(cx, Frame::Binary(op.into_bytes().into()))
        })
    };

    for payload in [
        r#"{"error":{"code":503,"description":"JetStream system temporarily unavailable"}}"#,
        "not json",
        "{}",
    ] {
        let (events, result) = answer(payload);
        assert!(result.is_ok(), "{payload}: {result:?}");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ProtocolEvent::Refused { .. } | ProtocolEvent::Acked(_))),
            "{payload}: asked again, not ended: {events:?}"
        );
    }

    let refusal = r#"{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}"#;
    let (events, result) = answer(refusal);
    assert!(result.is_ok(), "{result:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            ProtocolEvent::Refused { id: i, reason }
                if *i == id && reason.contains("message size exceeds maximum allowed")
        )),
        "{events:?}"
    );
}

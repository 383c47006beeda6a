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

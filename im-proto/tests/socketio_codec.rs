//! The Socket.IO decoder on its own, and the crashes the fuzzer found, kept as regressions.

mod support;

use im_proto::{Frame, HeartbeatMode, Limits, Protocol, ProtocolError, ProtocolEvent, SocketIo};

fn feed(p: &mut SocketIo, text: &str) -> (Vec<ProtocolEvent>, Result<(), ProtocolError>) {
    support::in_context(&Limits::default(), |cx| {
        p.on_frame(cx, Frame::Text(text.into()))
    })
}

#[test]
fn multibyte_first_character_is_an_error_not_a_panic() {
    // fuzz/artifacts/socketio_decode/crash-62640401…: "4\u{FFFD}…" split at byte 1 panicked.
    let mut p = SocketIo::new();
    assert!(matches!(
        feed(&mut p, "\u{FFFD}2[\"ev\",{}]").1,
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        feed(&mut p, "4\u{FFFD}2[\"ev\",{}]").1,
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        feed(&mut p, "").1,
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn open_packet_sets_the_heartbeat_and_connects_the_namespace() {
    let mut p = SocketIo::new();
    let (events, r) = feed(
        &mut p,
        r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
    );
    r.unwrap();
    assert!(matches!(
        events[0],
        ProtocolEvent::Heartbeat(HeartbeatMode::ServerDriven { .. })
    ));
    assert_eq!(events[1], ProtocolEvent::Transmit(Frame::Text("40".into())));
    let (events, _) = feed(&mut p, r#"40{"sid":"y"}"#);
    assert_eq!(events, vec![ProtocolEvent::Ready]);
    let (events, _) = feed(&mut p, r#"4212["lobby",{"text":"hi"}]"#);
    assert!(matches!(&events[0], ProtocolEvent::Message(m) if m.channel == "lobby"));
    assert_eq!(
        events[1],
        ProtocolEvent::Transmit(Frame::Text("4312[]".into()))
    );
    let (events, _) = feed(&mut p, "41");
    assert!(matches!(events[0], ProtocolEvent::Kicked { .. }));
}

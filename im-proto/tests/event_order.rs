//! The output stream: a driver that takes events in bulk (`Client::take_events`) sees them in
//! the order `poll_output` alone gives, interleaved with the driver's instructions.

use std::collections::VecDeque;
use std::time::Instant;

use im_proto::{
    Client, Config, ConnId, Frame, HeartbeatMode, LiveChat, OutgoingMessage, Output, Text,
    TransportEvent,
};

/// A livechat client taken through connect, login, a subscription, a send, messages, an
/// error, a server-asked reconnect and close, draining after every step with `drain`.
fn script(mut drain: impl FnMut(&mut Client) -> Vec<Output>) -> Vec<Vec<Output>> {
    let now = Instant::now();
    let config = Config::builder()
        .endpoint("ws://a/ws")
        .heartbeat(HeartbeatMode::Off)
        .seed(7)
        .build()
        .unwrap();
    let mut core = Client::new(config, Box::new(LiveChat::new(1, 1, "k")), now);
    let conn = ConnId(0);
    let frame = |text: &str| TransportEvent::Frame(Frame::Text(Text::from(text)));
    let mut rounds = Vec::new();
    core.connect(now);
    rounds.push(drain(&mut core));
    core.handle_transport(now, conn, TransportEvent::Opened);
    core.handle_transport(now, conn, frame(r#"{"cmd":"auth1","result":{"seed":"s"}}"#));
    rounds.push(drain(&mut core));
    core.subscribe(now, "lobby").unwrap();
    core.send(now, OutgoingMessage::text("lobby", "hi"))
        .unwrap();
    core.handle_transport(now, conn, frame(r#"{"cmd":"auth_ok"}"#));
    rounds.push(drain(&mut core));
    for text in [
        r#"{"cmd":"joined","room":"lobby"}"#,
        r#"{"cmd":"chat","result":{"room":"lobby","message":{"n":1}}}"#,
        r#"{"cmd":"nonsense"}"#,
        r#"{"cmd":"chat","result":{"room":"lobby","message":{"n":2}}}"#,
        r#"{"cmd":"reconnect","result":{"reason":"deploy","after_ms":10}}"#,
    ] {
        core.handle_transport(now, conn, frame(text));
    }
    rounds.push(drain(&mut core));
    core.close(now);
    rounds.push(drain(&mut core));
    rounds
}

#[test]
fn take_events_keeps_the_order_poll_output_gives() {
    let one_by_one = script(|core| std::iter::from_fn(|| core.poll_output()).collect());
    let in_bulk = script(|core| {
        let mut all = Vec::new();
        let mut events = VecDeque::new();
        loop {
            core.take_events(&mut events);
            all.extend(events.drain(..).map(Output::Event));
            match core.poll_output() {
                Some(output) => all.push(output),
                None => break all,
            }
        }
    });
    assert_eq!(one_by_one, in_bulk);
    // Events and instructions interleave within a round, both ways: the order is tested.
    let interleaved = |a: fn(&Output) -> bool, b: fn(&Output) -> bool| {
        one_by_one
            .iter()
            .any(|round| round.windows(2).any(|w| a(&w[0]) && b(&w[1])))
    };
    let event = |o: &Output| matches!(o, Output::Event(_));
    let instruction = |o: &Output| !matches!(o, Output::Event(_));
    assert!(interleaved(event, instruction) && interleaved(instruction, event));
}

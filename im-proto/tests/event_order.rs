//! The output stream: one drain (`Client::poll_output`) gives instructions and events in the
//! order the client made them, and ends in the deadline (`Output::Timeout`); taking the events
//! in bulk (`Client::take_events`) keeps that order.

use std::time::Instant;

use im_proto::{
    Body, Client, Config, ConnId, Context, EncodeError, Event, Frame, HeartbeatMode, LiveChat,
    Message, OutgoingMessage, Output, ProtocolError, ProtocolEvent, SendInfo, Text, TransportEvent,
};

/// A livechat client taken through connect, login, a subscription, a send, messages, an
/// error, a server-asked reconnect and close, draining after every step with `drain`.
fn script(mut drain: impl FnMut(&mut Client) -> Vec<Output>) -> Vec<Vec<Output>> {
    let now = Instant::now();
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://a/ws")
        .heartbeat(HeartbeatMode::Off)
        .seed(7)
        .build()
        .unwrap();
    let mut core = Client::new(config, Box::new(LiveChat::new(1, 1, "k")), now).unwrap();
    let conn = ConnId::from_raw(0);
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

/// Everything before the drain's closing `Timeout`, which must be what `poll_timeout` says, and
/// stays put when polled again.
fn drain(core: &mut Client) -> Vec<Output> {
    let mut all = Vec::new();
    loop {
        match core.poll_output() {
            Output::Timeout(deadline) => {
                assert_eq!(deadline, core.poll_timeout());
                assert_eq!(core.poll_output(), Output::Timeout(deadline));
                return all;
            }
            output => all.push(output),
        }
    }
}

#[test]
fn one_drain_keeps_events_among_instructions_and_ends_in_the_timeout() {
    let rounds = script(drain);
    // Events and instructions interleave within a round, both ways: the order is tested.
    let interleaved = |a: fn(&Output) -> bool, b: fn(&Output) -> bool| {
        rounds
            .iter()
            .any(|round| round.windows(2).any(|w| a(&w[0]) && b(&w[1])))
    };
    let event = |o: &Output| matches!(o, Output::Event(_));
    let instruction = |o: &Output| !matches!(o, Output::Event(_));
    assert!(interleaved(event, instruction) && interleaved(instruction, event));
    let last = rounds.last().unwrap();
    assert!(matches!(
        last.last(),
        Some(Output::Event(Event::Closed { .. }))
    ));
}

/// A driver that takes events in bulk (`take_events` before each `poll_output`) sees exactly
/// the order `poll_output` alone gives.
#[test]
fn taking_events_in_bulk_keeps_the_order() {
    let one_by_one = script(drain);
    let in_bulk = script(|core| {
        let mut all = Vec::new();
        let mut events = std::collections::VecDeque::new();
        loop {
            core.take_events(&mut events);
            all.extend(events.drain(..).map(Output::Event));
            match core.poll_output() {
                Output::Timeout(_) => break all,
                output => all.push(output),
            }
        }
    });
    assert_eq!(one_by_one, in_bulk);
}

/// Emits, per frame, what the frame's words name: `M<x>` a message with body `x`, `T<x>` a
/// frame to transmit, `K` a kick.
struct Scripted;

impl im_proto::Protocol for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn on_open(&mut self, cx: &mut Context<'_>) {
        cx.emit(ProtocolEvent::Ready);
    }
    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let Frame::Text(text) = frame else {
            return Err(ProtocolError::UnexpectedFrame("binary"));
        };
        for word in text.split(' ') {
            match word.split_at(1) {
                ("M", body) => cx.emit(ProtocolEvent::Message(Message::new(
                    "c",
                    Body::Text(body.into()),
                ))),
                ("T", frame) => cx.transmit(Frame::Text(frame.into())),
                ("K", _) => cx.emit(ProtocolEvent::Kicked { reason: "k".into() }),
                _ => return Err(ProtocolError::Malformed(word.into())),
            }
        }
        Ok(())
    }
    fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
        cx.transmit(Frame::Text("ping".into()));
    }
    fn on_send(
        &mut self,
        _cx: &mut Context<'_>,
        _msg: &OutgoingMessage,
        _send: SendInfo<'_>,
    ) -> Result<(), EncodeError> {
        Err(EncodeError::Other("receive only".into()))
    }
    fn on_subscribe(&mut self, _cx: &mut Context<'_>, _channel: &str) -> Result<(), EncodeError> {
        Ok(())
    }

    fn on_unsubscribe(&mut self, _cx: &mut Context<'_>, _channel: &str) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// What an output stream says, in short: `M<x>`, `T<x>`, `K` (the kick's event), `D` (a
/// disconnect), other events by name.
fn short(output: &Output) -> String {
    match output {
        Output::Event(Event::Message(m)) => format!("M{}", m.body.as_text().unwrap_or("?")),
        Output::Transmit {
            frame: Frame::Text(t),
            ..
        } => format!("T{t}"),
        Output::Event(Event::Kicked { .. }) => "K".into(),
        Output::Disconnect { .. } => "D".into(),
        Output::Event(e) => format!("{e:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap()
            .into(),
        other => format!("{other:?}"),
    }
}

/// A message that comes first in its frame's output skips the protocol's event list and goes
/// straight to the user's queue (`Context::emit`); it must still come out exactly where the
/// protocol put it among frames to send, later messages and a kick.
#[test]
fn a_message_first_in_its_input_keeps_its_place() {
    let now = Instant::now();
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://a/ws")
        .heartbeat(HeartbeatMode::Off)
        .build()
        .unwrap();
    let mut core = Client::new(config, Box::new(Scripted), now).unwrap();
    let conn = ConnId::from_raw(0);
    core.connect(now);
    core.handle_transport(now, conn, TransportEvent::Opened);
    drain(&mut core);
    for text in ["Ma Tb Mc", "Td Me", "Mf Mg", "Mh K Mi"] {
        core.handle_transport(now, conn, TransportEvent::Frame(Frame::Text(text.into())));
    }
    let outputs: Vec<String> = drain(&mut core).iter().map(short).collect();
    assert_eq!(
        outputs,
        ["Ma", "Tb", "Mc", "Td", "Me", "Mf", "Mg", "Mh", "D", "K", "Closed"],
        "{outputs:?}"
    );
}

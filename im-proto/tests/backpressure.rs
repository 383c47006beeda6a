//! H2, Q7 and backpressure: while the driver does not read the socket (its user is behind on
//! events), silence proves nothing and the link is not declared dead; reading again gives it a
//! fresh window; messages wait in the outbox meanwhile and go out, in order, on resume.

use std::time::Duration;

use im_proto::sim::{Harness, ScriptedPeer};
use im_proto::{Cause, Config, Event, Frame, HeartbeatMode, OutgoingMessage, SendError, State};

mod support;

/// A client of `config` connected to a toy server that greets and answers nothing else
/// (`acks`: whether the toy asks for acks, which then never come), `Ready`.
fn ready(config: im_proto::ConfigBuilder, acks: bool) -> Harness {
    let config = config.seed(1).endpoint("ws://x/ws").build().unwrap();
    let peer = ScriptedPeer::new().greeting(|_| vec![Frame::Text("WELCOME".into())]);
    let sim = support::toy_connected(config, acks, peer);
    assert_eq!(sim.client.state(), State::Ready);
    sim
}

#[test]
fn h2_is_suspended_while_the_driver_is_not_reading() {
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_secs(1));
    let mut sim = ready(
        Config::builder().heartbeat(HeartbeatMode::ClientDriven { interval, timeout }),
        false,
    );
    sim.peer.silent = true;

    sim.client.set_reading(sim.clock.now(), false);
    sim.run_for((interval + timeout) * 10);
    assert_eq!(
        sim.client.state(),
        State::Ready,
        "silence while not reading is not a dead link"
    );

    let resumed = sim.clock.now();
    sim.client.set_reading(resumed, true);
    sim.run_for((interval + timeout) * 2);
    let dead = sim.timed_events().find_map(|(t, e)| {
        matches!(
            e,
            Event::Disconnected {
                cause: Cause::DeadLink
            }
        )
        .then_some(t)
    });
    assert_eq!(
        dead,
        Some(resumed + interval + timeout),
        "a fresh window from the resume"
    );
}

/// Q7: while the driver is not reading (its user is behind on events), messages wait in the
/// outbox, so their fates cannot pile up among the unread events, and a full outbox says so
/// at `send`; reading again sends what waited, in order.
#[test]
fn q7_messages_wait_while_the_driver_is_not_reading_and_go_out_in_order_after() {
    // A toy without acks: each message is `Sent` once written.
    let mut sim = ready(
        Config::builder().limits(im_proto::Limits::default().outbox_messages(3)),
        false,
    );
    let sent = |sim: &Harness| {
        sim.events()
            .filter_map(|e| match e {
                Event::Sent { id } => Some(id.0),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    sim.client.set_reading(sim.clock.now(), false);
    let ids: Vec<u64> = (0..3)
        .map(|n| {
            let msg = OutgoingMessage::text("lobby", format!("m{n}"));
            sim.client.send(sim.clock.now(), msg).unwrap().0
        })
        .collect();
    let full = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("lobby", "m3"));
    assert!(
        matches!(full, Err(SendError::OutboxFull { messages: 3, .. })),
        "{full:?}"
    );
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sent(&sim), Vec::<u64>::new(), "nothing went out unread");
    assert_eq!(sim.client.state(), State::Ready);

    sim.client.set_reading(sim.clock.now(), true);
    sim.settle();
    assert_eq!(sent(&sim), ids, "what waited went out, in order");
    sim.client
        .send(sim.clock.now(), OutgoingMessage::text("lobby", "m4"))
        .unwrap();
}

/// Q7 and Q3: no ack can be read while the driver does not read, so none is overdue meanwhile;
/// on resume every ack awaited gets a full `ack_timeout` again, and only then does the message
/// time out (here with no retries left).
#[test]
fn q7_an_ack_timeout_waits_while_the_driver_is_not_reading() {
    let ack_timeout = Duration::from_secs(1);
    // The server never acks.
    let mut sim = ready(
        Config::builder().ack_timeout(ack_timeout).ack_retries(0),
        true,
    );
    let id = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("lobby", "m"))
        .unwrap();
    sim.settle();

    sim.client.set_reading(sim.clock.now(), false);
    sim.run_for(ack_timeout * 30);
    let timed_out = |sim: &Harness| {
        sim.timed_events().find_map(|(t, e)| {
            matches!(e, Event::Undelivered { id: i, .. } if *i == id).then_some(t)
        })
    };
    assert_eq!(
        timed_out(&sim),
        None,
        "no ack could be read: none was overdue"
    );

    let resumed = sim.clock.now();
    sim.client.set_reading(resumed, true);
    sim.run_for(ack_timeout * 2);
    assert_eq!(
        timed_out(&sim),
        Some(resumed + ack_timeout),
        "a full ack timeout from the resume"
    );
}

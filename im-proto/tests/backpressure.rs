//! H2 and backpressure: while the driver does not read the socket (its user is behind on
//! events), silence proves nothing and the link is not declared dead; reading again gives it a
//! fresh window.

use std::time::{Duration, Instant};

use im_proto::sim::{Harness, ScriptedPeer};
use im_proto::{Cause, Config, Event, Frame, HeartbeatMode, State};

mod support;
use support::toy::Toy;

#[test]
fn h2_is_suspended_while_the_driver_is_not_reading() {
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_secs(1));
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://x/ws")
        .heartbeat(HeartbeatMode::ClientDriven { interval, timeout })
        .build()
        .unwrap();
    let peer = ScriptedPeer::new().greeting(|_| vec![Frame::Text("WELCOME".into())]);
    let mut sim = Harness::new(config, Box::new(Toy::new(false)), peer, Instant::now()).unwrap();
    sim.client.connect(sim.clock.now());
    sim.settle();
    assert_eq!(sim.client.state(), State::Ready);
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

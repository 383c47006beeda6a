//! Protocols and helpers shared by the im-proto integration tests.
#![allow(dead_code)]

pub mod packets;
pub mod pinger;
pub mod toy;
pub mod vendors;

use std::time::Instant;

use im_proto::sim::{Harness, ScriptedPeer};
use im_proto::{Config, Context, HeartbeatMode, Limits, ProtocolEvent};

/// A client of `config` speaking the toy protocol (`acks`: whether it asks for acks) to `peer`,
/// asked to connect and settled.
pub fn toy_connected(config: Config, acks: bool, peer: ScriptedPeer) -> Harness {
    let toy = Box::new(toy::Toy::new(acks));
    let mut sim = Harness::new(config, toy, peer, Instant::now()).unwrap();
    sim.client.connect(sim.clock.now());
    sim.settle();
    sim
}

/// Run `f` (a protocol call) with a fresh context under `limits`; the events it emitted and
/// what it returned.
pub fn in_context<T>(
    limits: &Limits,
    f: impl FnOnce(&mut Context<'_>) -> T,
) -> (Vec<ProtocolEvent>, T) {
    let mut events = Vec::new();
    let mut cx = Context::new(Instant::now(), HeartbeatMode::Off, limits, &mut events);
    let r = f(&mut cx);
    (events, r)
}

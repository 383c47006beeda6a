//! Hot switch in virtual time: the old vendor acks what it has before the client leaves it;
//! messages sent meanwhile wait and go to the new vendor; subscriptions follow; nothing is sent
//! to both (unless the old vendor never acks, then at-least-once after the deadline).

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use im_proto::sim::{Harness, Reply, ScriptedPeer};
use im_proto::{Config, Event, Frame, OutgoingMessage, State};
use support::toy::{parse_client, ClientFrame, Toy};

/// A peer whose acks can be held back, to have messages in flight at the switch.
fn peer(hold_acks: Rc<RefCell<Vec<u32>>>, holding: Rc<RefCell<bool>>) -> ScriptedPeer {
    ScriptedPeer::new()
        .greeting(|_| vec![Frame::Text("WELCOME".into())])
        .respond(move |_, f| match parse_client(f) {
            Some(ClientFrame::Msg { packet, .. }) if *holding.borrow() => {
                hold_acks.borrow_mut().push(packet);
                vec![]
            }
            Some(ClientFrame::Msg { packet, .. }) => vec![Reply::text(format!("ACK {packet}"))],
            Some(ClientFrame::Sub(ch)) => vec![Reply::text(format!("SUBOK {ch}"))],
            _ => vec![],
        })
}

/// A client connecting to the old vendor, whose acks are held back while `holding` is set.
struct OldVendor {
    sim: Harness,
    /// Packet ids whose acks were held back.
    held: Rc<RefCell<Vec<u32>>>,
    holding: Rc<RefCell<bool>>,
}

fn on_old_vendor() -> OldVendor {
    let held = Rc::new(RefCell::new(Vec::new()));
    let holding = Rc::new(RefCell::new(true));
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://old/ws")
        .build()
        .unwrap();
    let mut sim = Harness::new(
        config,
        Box::new(Toy::new(true)),
        peer(held.clone(), holding.clone()),
        Instant::now(),
    )
    .unwrap();
    sim.client.connect(sim.clock.now());
    OldVendor { sim, held, holding }
}

#[test]
fn switch_waits_for_old_acks_then_moves_queued_messages_and_subscriptions() {
    let OldVendor {
        mut sim,
        held,
        holding,
    } = on_old_vendor();
    sim.client.subscribe(sim.clock.now(), "room").unwrap();
    sim.settle();
    let now = sim.clock.now();
    let in_flight = sim
        .client
        .send(now, OutgoingMessage::text("room", "one"))
        .unwrap();
    sim.settle();
    assert_eq!(held.borrow().len(), 1, "in flight, unacked");

    sim.client
        .switch_protocol(now, Box::new(Toy::new(true)), vec!["ws://new/ws".into()])
        .unwrap();
    let queued = sim
        .client
        .send(now, OutgoingMessage::text("room", "two"))
        .unwrap();
    sim.settle();
    assert_eq!(sim.peer.connects.len(), 1, "still draining the old vendor");
    assert_eq!(sim.client.state(), State::Ready);

    // The old vendor acks: the switch goes ahead, and the queued message goes to the new one.
    *holding.borrow_mut() = false;
    let packet = held.borrow()[0];
    sim.server_send(Frame::Text(format!("ACK {packet}").into()));
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.peer.connects.len(), 2);
    assert_eq!(sim.peer.connects[1].2.url(), "ws://new/ws");
    assert!(sim.events().any(|e| *e == Event::Acked { id: in_flight }));
    assert!(sim.events().any(|e| *e == Event::Acked { id: queued }));
    let sent: Vec<(u64, String)> = sim
        .peer
        .received
        .iter()
        .filter_map(|(_, c, f)| match parse_client(f) {
            Some(ClientFrame::Msg { body, .. }) => Some((c.get(), body)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![(0, "one".into()), (1, "two".into())],
        "each message to one vendor"
    );
    assert!(sim
        .peer
        .received
        .iter()
        .any(|(_, c, f)| c.get() == 1 && parse_client(f) == Some(ClientFrame::Sub("room".into()))));
}

#[test]
fn switch_gives_up_waiting_at_its_deadline() {
    let OldVendor { mut sim, .. } = on_old_vendor();
    sim.settle();
    let now = sim.clock.now();
    sim.client
        .send(now, OutgoingMessage::text("room", "stuck"))
        .unwrap();
    sim.settle();
    sim.client
        .switch_protocol(now, Box::new(Toy::new(true)), vec!["ws://new/ws".into()])
        .unwrap();
    let limit = sim.client.config().handshake_timeout;
    sim.run_for(limit - Duration::from_millis(1));
    assert_eq!(sim.peer.connects.len(), 1);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.peer.connects.len(), 2, "moved at the deadline");
    // The unacked message went again, to the new vendor (at-least-once across the move).
    let to_new = sim
        .peer
        .received
        .iter()
        .filter(|(_, c, f)| {
            c.get() == 1 && matches!(parse_client(f), Some(ClientFrame::Msg { .. }))
        })
        .count();
    assert_eq!(to_new, 1);
}

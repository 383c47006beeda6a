//! Q6 refused: a message the server refuses for good ends at once, `Undelivered{Refused}` with
//! the server's reason, maybe delivered only when an earlier transmission went unanswered.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use im_proto::sim::{Harness, Reply, ScriptedPeer};
use im_proto::{Config, Event, Frame, OutgoingMessage, SendId, State, Undelivered};

mod support;
use support::toy::{parse_client, ClientFrame};

const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// A client with acks on, connected to a toy server that answers every message's first
/// `silent` transmissions with nothing and the next with a refusal.
fn refusing_after(silent: u32) -> Harness {
    let config = Config::builder()
        .seed(1)
        .endpoint("ws://x/ws")
        .ack_timeout(ACK_TIMEOUT)
        .ack_retries(3)
        .build()
        .unwrap();
    let seen = Rc::new(Cell::new(0));
    let peer = ScriptedPeer::new()
        .greeting(|_| vec![Frame::Text("WELCOME".into())])
        .respond(move |_, frame| match parse_client(frame) {
            Some(ClientFrame::Msg { packet, .. }) => {
                seen.set(seen.get() + 1);
                if seen.get() > silent {
                    vec![Reply::text(format!("NACK {packet}"))]
                } else {
                    vec![]
                }
            }
            _ => vec![],
        });
    let sim = support::toy_connected(config, true, peer);
    assert_eq!(sim.client.state(), State::Ready);
    sim
}

/// When `id` ended, why, and whether it may have been delivered.
fn fate(sim: &Harness, id: SendId) -> Option<(Instant, Undelivered, bool)> {
    sim.timed_events().find_map(|(t, e)| match e {
        Event::Undelivered {
            id: i,
            reason,
            maybe_delivered,
            ..
        } if *i == id => Some((t, reason.clone(), *maybe_delivered)),
        _ => None,
    })
}

#[test]
fn q6_a_refusal_of_the_only_transmission_ends_the_message_at_once_and_not_delivered() {
    let mut sim = refusing_after(0);
    let sent_at = sim.clock.now();
    let id = sim
        .client
        .send(sent_at, OutgoingMessage::text("lobby", "m"))
        .unwrap();
    sim.settle();
    let (at, reason, maybe_delivered) = fate(&sim, id).expect("ended");
    assert!(at < sent_at + ACK_TIMEOUT, "before any ack timeout");
    assert!(
        matches!(&reason, Undelivered::Refused { reason } if reason.contains("refused")),
        "{reason:?}"
    );
    assert!(!maybe_delivered);
    // Nothing else becomes of it: no retransmission, no second fate.
    sim.run_for(ACK_TIMEOUT * 10);
    let fates = sim
        .events()
        .filter(
            |e| matches!(e, Event::Undelivered { id: i, .. } | Event::Acked { id: i } if *i == id),
        )
        .count();
    assert_eq!(fates, 1);
}

#[test]
fn q6_a_refusal_after_an_unanswered_transmission_may_have_been_delivered() {
    let mut sim = refusing_after(1);
    let id = sim
        .client
        .send(sim.clock.now(), OutgoingMessage::text("lobby", "m"))
        .unwrap();
    sim.run_for(ACK_TIMEOUT * 2);
    let (_, reason, maybe_delivered) = fate(&sim, id).expect("ended at the retry's refusal");
    assert!(matches!(reason, Undelivered::Refused { .. }), "{reason:?}");
    assert!(maybe_delivered, "the first transmission went unanswered");
}

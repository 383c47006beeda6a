//! MQTT 3.1.1 codec: every packet survives encode → decode, split at any byte; garbage is a
//! typed error, never a panic.

use im_proto::protocols::mqtt::{CodecError, Packet};
use proptest::prelude::*;

fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9/]{1,40}"
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        (
            topic(),
            any::<u16>(),
            any::<bool>(),
            prop::option::of(topic()),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40))
        )
            .prop_map(
                |(client_id, keep_alive, clean_session, username, password)| Packet::Connect {
                    client_id,
                    keep_alive,
                    clean_session,
                    username,
                    password
                }
            ),
        (any::<bool>(), 0u8..6).prop_map(|(session_present, code)| Packet::ConnAck {
            session_present,
            code
        }),
        (
            any::<bool>(),
            0u8..2,
            any::<bool>(),
            topic(),
            1u16..,
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(dup, qos, retain, topic, id, payload)| Packet::Publish {
                dup,
                qos,
                retain,
                topic: topic.into(),
                packet_id: (qos > 0).then_some(id),
                payload: payload.into()
            }),
        any::<u16>().prop_map(|packet_id| Packet::PubAck { packet_id }),
        (any::<u16>(), prop::collection::vec((topic(), 0u8..2), 1..4))
            .prop_map(|(packet_id, topics)| Packet::Subscribe { packet_id, topics }),
        (
            any::<u16>(),
            prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0x80)], 1..4)
        )
            .prop_map(|(packet_id, codes)| Packet::SubAck { packet_id, codes }),
        (any::<u16>(), prop::collection::vec(topic(), 1..4))
            .prop_map(|(packet_id, topics)| Packet::Unsubscribe { packet_id, topics }),
        any::<u16>().prop_map(|packet_id| Packet::UnsubAck { packet_id }),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

proptest! {
    #[test]
    fn round_trip(packets in prop::collection::vec(packet(), 1..6), cut in any::<prop::sample::Index>()) {
        let mut wire = Vec::new();
        for p in &packets {
            p.encode(&mut wire);
        }
        // Split the stream anywhere: the decoder must wait for the rest, then read on.
        let cut = cut.index(wire.len() + 1);
        let mut buf = wire[..cut].to_vec();
        let mut decoded = Vec::new();
        let mut used = 0;
        loop {
            match Packet::decode(&buf[used..], 1 << 20).unwrap() {
                Some((p, n)) => { decoded.push(p); used += n; }
                None => {
                    if buf.len() == wire.len() { break; }
                    buf.extend_from_slice(&wire[cut..]);
                }
            }
        }
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn garbage_is_an_error_or_a_packet_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Packet::decode(&bytes, 1 << 20);
    }
}

#[test]
fn limits_and_reserved_values_are_typed_errors() {
    // Remaining length with a fifth continuation byte.
    assert_eq!(
        Packet::decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], 1 << 30),
        Err(CodecError::Length)
    );
    // A packet announcing more than the limit is refused before it is buffered.
    assert!(matches!(
        Packet::decode(&[0x30, 0xff, 0xff, 0x7f], 1024),
        Err(CodecError::TooLarge { .. })
    ));
    // QoS 3 does not exist; QoS 2 is not supported by this client.
    assert_eq!(Packet::decode(&[0x36, 0x00], 1024), Err(CodecError::Qos(3)));
    // SUBSCRIBE must carry flags 0b0010.
    assert!(matches!(
        Packet::decode(&[0x80, 0x02, 0x00, 0x01], 1024),
        Err(CodecError::Flags { .. })
    ));
    // A topic that is not UTF-8.
    assert_eq!(
        Packet::decode(&[0x30, 0x03, 0x00, 0x01, 0xff], 1024),
        Err(CodecError::Utf8)
    );
}

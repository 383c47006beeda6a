//! Any bytes a broker might send, split into frames anywhere, through the MQTT codec and the
//! protocol: never a panic; a decoded packet re-encodes to the bytes it came from.

#![no_main]

mod common;

use im_proto::protocols::mqtt::Packet;
use im_proto::{Frame, Mqtt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The codec alone: whatever decodes must encode back to the same bytes.
    if let Ok(Some((packet, used))) = Packet::decode(data, 1 << 20) {
        let mut again = Vec::new();
        packet.encode(&mut again);
        // Lengths may be encoded non-minimally on the wire; the packet must survive a re-read.
        let (reread, _) = Packet::decode(&again, 1 << 20).unwrap().unwrap();
        assert_eq!(reread, packet);
        assert!(used <= data.len());
    }
    // The protocol: the first byte says where frames split; then the same bytes as text.
    common::feed_split_in_two(&mut Mqtt::new("fuzz"), data, |p, cx, rest| {
        let _ = p.on_frame(
            cx,
            Frame::Text(String::from_utf8_lossy(rest).into_owned().into()),
        );
    });
});

//! Any bytes a broker might send, split into frames anywhere, through the MQTT codec and the
//! protocol: never a panic; a decoded packet re-encodes to the bytes it came from.

#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use im_proto::protocols::mqtt::Packet;
use im_proto::{Context, Frame, HeartbeatMode, Limits, Mqtt, Protocol};
use libfuzzer_sys::fuzz_target;

fn origin() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

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
    // The protocol: the first byte says where frames split.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut p = Mqtt::new("fuzz");
    let limits = Limits { max_frame_bytes: 4096, ..Limits::default() };
    let mut events = Vec::new();
    let mut cx = Context::new(origin(), HeartbeatMode::default(), &limits, &mut events);
    p.on_open(&mut cx);
    let cut = usize::from(split).min(rest.len());
    for chunk in [&rest[..cut], &rest[cut..]] {
        let _ = p.on_frame(&mut cx, Frame::Binary(chunk.to_vec()));
    }
    let _ = p.on_frame(&mut cx, Frame::Text(String::from_utf8_lossy(rest).into_owned().into()));
});

//! Any bytes a NATS server might send, split into frames anywhere, through the NATS protocol:
//! never a panic, and the partial-operation buffer stays within the frame limit. The same bytes
//! then go to a JetStream session past its handshake with a consumer request out, so that
//! answers on its inbox (`_INBOX.imS-1.c0`, `.p7`) and `$JS.ACK` deliveries are reached.

#![no_main]

mod common;

use im_proto::{Context, Frame, HeartbeatMode, JetStream, Limits, Nats, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::feed_split_in_two(&mut Nats::new("fuzz"), data, |_, _, _| {});

    let mut js = Nats::new("fuzz").jetstream(JetStream::new("S"));
    let limits = Limits::default().max_frame_bytes(4096);
    let mut events = Vec::new();
    let mut cx = Context::new(
        common::origin(),
        HeartbeatMode::default(),
        &limits,
        &mut events,
    );
    js.on_open(&mut cx);
    let hello = b"INFO {\"server_id\":\"S\",\"client_id\":1}\r\nPONG\r\n".to_vec();
    let _ = js.on_frame(&mut cx, Frame::Binary(hello.into()));
    let _ = js.on_subscribe(&mut cx, "chat.a");
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split).min(rest.len());
    for chunk in [&rest[..cut], &rest[cut..]] {
        let _ = js.on_frame(&mut cx, Frame::Binary(chunk.to_vec().into()));
    }
    js.on_heartbeat(&mut cx);
});

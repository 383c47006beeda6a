//! Any bytes a NATS server might send, split into frames anywhere, through the NATS protocol:
//! never a panic, and the partial-operation buffer stays within the frame limit.

#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use im_proto::{Context, Frame, HeartbeatMode, Limits, Nats, Protocol};
use libfuzzer_sys::fuzz_target;

fn origin() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut p = Nats::new("fuzz");
    let limits = Limits { max_frame_bytes: 4096, ..Limits::default() };
    let mut events = Vec::new();
    let mut cx = Context::new(origin(), HeartbeatMode::default(), &limits, &mut events);
    p.on_open(&mut cx);
    let cut = usize::from(split).min(rest.len());
    for chunk in [&rest[..cut], &rest[cut..]] {
        let _ = p.on_frame(&mut cx, Frame::Binary(chunk.to_vec()));
    }
});

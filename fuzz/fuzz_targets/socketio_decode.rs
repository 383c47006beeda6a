//! Any text a Socket.IO server might send, through the Socket.IO protocol: never a panic.

#![no_main]

mod common;

use common::origin;
use im_proto::{Context, Frame, HeartbeatMode, Limits, Protocol, SocketIo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = SocketIo::new();
    let limits = Limits::default();
    let mut events = Vec::new();
    let mut cx = Context::new(origin(), HeartbeatMode::default(), &limits, &mut events);
    p.on_open(&mut cx);
    // Several packets per input, separated by newlines (each a frame).
    for line in String::from_utf8_lossy(data).split('\n') {
        let _ = p.on_frame(&mut cx, Frame::Text(line.into()));
    }
    let _ = p.on_frame(&mut cx, Frame::Binary(data.to_vec().into()));
});

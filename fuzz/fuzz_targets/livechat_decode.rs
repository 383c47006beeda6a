//! Any frame a server might send, through the livechat decoder, and any channel or body through
//! its encoders: never a panic, every failure a typed error. The one-pass envelope decoder must
//! answer as serde does wherever it answers.

#![no_main]

mod common;

use common::origin;
use im_proto::{
    Body, Context, Frame, HeartbeatMode, Limits, LiveChat, OutgoingMessage, Protocol, SendId,
    SendInfo,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut p = LiveChat::new(1, 2, "key");
    let limits = Limits::default();
    let mut events = Vec::new();
    let frame = match selector % 3 {
        0 => {
            let text = String::from_utf8_lossy(rest).into_owned();
            for depth in [limits.max_json_depth, 2] {
                assert!(
                    im_proto::protocols::livechat::envelope_decoders_agree(&text, depth),
                    "scanner and serde disagree on {text:?}"
                );
            }
            Frame::Text(text.into())
        }
        1 => Frame::Binary(rest.to_vec().into()),
        _ => {
            // Exercise the encoders with hostile channels and bodies too.
            let text = String::from_utf8_lossy(rest).into_owned();
            let _ = p.encode_subscribe(&text);
            let _ = p.encode_unsubscribe(&text);
            for body in [
                Body::Text(text.as_str().into()),
                Body::json(&text).expect("a string serializes"),
                Body::Binary(rest.to_vec().into()),
            ] {
                let msg = OutgoingMessage::new(text.clone(), body);
                let info = SendInfo {
                    id: SendId(1),
                    key: &text,
                    redelivery: false,
                };
                let _ = p.validate(&msg);
                let _ = p.encode_message(&msg, info);
            }
            Frame::Text(text.into())
        }
    };
    let mut cx = Context::new(origin(), HeartbeatMode::default(), &limits, &mut events);
    p.on_open(&mut cx);
    let _ = p.on_frame(&mut cx, frame);
});

//! What the decoder targets share.

// Each target uses part of this.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Instant;

use im_proto::{Context, Frame, HeartbeatMode, Limits, Protocol};

/// One instant for the whole run: decoders are handed a `now` but must not depend on it.
pub fn origin() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

/// For binary stream protocols: open `p` (frames up to 4 KiB) and feed it the bytes after
/// `data`'s first byte as two binary frames, cut where that byte says, so the decoder meets its
/// packets broken anywhere. Then `and_then` gets the same context and those bytes.
pub fn feed_split_in_two(
    p: &mut dyn Protocol,
    data: &[u8],
    and_then: impl FnOnce(&mut dyn Protocol, &mut Context<'_>, &[u8]),
) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits::default().max_frame_bytes(4096);
    let mut events = Vec::new();
    let mut cx = Context::new(origin(), HeartbeatMode::default(), &limits, &mut events);
    p.on_open(&mut cx);
    let cut = usize::from(split).min(rest.len());
    for chunk in [&rest[..cut], &rest[cut..]] {
        let _ = p.on_frame(&mut cx, Frame::Binary(chunk.to_vec().into()));
    }
    and_then(p, &mut cx, rest);
}

//! Any bytes a NATS server might send, split into frames anywhere, through the NATS protocol:
//! never a panic, and the partial-operation buffer stays within the frame limit.

#![no_main]

mod common;

use im_proto::Nats;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::feed_split_in_two(&mut Nats::new("fuzz"), data, |_, _, _| {});
});

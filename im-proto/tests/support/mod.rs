//! Protocols and helpers shared by the im-proto integration tests.
#![allow(dead_code)]

pub mod packets;
pub mod pinger;
pub mod toy;

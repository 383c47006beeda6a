//! The numbers behind the rules of the crate docs, for tests that check a client against them
//! (as `tests/rules.rs` does): what R1's backoff may wait at most after the n-th failure, and
//! the least it ever waits.

pub use crate::backoff::{ceiling as backoff_ceiling, MIN_DELAY};

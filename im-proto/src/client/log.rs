//! What the client tells `tracing` about its life: every connect, loss, reconnect, dead link,
//! kick, give-up and close, with fields a log search can filter on.
//!
//! The core never says which client it is: the driver enters the client's span (its id, name
//! and vendor) around every call into the core, so each line carries it. Fields hold what
//! events hold, and events never hold a credential (endpoints print without their query;
//! protocols are named, never printed).

use crate::output::{Cause, Event};

/// Whether `event` is part of the connection's life (messages, fates and heartbeats are not:
/// there are too many, and the application sees them).
#[inline]
pub(super) fn is_lifecycle(event: &Event) -> bool {
    !matches!(
        event,
        Event::Message(_) | Event::Sent { .. } | Event::Acked { .. } | Event::Heartbeat { .. }
    )
}

/// Log a lifecycle event (see [`is_lifecycle`]).
#[cold]
#[inline(never)]
pub(super) fn lifecycle(event: &Event) {
    match event {
        Event::Connected {
            endpoint,
            recovered,
        } => tracing::info!(%endpoint, recovered, "connected"),
        Event::Disconnected { cause } if *cause == Cause::DeadLink => {
            tracing::warn!(
                rule = "H2",
                "dead link: no inbound traffic within the deadline"
            )
        }
        Event::Disconnected { cause } => tracing::info!(?cause, "disconnected"),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
        } => tracing::info!(
            attempt,
            delay_ms = delay.as_millis() as u64,
            ?cause,
            "reconnecting"
        ),
        Event::Kicked { reason } => tracing::warn!(reason, "kicked: the server ended the session"),
        Event::GaveUp { attempts } => tracing::warn!(attempts, rule = "R3", "gave up"),
        Event::Error(error) => tracing::warn!(%error, "error"),
        Event::Closed { reason } => tracing::info!(?reason, "closed"),
        _ => {}
    }
}

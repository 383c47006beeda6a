//! A vendor switch that waits for the old vendor's acks before leaving it.

use crate::protocol::Protocol;
use crate::transport::Endpoint;

/// Where to move once the old vendor has acked what it has (or the `Switch` timer fires).
pub(crate) struct PendingSwitch {
    pub protocol: Box<dyn Protocol>,
    pub endpoints: Vec<Endpoint>,
}

impl std::fmt::Debug for PendingSwitch {
    // The protocol may hold credentials: name it, never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSwitch")
            .field("protocol", &self.protocol.name())
            .finish_non_exhaustive()
    }
}

/// [`Client::switch_protocol`](crate::Client::switch_protocol) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    #[error("the client is closed")]
    Closed,
    #[error("no endpoint given for the new vendor")]
    NoEndpoints,
    #[error("{given} endpoints given, the limit is {max}")]
    TooManyEndpoints { given: usize, max: usize },
}

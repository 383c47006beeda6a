//! Vendor protocols, each behind a feature.

#[cfg(feature = "livechat")]
pub mod livechat;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "socketio")]
pub mod socketio;

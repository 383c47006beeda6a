//! Vendor protocols, each behind a feature.

#[cfg(feature = "livechat")]
pub mod livechat;

//! Vendor protocols, each behind a feature.

/// The `Protocol` methods that hand a vendor's codec output to the context, for a vendor type
/// with `heartbeat_frame`, `encode_message`, `encode_subscribe` and `encode_unsubscribe` (each
/// vendor's public codec): written once, expanded inside each `impl Protocol`.
#[cfg(any(
    feature = "livechat",
    feature = "mqtt",
    feature = "nats",
    feature = "socketio"
))]
macro_rules! transmit_through_codec {
    () => {
        fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
            let frame = self.heartbeat_frame(cx.now);
            cx.transmit(frame);
        }

        fn on_send(
            &mut self,
            cx: &mut Context<'_>,
            msg: &OutgoingMessage,
            send: SendInfo<'_>,
        ) -> Result<(), EncodeError> {
            let (delivery, frame) = self.encode_message(msg, send)?;
            cx.transmit_message(frame, delivery);
            Ok(())
        }

        fn on_subscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError> {
            if let Some(frame) = self.encode_subscribe(channel)? {
                cx.transmit(frame);
            }
            Ok(())
        }

        fn on_unsubscribe(
            &mut self,
            cx: &mut Context<'_>,
            channel: &str,
        ) -> Result<(), EncodeError> {
            if let Some(frame) = self.encode_unsubscribe(channel)? {
                cx.transmit(frame);
            }
            Ok(())
        }
    };
}

#[cfg(any(feature = "livechat", feature = "socketio"))]
mod json_scan;
#[cfg(feature = "livechat")]
pub mod livechat;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "socketio")]
pub mod socketio;

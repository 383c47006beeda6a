//! Opening the WebSocket the core asked for, and translating between tungstenite and im-proto:
//! frames both ways, and failures as typed [`TransportError`]s.

use std::io;
use std::sync::Arc;

#[cfg(not(target_arch = "wasm32"))]
use im_proto::{CertificateError, TlsError};
use im_proto::{Endpoint, Frame, ProtocolError, TransportError, TransportEvent};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::Message;

#[cfg(not(target_arch = "wasm32"))]
use crate::destination::Unresolved;
use crate::runtime::{Runtime, TlsConfig};
#[cfg(not(target_arch = "wasm32"))]
use crate::tls::DefaultTlsError;

/// Request headers, produced fresh for every (re)connect so expiring tokens can be renewed.
pub type HeaderFn = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// What the driver needs to open sockets.
#[derive(Clone)]
pub(crate) struct Dialer {
    /// The application's TLS configuration, else the default one; `None` when this build has
    /// no default (why is asked again, from the cache, when a `wss://` dial needs it). Not the
    /// `Result` itself: its error is several times the size of the pointer, and every idle
    /// connection carries a `Dialer`.
    pub tls: Option<Arc<TlsConfig>>,
    pub headers: Option<HeaderFn>,
    /// The core's frame limit, from which [`ws_config`] derives the socket's: kept rather than
    /// the 64-byte config every idle connection would carry.
    pub max_frame_bytes: usize,
}

impl Dialer {
    /// The upgrade request: the endpoint, the subprotocols, and fresh headers.
    fn request(
        &self,
        endpoint: &Endpoint,
        subprotocols: &[&str],
    ) -> Result<Request, TransportError> {
        let invalid = TransportError::InvalidRequest;
        let mut request = endpoint
            .url()
            .into_client_request()
            .map_err(|e| invalid(format!("invalid endpoint {endpoint}: {e}")))?;
        let headers = request.headers_mut();
        if !subprotocols.is_empty() {
            let value = HeaderValue::from_str(&subprotocols.join(", "))
                .map_err(|e| invalid(format!("invalid subprotocol: {e}")))?;
            headers.insert("sec-websocket-protocol", value);
        }
        if let Some(make) = &self.headers {
            for (name, value) in make() {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
                // Never echo a header value into an error: it is likely a credential.
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| invalid(format!("invalid value for header {name}")))?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        Ok(request)
    }

    pub(crate) async fn open<R: Runtime>(
        &self,
        runtime: &R,
        endpoint: &Endpoint,
        subprotocols: &[&str],
    ) -> Result<R::Ws, TransportEvent> {
        let request = self
            .request(endpoint, subprotocols)
            .map_err(TransportEvent::Failed)?;
        let tls = match (request.uri().scheme_str(), &self.tls) {
            (Some("wss"), Some(tls)) => Some(tls.clone()),
            // The browser does TLS itself.
            #[cfg(not(target_arch = "wasm32"))]
            (Some("wss"), None) => {
                let why = crate::tls::default_tls().err().map_or_else(
                    || "no TLS configuration".to_owned(),
                    |why: DefaultTlsError| why.to_string(),
                );
                let why = TlsError::NotConfigured(why);
                return Err(TransportEvent::Failed(TransportError::Tls(why)));
            }
            _ => None,
        };
        runtime
            .connect(request, tls, ws_config(self.max_frame_bytes))
            .await
            .map_err(|e| match &e {
                // An answer, not a failure: the core decides what a refusal means.
                tungstenite::Error::Http(response) => TransportEvent::Refused {
                    status: response.status().as_u16(),
                },
                _ => TransportEvent::Failed(classify(&e)),
            })
    }
}

/// The WebSocket limits used for every connection: the core's soft limits decide what is reported and discarded; the hard
/// limit here is what tungstenite refuses to buffer at all (the connection then drops).
pub fn ws_config(max_frame_bytes: usize) -> WebSocketConfig {
    let hard = max_frame_bytes.saturating_mul(16).max(16 << 20);
    WebSocketConfig::default()
        // Small initial read buffer: most connections are idle most of the time.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard))
}

/// A tungstenite error as a typed transport failure, credentials never included.
pub(crate) fn classify(e: &tungstenite::Error) -> TransportError {
    use tungstenite::Error as E;
    match e {
        E::Io(io) => classify_io(io),
        E::Http(response) => TransportError::WebSocket(format!("HTTP {}", response.status())),
        E::Url(e) => TransportError::InvalidRequest(e.to_string()),
        E::HttpFormat(e) => TransportError::InvalidRequest(e.to_string()),
        other => TransportError::WebSocket(other.to_string()),
    }
}

/// An I/O error from the runtime's socket: a failed name lookup ([`Unresolved`]) and a TLS
/// failure (a `rustls::Error` inside) are told apart from the rest.
pub(crate) fn classify_io(e: &io::Error) -> TransportError {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(inner) = e.get_ref() {
        if let Some(unresolved) = inner.downcast_ref::<Unresolved>() {
            return TransportError::Dns {
                host: unresolved.host.clone(),
                detail: unresolved.detail.clone(),
            };
        }
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return TransportError::Tls(classify_tls(tls));
        }
    }
    TransportError::from_io(e)
}

#[cfg(not(target_arch = "wasm32"))]
fn classify_tls(e: &rustls::Error) -> TlsError {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(certificate) = e else {
        return TlsError::Other(e.to_string());
    };
    TlsError::Certificate(match certificate {
        C::UnknownIssuer => CertificateError::UnknownIssuer,
        C::NotValidForName | C::NotValidForNameContext { .. } => CertificateError::NotValidForName,
        C::Expired | C::ExpiredContext { .. } => CertificateError::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => CertificateError::NotValidYet,
        C::Revoked => CertificateError::Revoked,
        C::BadSignature => CertificateError::BadSignature,
        other => CertificateError::Other(format!("{other:?}")),
    })
}

pub(crate) fn to_message(frame: Frame) -> Message {
    match frame {
        // Shared, not copied or checked again.
        Frame::Text(t) => Message::Text(t.into()),
        Frame::Binary(b) => Message::Binary(b),
        Frame::Ping(p) => Message::Ping(p.into()),
        Frame::Pong(p) => Message::Pong(p.into()),
    }
}

/// Why a connection ends after a text frame with invalid UTF-8.
pub(crate) fn fused() -> TransportError {
    TransportError::WebSocket(
        "text frame with invalid UTF-8: connection failed (RFC 6455 section 8.1)".into(),
    )
}

/// A read from the socket as a core input. `None` for messages the core never sees.
pub(crate) fn to_event(
    read: Option<Result<Message, tungstenite::Error>>,
) -> Option<TransportEvent> {
    Some(match read {
        None => TransportEvent::Closed {
            code: None,
            reason: "stream ended".into(),
        },
        // The frame's bytes are shared, not copied; tungstenite checked they are UTF-8.
        Some(Ok(Message::Text(t))) => TransportEvent::Frame(Frame::Text(t.into())),
        Some(Ok(Message::Binary(b))) => TransportEvent::Frame(Frame::Binary(b)),
        Some(Ok(Message::Ping(p))) => TransportEvent::Frame(Frame::Ping(p.into())),
        Some(Ok(Message::Pong(p))) => TransportEvent::Frame(Frame::Pong(p.into())),
        Some(Ok(Message::Close(frame))) => TransportEvent::Closed {
            code: frame.as_ref().map(|f| u16::from(f.code)),
            reason: frame
                .map(|f| f.reason.as_str().to_owned())
                .unwrap_or_default(),
        },
        Some(Ok(Message::Frame(_))) => return None,
        Some(Err(tungstenite::Error::Utf8(_))) => {
            TransportEvent::Rejected(ProtocolError::InvalidUtf8)
        }
        Some(Err(e)) => TransportEvent::Failed(classify(&e)),
    })
}

pub(crate) fn close_frame(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

// DNS, rustls and socket errors are native: in the browser every failure reaches us as a close.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart_by_type() {
        let to = crate::Destination::of(&"wss://chat.example/ws".into_client_request().unwrap())
            .unwrap();
        assert_eq!(
            classify_io(&to.unresolved(Some(io::Error::other("Name or service not known")))),
            TransportError::Dns {
                host: "chat.example".into(),
                detail: "Name or service not known".into()
            }
        );
        assert_eq!(
            classify_io(&to.unresolved(None)),
            TransportError::Dns {
                host: "chat.example".into(),
                detail: "no address".into()
            }
        );
        let certificate = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(
            classify_io(&io::Error::new(io::ErrorKind::InvalidData, certificate)),
            TransportError::Tls(TlsError::Certificate(CertificateError::Expired))
        );
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(matches!(
            classify_io(&io::Error::new(io::ErrorKind::InvalidData, alert)),
            TransportError::Tls(TlsError::Other(_))
        ));
        assert_eq!(
            classify_io(&io::ErrorKind::ConnectionRefused.into()),
            TransportError::ConnectionRefused
        );
        assert_eq!(
            classify_io(&io::ErrorKind::TimedOut.into()),
            TransportError::TimedOut
        );
        assert!(matches!(
            classify_io(&io::ErrorKind::ConnectionReset.into()),
            TransportError::Io {
                kind: io::ErrorKind::ConnectionReset,
                ..
            }
        ));
        assert!(matches!(
            classify(&tungstenite::Error::Url(
                tungstenite::error::UrlError::UnsupportedUrlScheme
            )),
            TransportError::InvalidRequest(_)
        ));
    }
}

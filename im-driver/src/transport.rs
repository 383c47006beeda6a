//! Opening the WebSocket the core asked for, and translating between tungstenite and im-proto.

use std::sync::Arc;

use im_proto::{Endpoint, Frame, ProtocolError, TransportEvent};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::Message;

use crate::runtime::Runtime;

/// Request headers, produced fresh for every (re)connect so expiring tokens can be renewed.
pub type HeaderFn = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// What the driver needs to open sockets.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub tls: Arc<rustls::ClientConfig>,
    pub headers: Option<HeaderFn>,
    /// The core's frame limit, from which [`ws_config`] derives the socket's: kept rather than
    /// the 64-byte config every idle connection would carry.
    pub max_frame_bytes: usize,
}

/// The default TLS configuration: rustls, ring, the webpki roots, certificates verified.
///
/// Built once per process and shared: the root store alone is tens of kilobytes, which every
/// idle connection would otherwise carry.
pub fn default_tls() -> Arc<rustls::ClientConfig> {
    static DEFAULT: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

impl Dialer {
    /// The upgrade request: the endpoint, the subprotocols, and fresh headers.
    fn request(&self, endpoint: &Endpoint, subprotocols: &[&str]) -> Result<Request, String> {
        let mut request = endpoint
            .url()
            .into_client_request()
            .map_err(|e| format!("invalid endpoint {endpoint}: {e}"))?;
        let headers = request.headers_mut();
        if !subprotocols.is_empty() {
            let value = HeaderValue::from_str(&subprotocols.join(", "))
                .map_err(|e| format!("invalid subprotocol: {e}"))?;
            headers.insert("sec-websocket-protocol", value);
        }
        if let Some(make) = &self.headers {
            for (name, value) in make() {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid header name {name:?}"))?;
                // Never echo a header value into an error: it is likely a credential.
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| format!("invalid value for header {name}"))?;
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
        runtime
            .connect(request, self.tls.clone(), ws_config(self.max_frame_bytes))
            .await
            .map_err(|e| match &e {
                // An answer, not a failure: the core decides what a refusal means.
                tungstenite::Error::Http(response) => TransportEvent::Refused {
                    status: response.status().as_u16(),
                },
                _ => TransportEvent::Failed(describe(&e)),
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

/// A tungstenite error as a transport failure description, credentials never included.
pub(crate) fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status()),
        other => other.to_string(),
    }
}

pub(crate) fn to_message(frame: Frame) -> Message {
    match frame {
        // Shared, not copied or checked again.
        Frame::Text(t) => Message::Text(t.into()),
        Frame::Binary(b) => Message::Binary(b.into()),
        Frame::Ping(p) => Message::Ping(p.into()),
        Frame::Pong(p) => Message::Pong(p.into()),
    }
}

/// Why a connection ends after a text frame with invalid UTF-8.
pub(crate) const FUSED: &str =
    "text frame with invalid UTF-8: connection failed (RFC 6455 section 8.1)";

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
        Some(Ok(Message::Binary(b))) => TransportEvent::Frame(Frame::Binary(b.into())),
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
        Some(Err(e)) => TransportEvent::Failed(describe(&e)),
    })
}

pub(crate) fn close_frame(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

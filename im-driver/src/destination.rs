//! Where a native runtime's socket goes: host, port and TLS name from the request, name lookup
//! failures the driver can tell apart, and trying every address. Not in a browser, which opens
//! sockets by URL.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tungstenite::error::UrlError;
use tungstenite::handshake::client::Request;
use tungstenite::Error as WsError;

/// Where a WebSocket request goes: what a runtime crate needs to open its socket (not in a
/// browser, which opens sockets by URL).
#[derive(Debug)]
pub struct Destination {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The name to verify the server's certificate against, for `wss://`; `None` for `ws://`.
    pub tls: Option<ServerName<'static>>,
}

/// A host name that did not resolve: the payload of the `io::Error` from
/// [`Destination::unresolved`], which the driver reports as `TransportError::Dns`.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {detail}")]
pub struct Unresolved {
    pub(crate) host: String,
    pub(crate) detail: String,
}

impl Destination {
    /// The error for a failed lookup of this destination's host (`why` is what the resolver said;
    /// `None` when it found no address).
    pub fn unresolved(&self, why: Option<io::Error>) -> io::Error {
        io::Error::other(Unresolved {
            host: self.host.clone(),
            detail: why.map_or_else(|| "no address".to_owned(), |e| e.to_string()),
        })
    }

    /// Connect to the first of `addrs` that accepts, with `connect` (the runtime's TCP
    /// connect); the last refusal if none does.
    pub async fn connect_first<S, F, Fut>(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
        connect: F,
    ) -> io::Result<S>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let mut last = None;
        for addr in addrs {
            match connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.unresolved(None)))
    }

    /// The destination of `request`: `ws://` or `wss://`, the default port for the scheme.
    pub fn of(request: &Request) -> Result<Self, WsError> {
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme)),
        };
        let host = uri
            .host()
            .ok_or(WsError::Url(UrlError::NoHostName))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| WsError::Url(UrlError::NoHostName))?;
            Some(name)
        } else {
            None
        };
        Ok(Destination { host, port, tls })
    }
}

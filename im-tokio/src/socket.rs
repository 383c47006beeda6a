//! The byte stream under the WebSocket: plain TCP, or TLS kept behind a box.
//!
//! tokio-tungstenite's `MaybeTlsStream` is as large as its TLS variant (rustls' state,
//! docs/PERFORMANCE.md) even for a plain `ws://` connection, and every idle connection keeps one. Boxing the
//! TLS side keeps a plain connection at the size of its `TcpStream`; a TLS connection pays one
//! pointer more.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use im_driver::{Destination, ReadAhead};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::Error as WsError;

/// A connected socket, encrypted or not, read ahead (`im_driver::ReadAhead`).
#[derive(Debug)]
pub struct Socket {
    stream: Stream,
    ahead: ReadAhead,
}

/// The byte stream itself.
#[derive(Debug)]
enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    Tls(Box<TlsStream<TcpStream>>),
}

impl Socket {
    /// Resolve the request's host (a failure is reported as such, not as a refused
    /// connection), open TCP to the first address that accepts (Nagle off: messages are small
    /// and latency matters), then TLS for `wss://`, verified against `tls`.
    pub(crate) async fn open(
        request: &Request,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, WsError> {
        let to = Destination::of(request)?;
        let addrs = tokio::net::lookup_host((to.host.as_str(), to.port))
            .await
            .map_err(|e| to.unresolved(Some(e)))?;
        let tcp = to.connect_first(addrs, TcpStream::connect).await?;
        tcp.set_nodelay(true)?;
        let Some(name) = to.tls else {
            return Ok(Self::over(Stream::Plain(tcp)));
        };
        // Never a plain connection for `wss://`.
        let tls = tls.ok_or_else(|| {
            io::Error::other(rustls::Error::General("no TLS configuration".into()))
        })?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Ok(Self::over(Stream::Tls(Box::new(stream))))
    }

    fn over(stream: Stream) -> Self {
        Self {
            stream,
            ahead: ReadAhead::default(),
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Self { stream, ahead } = self.get_mut();
        let read = ahead.poll_read(buf.initialize_unfilled(), |into| {
            let mut into = ReadBuf::new(into);
            let read = match stream {
                Stream::Plain(s) => Pin::new(s).poll_read(cx, &mut into),
                Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, &mut into),
            };
            read.map_ok(|()| into.filled().len())
        });
        read.map_ok(|n| buf.advance(n))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

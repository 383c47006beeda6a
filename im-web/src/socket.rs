//! The browser's `WebSocket` as the stream and sink of tungstenite messages the driver reads
//! and writes.
//!
//! The browser delivers messages as events whether or not anyone reads: they wait here, in a
//! queue bounded in bytes (the hard message limit the driver opens every socket with). A page
//! that stops reading for that long loses the connection with a `Capacity` error the client
//! reports, never a silent drop. Writes are bounded by the browser's `bufferedAmount`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::Sink;
use im_driver::AsyncTimer;
use tungstenite::error::{CapacityError, UrlError};
use tungstenite::handshake::client::Request;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error as WsError, Message};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent};
use web_time::Instant;

use crate::timer::Timer;

/// Writes wait while the browser holds more than this, unsent.
const HIGH_WATER: u32 = 1 << 20;
/// How often a write waiting on `bufferedAmount` looks again (browsers have no event for it).
const DRAIN_CHECK: Duration = Duration::from_millis(10);

/// A browser WebSocket, open.
pub struct WebSocket {
    ws: web_sys::WebSocket,
    inbound: Rc<RefCell<Inbound>>,
    handlers: Handlers,
    /// Wakes a write that waits for the browser's buffer to drain.
    drain: Option<Timer>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inbound = self.inbound.borrow();
        f.debug_struct("WebSocket")
            .field("ready_state", &self.ws.ready_state())
            .field("queued", &inbound.queue.len())
            .field("queued_bytes", &inbound.bytes)
            .finish_non_exhaustive()
    }
}

/// What the socket's event handlers leave for the reader.
struct Inbound {
    queue: VecDeque<Result<Message, WsError>>,
    bytes: usize,
    max_bytes: usize,
    opened: bool,
    /// The close event came (or the queue overflowed): nothing more is queued.
    ended: bool,
    waker: Option<Waker>,
}

impl Inbound {
    fn push(&mut self, item: Result<Message, WsError>) {
        if let Ok(message) = &item {
            self.bytes += message.len();
        }
        self.queue.push_back(item);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn end(&mut self) {
        self.ended = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// The closures behind the socket's `on*` handlers, kept alive as long as the handlers are set.
struct Handlers {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

impl WebSocket {
    /// Open the socket `request` names: its URL and its `Sec-WebSocket-Protocol` are all a
    /// browser lets a page choose. Resolves once open, or fails with what the browser says
    /// (which, for privacy, is never why).
    pub(crate) async fn open(request: Request, config: WebSocketConfig) -> Result<Self, WsError> {
        let url = request.uri().to_string();
        let protocols = js_sys::Array::new();
        if let Some(value) = request.headers().get("sec-websocket-protocol") {
            let value = value.to_str().map_err(|_| {
                WsError::Url(UrlError::UnableToConnect("subprotocol is not ASCII".into()))
            })?;
            for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                protocols.push(&JsValue::from_str(p));
            }
        }
        let ws = web_sys::WebSocket::new_with_str_sequence(&url, &protocols).map_err(|e| {
            // A SyntaxError: a URL the browser does not take.
            WsError::Url(UrlError::UnableToConnect(format!(
                "the browser refused {}: {}",
                redact(&url),
                js_text(&e)
            )))
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let max_bytes = config.max_message_size.unwrap_or(usize::MAX);
        let inbound = Rc::new(RefCell::new(Inbound {
            queue: VecDeque::new(),
            bytes: 0,
            max_bytes,
            opened: false,
            ended: false,
            waker: None,
        }));
        let handlers = Handlers::install(&ws, &inbound);
        let socket = WebSocket {
            ws,
            inbound,
            handlers,
            drain: None,
        };
        Opening(Some(socket)).await
    }

    fn is_open(&self) -> bool {
        self.ws.ready_state() == web_sys::WebSocket::OPEN
    }
}

impl Handlers {
    fn install(ws: &web_sys::WebSocket, inbound: &Rc<RefCell<Inbound>>) -> Self {
        let state = inbound.clone();
        let open = Closure::<dyn FnMut()>::new(move || {
            let mut state = state.borrow_mut();
            state.opened = true;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        });
        let state = inbound.clone();
        let socket = ws.clone();
        let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let mut state = state.borrow_mut();
            if state.ended {
                return;
            }
            let message = match to_message(&event.data()) {
                Some(message) => message,
                // Neither text nor an ArrayBuffer: binaryType is set before the socket opens,
                // so this is a browser out of spec; say so rather than drop it.
                None => {
                    let why = "the browser delivered a message that is neither text nor binary";
                    state.push(Err(WsError::Io(io::Error::other(why))));
                    state.end();
                    let _ = socket.close();
                    return;
                }
            };
            let size = message.len();
            if size > state.max_bytes || state.bytes + size > state.max_bytes {
                // tungstenite's refusal of an oversize message, for the same limit; here it
                // also covers a page that stopped reading while the server kept sending.
                let error = CapacityError::MessageTooLong {
                    size: state.bytes + size,
                    max_size: state.max_bytes,
                };
                state.push(Err(WsError::Capacity(error)));
                state.end();
                let _ = socket.close_with_code_and_reason(1000, "message too big");
                return;
            }
            state.push(Ok(message));
        });
        let state = inbound.clone();
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let mut state = state.borrow_mut();
            if state.ended {
                return;
            }
            if state.opened {
                state.push(Ok(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(event.code()),
                    reason: event.reason().into(),
                }))));
            }
            state.end();
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        Handlers {
            _open: open,
            _message: message,
            _close: close,
        }
    }
}

/// A message event's data as a tungstenite message (the browser checked text is UTF-8).
fn to_message(data: &JsValue) -> Option<Message> {
    if let Some(text) = data.as_string() {
        return Some(Message::Text(text.into()));
    }
    let buffer = data.dyn_ref::<js_sys::ArrayBuffer>()?;
    let bytes = js_sys::Uint8Array::new(buffer).to_vec();
    Some(Message::Binary(Bytes::from(bytes)))
}

/// The socket until the browser says it opened or closed.
struct Opening(Option<WebSocket>);

impl std::future::Future for Opening {
    type Output = Result<WebSocket, WsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(socket) = &self.0 else {
            return Poll::Ready(Err(WsError::AlreadyClosed));
        };
        let mut state = socket.inbound.borrow_mut();
        if state.opened {
            drop(state);
            return Poll::Ready(Ok(self.0.take().expect("checked above")));
        }
        if state.ended {
            // Browsers report every failure to open alike (code 1006), so that a page cannot
            // probe the network: refused, unresolved, TLS and an HTTP refusal look the same.
            let why = "the browser could not open the WebSocket (it does not say why: \
                       refused, name not resolved, TLS or an HTTP refusal look alike)";
            return Poll::Ready(Err(WsError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                why,
            ))));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.inbound.borrow_mut();
        if let Some(item) = state.queue.pop_front() {
            if let Ok(message) = &item {
                state.bytes -= message.len();
            }
            return Poll::Ready(Some(item));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Sink<Message> for WebSocket {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if !self.is_open() {
            return Poll::Ready(Err(WsError::AlreadyClosed));
        }
        if self.ws.buffered_amount() <= HIGH_WATER {
            self.drain = None;
            return Poll::Ready(Ok(()));
        }
        let again = Instant::now() + DRAIN_CHECK;
        let timer = self.drain.get_or_insert_with(|| Timer::new(again));
        let mut timer = Pin::new(timer);
        timer.as_mut().reset(again);
        match timer.poll(cx) {
            // Already due: look again at once.
            Poll::Ready(()) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        let sent = match &message {
            Message::Text(text) => self.ws.send_with_str(text.as_str()),
            Message::Binary(bytes) => self.ws.send_with_u8_array(bytes),
            Message::Close(frame) => {
                let (code, reason) = frame
                    .as_ref()
                    .map_or((1000, ""), |f| (u16::from(f.code), f.reason.as_str()));
                self.ws
                    .close_with_code_and_reason(browser_close_code(code), truncate(reason, 123))
            }
            // The browser answers pings itself and never shows them to the page.
            Message::Pong(_) => Ok(()),
            // The builder refuses `WebSocketPing` heartbeats for this runtime
            // (`Runtime::PING_FRAMES`); nothing else sends pings.
            Message::Ping(_) | Message::Frame(_) => {
                let why = "a browser's WebSocket cannot send ping or raw frames";
                return Err(WsError::Io(io::Error::new(io::ErrorKind::Unsupported, why)));
            }
        };
        sent.map_err(|e| WsError::Io(io::Error::other(js_text(&e))))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // `send` hands the data to the browser's network stack, as a write to the OS socket
        // does natively; `bufferedAmount` is bounded in `poll_ready`.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let _ = self.ws.close();
        Poll::Ready(Ok(()))
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        // The handlers go before their closures do (a browser calling a dropped closure
        // throws), and a socket the driver let go of is closed, not left open unread.
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = &self.handlers;
        let state = self.ws.ready_state();
        if state == web_sys::WebSocket::CONNECTING || state == web_sys::WebSocket::OPEN {
            let _ = self.ws.close();
        }
    }
}

/// A close code a browser lets a page send: 1000, or one of the 3000–4999 range; any other
/// becomes 1000 (browsers throw on the rest).
fn browser_close_code(code: u16) -> u16 {
    match code {
        1000 | 3000..=4999 => code,
        _ => 1000,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary (browsers throw on a close reason
/// over 123 bytes).
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A URL without its query or user info, for messages (tokens travel there in a browser).
fn redact(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// What a JavaScript exception says.
fn js_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn close_codes_a_browser_takes() {
        assert_eq!(browser_close_code(1000), 1000);
        assert_eq!(browser_close_code(4001), 4001);
        assert_eq!(browser_close_code(1001), 1000);
        assert_eq!(browser_close_code(1011), 1000);
        assert_eq!(browser_close_code(5000), 1000);
    }

    #[test]
    fn reasons_are_cut_at_a_character() {
        let long = "é".repeat(100);
        let cut = truncate(&long, 123);
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("bye", 123), "bye");
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(redact("ws://u:p@h/x?token=s"), "ws://h/x");
        assert_eq!(redact("wss://h:1/chat?token=s"), "wss://h:1/chat");
    }
}

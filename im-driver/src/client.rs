//! The handle business code holds, and the stream of events it reads.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_core::Stream;
use futures_util::StreamExt;
use im_proto::{
    Endpoint, Event, OutgoingMessage, Protocol, SendError, SendId, State, SubscribeError,
    SwitchError,
};
use serde::Serialize;

use crate::builder::ClientBuilder;
use crate::driver::Shared;
use crate::runtime::Runtime;

/// A connection to a messaging vendor. Cheap to clone; all clones drive the same connection.
/// When the last clone is dropped the client closes as if [`close`](Client::close) was called.
pub struct Client<R> {
    handle: Arc<Handle>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Client<R> {
    fn clone(&self) -> Self {
        Client {
            handle: self.handle.clone(),
            runtime: PhantomData,
        }
    }
}

/// Owned by the `Client` clones only (not by the driver), so its drop means "no user left".
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.command(|core, now| core.close(now));
    }
}

impl<R> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Client")
            .field(&*self.shared().lock())
            .finish()
    }
}

/// `send_json` refused the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendJsonError {
    #[error("cannot serialize the message: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl<R: Runtime> Client<R> {
    /// Start configuring a client.
    pub fn builder() -> ClientBuilder<R> {
        ClientBuilder::default()
    }
}

impl<R> Client<R> {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Client {
            handle: Arc::new(Handle { shared }),
            runtime: PhantomData,
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Queue a message; it goes out as soon as the connection is ready, in order. The returned
    /// id reappears in `Sent`, `Acked` or `Undelivered`.
    pub fn send(&self, message: OutgoingMessage) -> Result<SendId, SendError> {
        self.shared().command(|core, now| core.send(now, message))
    }

    pub fn send_text(
        &self,
        channel: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<SendId, SendError> {
        self.send(OutgoingMessage::text(channel, text))
    }

    pub fn send_json<T: Serialize + ?Sized>(
        &self,
        channel: impl Into<String>,
        value: &T,
    ) -> Result<SendId, SendJsonError> {
        Ok(self.send(OutgoingMessage::json(channel, value)?)?)
    }

    /// Join a channel, now and after every reconnect.
    pub fn subscribe(&self, channel: &str) -> Result<(), SubscribeError> {
        self.shared()
            .command(|core, now| core.subscribe(now, channel))
    }

    /// Leave a channel. Returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str) -> bool {
        self.shared()
            .command(|core, now| core.unsubscribe(now, channel))
    }

    /// Tell the client the network is back (skip the rest of a backoff, probe a live link).
    pub fn network_online(&self) {
        self.shared().command(|core, now| core.network_online(now));
    }

    /// Move to another vendor while running; subscriptions, the outbox and the event stream stay.
    pub fn switch_protocol(
        &self,
        protocol: impl Protocol,
        endpoints: Vec<Endpoint>,
    ) -> Result<(), SwitchError> {
        self.shared()
            .command(|core, now| core.switch_protocol(now, Box::new(protocol), endpoints))
    }

    pub fn state(&self) -> State {
        self.shared().lock().state()
    }

    /// Close for good and wait until the connection is shut and the driver task has ended.
    /// Messages never delivered are reported as `Undelivered` events before `Closed`.
    pub async fn close(&self) {
        self.shared().command(|core, now| core.close(now));
        self.shared().finished().await;
    }

    /// Whether the driver task has ended.
    pub fn is_finished(&self) -> bool {
        self.shared().is_finished()
    }
}

/// The events of one client, in order. Ends after [`Event::Closed`].
pub struct Events {
    rx: mpsc::Receiver<Vec<Event>>,
    /// The batch being read.
    batch: std::vec::IntoIter<Event>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub(crate) fn new(rx: mpsc::Receiver<Vec<Event>>, shared: Arc<Shared>) -> Self {
        Events {
            rx,
            batch: Vec::new().into_iter(),
            shared,
        }
    }

    /// The next event, or `None` once the client has closed and everything was read.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(event) = self.batch.next() {
                if self.batch.len() == 0 {
                    // A read batch is not kept for the rest of an idle connection's life.
                    self.batch = Vec::new().into_iter();
                }
                return Poll::Ready(Some(event));
            }
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(batch)) => self.batch = batch.into_iter(),
                Poll::Ready(None) => return Poll::Ready(self.pop_tail()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn pop_tail(&self) -> Option<Event> {
        self.shared
            .tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx)
    }
}

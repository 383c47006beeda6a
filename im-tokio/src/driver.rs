//! The one task per client: plumbing between the core, the socket, the timer and the user.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use im_proto::{ConnId, Event, Output, TransportEvent};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tracing::{debug, Instrument};

use crate::transport::{self, Dialer, Ws};

/// State shared by the handles and the driver task. The core is only ever locked for the
/// duration of a synchronous call, never across an `.await`.
pub(crate) struct Shared {
    core: Mutex<im_proto::Client>,
    /// Wakes the driver after a user command changed the core.
    pub wake: Notify,
    /// Becomes true when the driver task has ended.
    pub finished: watch::Receiver<bool>,
    /// Events still undelivered when the driver ended (the final report, bounded by the outbox):
    /// the event stream yields them after the channel, so `close().await` never waits for the
    /// user to read.
    pub tail: Mutex<VecDeque<Event>>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, im_proto::Client> {
        // A panic elsewhere cannot leave the core half-updated in a way that matters more than
        // stopping every client call would.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run a user command against the core with the current time, then wake the driver.
    pub fn command<R>(&self, f: impl FnOnce(&mut im_proto::Client, std::time::Instant) -> R) -> R {
        let r = f(&mut self.lock(), now());
        self.wake.notify_one();
        r
    }
}

pub(crate) fn now() -> std::time::Instant {
    // tokio's clock, so paused-time tests drive the core too.
    Instant::now().into_std()
}

type Connecting = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

enum Link {
    None,
    Connecting(ConnId, Connecting),
    Open(ConnId, Box<Ws>),
}

impl Link {
    fn id(&self) -> Option<ConnId> {
        match self {
            Link::None => None,
            Link::Connecting(id, _) | Link::Open(id, _) => Some(*id),
        }
    }
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    dialer: Dialer,
    events: mpsc::Sender<Event>,
    /// Events waiting for room in the user's channel. While it is over `capacity`, the driver
    /// stops reading the socket (backpressure to the server) but keeps its timers running.
    pending: VecDeque<Event>,
    capacity: usize,
    events_dropped: bool,
    link: Link,
    write_timeout: Duration,
    finished: watch::Sender<bool>,
}

impl Driver {
    pub fn spawn(
        core: im_proto::Client,
        dialer: Dialer,
        capacity: usize,
        write_timeout: Duration,
    ) -> (Arc<Shared>, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(capacity);
        let (finished, finished_rx) = watch::channel(false);
        let span = tracing::info_span!("im", protocol = core.protocol_name());
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            wake: Notify::new(),
            finished: finished_rx,
            tail: Mutex::new(VecDeque::new()),
        });
        let driver = Driver {
            shared: shared.clone(),
            dialer,
            events,
            pending: VecDeque::new(),
            capacity,
            events_dropped: false,
            link: Link::None,
            write_timeout,
            finished,
        };
        tokio::spawn(driver.run().instrument(span));
        (shared, rx)
    }

    async fn run(mut self) {
        loop {
            if self.drain().await {
                break;
            }
            self.wait().await;
        }
        self.link = Link::None;
        if !self.events_dropped {
            let mut tail = self
                .shared
                .tail
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            tail.extend(self.pending.drain(..));
        }
        let _ = self.finished.send(true);
        debug!("driver ended");
    }

    /// Carry out every output of the core. Returns whether the core is closed.
    async fn drain(&mut self) -> bool {
        loop {
            let (outputs, closed): (Vec<Output>, bool) = {
                let mut core = self.shared.lock();
                (
                    std::iter::from_fn(|| core.poll_output()).collect(),
                    core.is_closed(),
                )
            };
            if outputs.is_empty() {
                return closed;
            }
            let mut batch = Vec::new();
            for output in outputs {
                match output {
                    Output::Connect {
                        conn,
                        endpoint,
                        subprotocols,
                    } => {
                        debug!(%conn, %endpoint, "connecting");
                        let dialer = self.dialer.clone();
                        let open = async move { dialer.open(&endpoint, subprotocols).await };
                        self.link = Link::Connecting(conn, Box::pin(open));
                    }
                    Output::Transmit { conn, frame } => {
                        if self.link.id() == Some(conn) {
                            batch.push(transport::to_message(frame));
                        }
                    }
                    Output::Disconnect { conn, code, reason } => {
                        self.flush(&mut batch).await;
                        if self.link.id() == Some(conn) {
                            debug!(%conn, code, %reason, "disconnecting");
                            if let Link::Open(_, mut ws) =
                                std::mem::replace(&mut self.link, Link::None)
                            {
                                let close = transport::close_frame(code, reason);
                                let _ =
                                    tokio::time::timeout(self.write_timeout, ws.send(close)).await;
                            }
                        }
                    }
                    Output::Event(event) => self.pending.push_back(event),
                }
            }
            self.flush(&mut batch).await;
            self.deliver_ready_events();
        }
    }

    /// Write a batch of frames with one flush. A write that cannot complete within the timeout
    /// means the link is stalled: the core is told the transport failed.
    async fn flush(&mut self, batch: &mut Vec<tokio_tungstenite::tungstenite::Message>) {
        if batch.is_empty() {
            return;
        }
        let Link::Open(conn, ws) = &mut self.link else {
            batch.clear();
            return;
        };
        let conn = *conn;
        let write = async {
            for message in batch.drain(..) {
                ws.feed(message).await?;
            }
            ws.flush().await
        };
        let failure = match tokio::time::timeout(self.write_timeout, write).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(transport::describe(&e)),
            Err(_) => Some("write stalled".to_owned()),
        };
        batch.clear();
        if let Some(error) = failure {
            debug!(%conn, %error, "write failed");
            self.link = Link::None;
            self.input(conn, TransportEvent::Failed(error));
        }
    }

    fn input(&self, conn: ConnId, event: TransportEvent) {
        self.shared.lock().handle_transport(now(), conn, event);
    }

    /// Hand over the events that fit without waiting.
    fn deliver_ready_events(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            if self.events_dropped {
                continue;
            }
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.pending.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.events_dropped = true,
            }
        }
    }

    /// Wait for the next thing to happen: a deadline, a user command, the socket, or room for
    /// events. Each arm feeds the core; the loop then drains it again.
    async fn wait(&mut self) {
        let deadline = self.shared.lock().poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let backpressure = self.pending.len() >= self.capacity;
        let has_pending = !self.pending.is_empty() && !self.events_dropped;
        let events = self.events.clone();
        let room = async {
            if has_pending {
                events.reserve_owned().await
            } else {
                std::future::pending().await
            }
        };
        match &mut self.link {
            Link::Connecting(conn, opening) => {
                let conn = *conn;
                tokio::select! {
                    _ = sleep => self.shared.lock().handle_timeout(now()),
                    _ = self.shared.wake.notified() => {}
                    opened = opening => match opened {
                        Ok(ws) => {
                            debug!(%conn, "open");
                            self.link = Link::Open(conn, Box::new(ws));
                            self.input(conn, TransportEvent::Opened);
                        }
                        Err(error) => {
                            debug!(%conn, %error, "connect failed");
                            self.link = Link::None;
                            self.input(conn, TransportEvent::Failed(error));
                        }
                    },
                    permit = room => self.on_room(permit),
                }
            }
            Link::Open(conn, ws) => {
                let conn = *conn;
                tokio::select! {
                    _ = sleep => self.shared.lock().handle_timeout(now()),
                    _ = self.shared.wake.notified() => {}
                    read = ws.next(), if !backpressure => {
                        if let Some(event) = transport::to_event(read) {
                            let lost = matches!(
                                event,
                                TransportEvent::Closed { .. } | TransportEvent::Failed(_)
                            );
                            let rejected = matches!(event, TransportEvent::Rejected(_));
                            if lost {
                                debug!(%conn, ?event, "connection lost");
                                self.link = Link::None;
                            }
                            self.input(conn, event);
                            if rejected {
                                // The error is reported; the stream is fused after it, and
                                // RFC 6455 §8.1 requires failing the connection anyway.
                                self.link = Link::None;
                                self.input(conn, TransportEvent::Failed(transport::FUSED.into()));
                            }
                        }
                    }
                    permit = room => self.on_room(permit),
                }
            }
            Link::None => {
                tokio::select! {
                    _ = sleep => self.shared.lock().handle_timeout(now()),
                    _ = self.shared.wake.notified() => {}
                    permit = room => self.on_room(permit),
                }
            }
        }
    }

    fn on_room(&mut self, permit: Result<mpsc::OwnedPermit<Event>, mpsc::error::SendError<()>>) {
        match permit {
            Ok(permit) => {
                if let Some(event) = self.pending.pop_front() {
                    permit.send(event);
                }
                self.deliver_ready_events();
            }
            Err(_) => {
                self.events_dropped = true;
                self.pending.clear();
            }
        }
    }
}

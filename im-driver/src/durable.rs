//! Q5 durable: the driver's side of a client opened with an `im_store::Store`. The core stays
//! pure; this keeps the store in step with it: every accepted message is put before `send`
//! returns, every reported fate forgets one, and the builder restores what the last run left first.

use im_proto::{Event, Instant, OutgoingMessage, SendError, SendId};
use im_store::Store;
use tracing::warn;

pub(crate) struct Durable {
    store: Store,
    /// Fates reported since the last commit: forgotten together at the end of the step.
    forget: Vec<SendId>,
}

impl Durable {
    /// Keep `store` in step with a core that has taken back what it held (the builder restores it first).
    pub fn new(store: Store) -> Durable {
        Durable {
            store,
            forget: Vec::new(),
        }
    }

    /// Put `message` in the store under the id and key the core will give it, then hand it
    /// to the core. A refusal by the core takes it out again; a store that cannot keep it
    /// means it is not accepted.
    pub fn send(
        &mut self,
        core: &mut im_proto::Client,
        now: Instant,
        message: OutgoingMessage,
    ) -> Result<SendId, SendError> {
        let id = core.next_send_id();
        let key = match &message.key {
            Some(key) => key.clone(),
            None => core.generated_key(id),
        };
        self.store
            .put(now, id, &key, &message)
            .map_err(|e| SendError::NotStored {
                detail: e.to_string(),
            })?;
        let result = core.send(now, message);
        match &result {
            Ok(accepted) => debug_assert_eq!(*accepted, id),
            Err(_) => {
                if let Err(e) = self.store.forget(now, [id]) {
                    // It would come back after a restart although `send` refused it.
                    warn!(%id, error = %e, "the store kept a message the client refused");
                }
            }
        }
        result
    }

    /// Note the fates among `events`: those messages are forgotten at the end of the step.
    pub fn note<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            if let Event::Sent { id } | Event::Acked { id } | Event::Undelivered { id, .. } = event
            {
                self.forget.push(*id);
            }
        }
    }

    /// End of a step: forget what was reported, and sync if the write policy says it is time.
    pub fn settle(&mut self, now: Instant) {
        if !self.forget.is_empty() {
            let ids = std::mem::take(&mut self.forget);
            if let Err(e) = self.store.forget(now, ids.iter().copied()) {
                // Not lost: sent once more after a restart, under the same key.
                warn!(messages = ids.len(), error = %e, "the store could not forget delivered messages");
            }
        }
        if let Err(e) = self.store.handle_timeout(now) {
            warn!(error = %e, "the store could not sync");
        }
    }

    /// When the write policy wants the store synced.
    pub fn deadline(&self) -> Option<Instant> {
        self.store.poll_timeout()
    }

    /// The client ended: what it still holds was reported `Undelivered` and is forgotten;
    /// the rest goes to the disk now.
    pub fn close(&mut self, now: Instant) {
        self.settle(now);
        if let Err(e) = self.store.sync() {
            warn!(error = %e, "the store could not sync at close");
        }
    }
}

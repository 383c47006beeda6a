//! # im-store: the durable outbox of the im messaging client
//!
//! A message `send` accepted is safe in memory while the process lives and the link holds.
//! With a [`Store`], it is also written to an SQLite database before `send` returns `Ok`, and
//! forgotten once its fate is reported (`Sent`, `Acked` or `Undelivered`). A process that is
//! killed and started again on the same file gets back what was left — in order, under the
//! same ids and idempotency keys — and sends it again (Q5 in docs/ARCHITECTURE.md).
//!
//! With `im-tokio` or `im-async-std` (feature `store`), give the builder a store and the
//! driver does the rest:
//!
//! ```text
//! let store = Store::open("outbox.sqlite3", WritePolicy::default())?;
//! let (client, events) = Client::builder().store(store) /* … */ .connect()?;
//! // Event::Restored { id, message } first, for each message the last run left.
//! ```
//!
//! A driver of your own over `im_proto::Client` uses the same calls, in this order:
//!
//! 1. after building the core, [`Store::load`] and `Client::restore` each [`Stored`] message;
//! 2. on each send: [`Store::put`] under [`Store::next_id`]'s id and the key the core will use
//!    (the message's own, or `Client::generated_key`), then `Client::send`; if the core refuses
//!    it, [`Store::forget`] it;
//! 3. for every `Sent`, `Acked` and `Undelivered` the core reports, [`Store::forget`] the id;
//! 4. merge [`Store::poll_timeout`] into your timer and call [`Store::handle_timeout`].
//!
//! ## Why SQLite
//!
//! The outbox is a queue of small rows written and deleted one at a time by one process, and
//! it must survive that process being killed at any instruction. SQLite in WAL mode does
//! exactly that with one `write` per commit, has twenty years of crash testing behind its
//! recovery, and its file can be opened by any tool when something looks wrong. redb would
//! spare the C compiler, but its commits that skip the disk sync may be rolled back by a crash
//! of the process, which leaves no cheap policy between "sync every message" and "lose the
//! last ones"; SQLite's `synchronous = NORMAL` is exactly that policy.
//!
//! ## What each write policy costs and keeps
//!
//! Every policy commits each accepted message before `send` returns `Ok`, so a killed
//! *process* never loses one. They differ in when the disk is told to sync, which is what a
//! power cut or a kernel crash would undo:
//!
//! - [`WritePolicy::EveryMessage`] (`synchronous = FULL`): the write-ahead log is synced on
//!   every commit. Nothing accepted is lost even to a power cut; each `send` waits for the
//!   disk (from tens of microseconds on an SSD to milliseconds on a spinning disk).
//! - [`WritePolicy::Group`] (`synchronous = NORMAL`, the default with 64 messages or 10 ms):
//!   the log is synced once a group is full or its time is up. A power cut may lose up to that
//!   group; a `send` costs one `write` to the operating system's cache.
//!
//! A delete (a fate reported) is never synced on its own: if it is lost, the message is sent
//! once more after a restart, under the same key, which a server that deduplicates absorbs.
//!
//! One store belongs to one client: it is opened in exclusive mode, and a second opener gets
//! [`StoreError::InUse`].

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod error;
mod policy;
mod record;

use std::path::Path;
use std::time::Duration;

use im_proto::{Instant, OutgoingMessage, SendId};
use rusqlite::{params, Connection, OpenFlags};

pub use error::StoreError;
pub use policy::WritePolicy;

/// The schema's version, in SQLite's `user_version`: a file written by another version is
/// refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS outbox (
        id       INTEGER PRIMARY KEY,  -- the SendId
        key      TEXT    NOT NULL,     -- the idempotency key it goes out under
        channel  TEXT    NOT NULL,
        kind     INTEGER NOT NULL,     -- 0 JSON, 1 text, 2 binary
        body     BLOB    NOT NULL,
        ttl_ms   INTEGER,              -- NULL: the client's default
        delivery INTEGER,              -- NULL: the protocol's default; 0 at most once, 1 at least once
        retain   INTEGER NOT NULL
    ) STRICT;
";

/// A message a store kept: what `im_proto::Client::restore` takes back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stored {
    /// The id `send` returned for it.
    pub id: SendId,
    /// The idempotency key it went out under.
    pub key: String,
    /// The message as it was accepted.
    pub message: OutgoingMessage,
}

/// The durable outbox: one SQLite file, one client.
pub struct Store {
    db: Connection,
    policy: WritePolicy,
    /// Commits since the disk last synced, and when the first of them was made.
    unsynced: usize,
    unsynced_since: Option<Instant>,
    /// The id the next accepted message will have: above every id ever stored.
    next_id: u64,
    /// Rows held now.
    len: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Message bodies are user data: the shape only.
        f.debug_struct("Store")
            .field("policy", &self.policy)
            .field("len", &self.len)
            .field("unsynced", &self.unsynced)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or create) the store at `path`, for one client at a time.
    pub fn open(path: impl AsRef<Path>, policy: WritePolicy) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::setup(db, policy)
    }

    /// A store that lives in memory only: for tests of a driver, never for durability.
    pub fn in_memory(policy: WritePolicy) -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?, policy)
    }

    fn setup(db: Connection, policy: WritePolicy) -> Result<Store, StoreError> {
        // Another process holding the file is an answer now, not after a wait.
        db.busy_timeout(Duration::ZERO)?;
        // The lock is taken by the first write below and held until the store is dropped
        // (or the process dies: the operating system releases it).
        db.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", policy.synchronous())?;
        let version: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(StoreError::Version {
                found: version,
                expected: SCHEMA_VERSION,
            });
        }
        db.execute_batch(SCHEMA)?;
        db.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let (len, max): (i64, Option<i64>) =
            db.query_row("SELECT count(*), max(id) FROM outbox", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok(Store {
            db,
            policy,
            unsynced: 0,
            unsynced_since: None,
            next_id: max.map_or(0, |max| max as u64 + 1),
            len: len as usize,
        })
    }

    // ----- getters -----

    /// Messages held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The write policy.
    pub fn policy(&self) -> WritePolicy {
        self.policy
    }

    /// The lowest id a new message may have: above every id this store has held since it was
    /// last empty. A driver restores what [`load`](Self::load) returned, then sends.
    pub fn next_id(&self) -> SendId {
        SendId(self.next_id)
    }

    /// Every message held, in id order (the order they were accepted). A row this version
    /// cannot read is an error naming it, never skipped.
    pub fn load(&self) -> Result<Vec<Stored>, StoreError> {
        let mut statement = self.db.prepare(
            "SELECT id, key, channel, kind, body, ttl_ms, delivery, retain FROM outbox ORDER BY id",
        )?;
        let rows = statement.query_map([], record::Row::read)?;
        let mut stored = Vec::with_capacity(self.len);
        for row in rows {
            stored.push(row?.into_stored()?);
        }
        Ok(stored)
    }

    // ----- mutators -----

    /// Keep `message`, accepted under `id` and `key`, committed before this returns.
    pub fn put(
        &mut self,
        now: Instant,
        id: SendId,
        key: &str,
        message: &OutgoingMessage,
    ) -> Result<(), StoreError> {
        let row = record::Row::of(id, key, message)?;
        self.db
            .prepare_cached(
                "INSERT INTO outbox (id, key, channel, kind, body, ttl_ms, delivery, retain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                row.id,
                row.key,
                row.channel,
                row.kind,
                row.body,
                row.ttl_ms,
                row.delivery,
                row.retain
            ])?;
        self.len += 1;
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.committed(now)
    }

    /// Forget the messages whose fate was reported, in one commit.
    pub fn forget(
        &mut self,
        now: Instant,
        ids: impl IntoIterator<Item = SendId>,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        let mut removed = 0;
        {
            let mut statement = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                removed += statement.execute([record::sql_id(id)?])?;
            }
        }
        if removed == 0 {
            // Nothing to commit: no write, no sync owed.
            return Ok(());
        }
        tx.commit()?;
        self.len -= removed;
        self.committed(now)
    }

    /// Sync everything committed so far to the disk now.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced > 0 {
            // In WAL mode with `synchronous = NORMAL`, a checkpoint syncs the log first.
            self.db
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            self.unsynced = 0;
            self.unsynced_since = None;
        }
        Ok(())
    }

    // ----- timers -----

    /// When the group's time is up ([`WritePolicy::Group`]), if commits wait for a sync.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let WritePolicy::Group { within, .. } = self.policy else {
            return None;
        };
        self.unsynced_since?.checked_add(within)
    }

    /// Sync if the group's time is up at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), StoreError> {
        match self.poll_timeout() {
            Some(due) if due <= now => self.sync(),
            _ => Ok(()),
        }
    }

    fn committed(&mut self, now: Instant) -> Result<(), StoreError> {
        let WritePolicy::Group { messages, .. } = self.policy else {
            // `synchronous = FULL` synced it as part of the commit.
            return Ok(());
        };
        self.unsynced += 1;
        self.unsynced_since.get_or_insert(now);
        if self.unsynced >= messages {
            self.sync()?;
        }
        self.handle_timeout(now)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A clean close leaves nothing waiting for the disk. An error here has no one to go to
        // but the log the next open reads back: the commits themselves are already made.
        let _ = self.sync();
    }
}

//! When the disk is told to sync (see the crate docs for what each policy costs).

use std::time::Duration;

/// When commits are synced to the disk. Every policy commits each message before `send`
/// returns, so a killed process loses nothing; they differ in what a power cut may undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WritePolicy {
    /// Sync on every commit (`synchronous = FULL`): a power cut loses nothing accepted; each
    /// `send` waits for the disk.
    EveryMessage,
    /// Sync once `messages` commits wait or the first of them is `within` old
    /// (`synchronous = NORMAL`, then a checkpoint): a power cut may lose up to that group.
    Group {
        /// Commits in a group (at least 1).
        messages: usize,
        /// How long a commit may wait for its sync.
        within: Duration,
    },
}

impl Default for WritePolicy {
    /// Groups of 64 messages or 10 ms.
    fn default() -> Self {
        WritePolicy::Group {
            messages: 64,
            within: Duration::from_millis(10),
        }
    }
}

impl WritePolicy {
    /// SQLite's `synchronous` setting for this policy.
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            WritePolicy::EveryMessage => "FULL",
            WritePolicy::Group { .. } => "NORMAL",
        }
    }
}

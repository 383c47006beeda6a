//! The accounting of connection attempts: how many failed in a row (R2, R3), how long to wait
//! before the next (R1, R8) and where it goes (R7).

use std::time::Duration;

use web_time::Instant;

use crate::backoff::{self, Rng};
use crate::config::ReconnectPolicy;
use crate::transport::Endpoint;

#[derive(Debug)]
pub(crate) struct Attempts {
    rng: Rng,
    /// R1: this client's phase on the fleet's schedule for the current outage (see
    /// [`backoff::delay`]), drawn once when the outage begins.
    jitter_draw: f64,
    /// R1: waits scheduled in the current outage; `None` outside one. An outage begins when a
    /// healthy link is lost or a first attempt fails, and ends when a link proves stable (R2).
    outage_waits: Option<u32>,
    /// Consecutive failed attempts (R1 `n`, R2, R3).
    failures: u32,
    /// The rotation (R7) once it differs from the configured list (servers named others, or a
    /// vendor switch); empty until then, so an idle client keeps one copy of its URLs.
    endpoints: Vec<Endpoint>,
    next_endpoint: usize,
    /// R8: the server asked us not to come back before this long (already capped by
    /// `Config::max_server_delay`).
    server_hint: Option<Duration>,
    /// R8: no connect before this instant, whatever hints the platform gives.
    not_before: Option<Instant>,
}

/// What follows a lost connection or a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Next {
    /// R1: wait this long, then attempt again.
    Wait(Duration),
    /// R3: `attempts` consecutive failures: give up.
    GiveUp { attempts: u32 },
}

impl Attempts {
    pub fn new(rng: Rng) -> Self {
        Attempts {
            rng,
            jitter_draw: 0.0,
            outage_waits: None,
            failures: 0,
            endpoints: Vec::new(),
            next_endpoint: 0,
            server_hint: None,
            not_before: None,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// R7: the rotation, given the configured endpoints.
    pub fn endpoints<'a>(&'a self, configured: &'a [Endpoint]) -> &'a [Endpoint] {
        if self.endpoints.is_empty() {
            configured
        } else {
            &self.endpoints
        }
    }

    /// R7: where the next attempt goes; it clears R8's "not before", which that attempt obeyed.
    pub fn start(&mut self, configured: &[Endpoint]) -> Endpoint {
        self.not_before = None;
        let endpoints = self.endpoints(configured);
        endpoints[self.next_endpoint % endpoints.len()].clone()
    }

    /// R7: endpoints a server named join the rotation, up to `max`.
    pub fn add_endpoints(&mut self, found: Vec<Endpoint>, configured: &[Endpoint], max: usize) {
        for endpoint in found {
            if self.endpoints.is_empty() {
                self.endpoints = configured.to_vec();
            }
            if self.endpoints.len() >= max {
                break;
            }
            if !self.endpoints.contains(&endpoint) {
                self.endpoints.push(endpoint);
            }
        }
    }

    /// R2: the link proved stable: the next loss starts a fresh backoff.
    pub fn stable(&mut self) {
        self.failures = 0;
        self.outage_waits = None;
    }

    /// R8: the server asked not to be contacted for `after` (capped by the caller).
    pub fn server_hint(&mut self, after: Option<Duration>) {
        self.server_hint = after;
    }

    /// R8: no connect before this instant.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// A connection or attempt ended at `now`. `failed`: it never proved stable (R2), so it
    /// counts; otherwise a healthy link was lost and a new outage begins. R3 gives up after
    /// `max_attempts`; else R7 rotates and R1 (never sooner than R8's hint) says how long to wait.
    pub fn lost(
        &mut self,
        now: Instant,
        failed: bool,
        policy: &ReconnectPolicy,
        configured: &[Endpoint],
    ) -> Next {
        if failed {
            self.failures = self.failures.saturating_add(1);
            if policy.max_attempts.is_some_and(|max| self.failures >= max) {
                return Next::GiveUp {
                    attempts: self.failures,
                };
            }
        } else {
            self.failures = 0;
            self.outage_waits = None;
        }
        self.next_endpoint = (self.next_endpoint + 1) % self.endpoints(configured).len();
        // R1: after the n-th consecutive failure wait b_(n-1); after a healthy link, b_0.
        let n = self.failures.saturating_sub(1);
        let k = match self.outage_waits {
            Some(k) => k.saturating_add(1),
            None => {
                // A new outage: one draw places this client on the fleet's schedule for all of it.
                self.jitter_draw = self.rng.unit();
                0
            }
        };
        self.outage_waits = Some(k);
        let mut delay = backoff::delay(policy, n, k, self.jitter_draw);
        if let Some(hint) = self.server_hint.take() {
            // R8: never sooner than the server asked; `network_online` keeps to it too.
            delay = delay.max(hint);
            self.not_before = now.checked_add(hint);
        }
        Next::Wait(delay)
    }

    /// A vendor switch: a new rotation, and nothing of the old vendor's outage or hints.
    pub fn restart(&mut self, endpoints: Vec<Endpoint>) {
        self.endpoints = endpoints;
        self.next_endpoint = 0;
        self.failures = 0;
        self.outage_waits = None;
        self.server_hint = None;
        self.not_before = None;
    }
}

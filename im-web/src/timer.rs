//! A re-armable timer on the browser's `setTimeout`.
//!
//! The driver moves its deadline on nearly every frame (the dead-link deadline follows the
//! traffic), so the timer re-arms lazily: a `setTimeout` already set for an earlier instant is
//! left to fire, and the next poll sets one for the new deadline. Only a deadline moved earlier
//! costs a `clearTimeout`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use im_driver::AsyncTimer;
use wasm_bindgen::prelude::*;
use web_time::Instant;

#[wasm_bindgen]
extern "C" {
    // The global functions, present in windows and workers alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, millis: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// The longest delay `setTimeout` takes: a longer one overflows and fires at once.
const MAX_DELAY_MS: u128 = i32::MAX as u128;

/// What the timer and its `setTimeout` callback share.
#[derive(Default)]
struct Armed {
    /// When the `setTimeout` in flight fires; `None` when none is.
    at: Cell<Option<Instant>>,
    handle: RefCell<JsValue>,
    waker: RefCell<Option<Waker>>,
}

/// A deadline, and at most one `setTimeout` in flight for it.
pub(crate) struct Timer {
    deadline: Instant,
    armed: Rc<Armed>,
    /// Made once per timer, not per arming; removed (the timeout cleared) on drop.
    callback: Closure<dyn FnMut()>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.deadline)
            .field("armed_at", &self.armed.at.get())
            .finish()
    }
}

impl Timer {
    pub fn new(deadline: Instant) -> Self {
        let armed = Rc::new(Armed::default());
        let fired = armed.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            fired.at.set(None);
            if let Some(waker) = fired.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        Timer {
            deadline,
            armed,
            callback,
        }
    }

    fn clear(&self) {
        if self.armed.at.take().is_some() {
            clear_timeout(&self.armed.handle.borrow());
        }
    }

    fn arm(&self, now: Instant) {
        self.clear();
        let wait = self.deadline.saturating_duration_since(now);
        // Rounded up, so that it does not fire before the deadline and spin; capped at what
        // setTimeout can count (a later deadline is re-armed when the capped one fires).
        let millis = wait.as_micros().div_ceil(1000).min(MAX_DELAY_MS);
        let handle = set_timeout(self.callback.as_ref().unchecked_ref(), millis as i32);
        *self.armed.handle.borrow_mut() = handle;
        let at = now
            .checked_add(Duration::from_millis(millis as u64))
            .unwrap_or(self.deadline);
        self.armed.at.set(Some(at));
    }
}

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        // Armed at the next poll, which the driver makes right after a reset.
        self.get_mut().deadline = deadline;
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        *self.armed.waker.borrow_mut() = Some(cx.waker().clone());
        match self.armed.at.get() {
            // One in flight fires at or before the deadline: it wakes us to re-arm.
            Some(at) if at <= self.deadline => {}
            _ => self.arm(now),
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // Before the callback goes: a browser calling a dropped closure throws.
        self.clear();
    }
}

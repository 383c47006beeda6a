//! The page's hints for the driver (`Runtime::Hints`): the window's `online` event (the
//! network is back: skip the backoff wait) and the document becoming visible again (a tab
//! back from the background, whose timers the browser slowed or froze: probe the link, H4).

use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use wasm_bindgen::prelude::*;
use web_sys::{Document, VisibilityState, Window};

#[derive(Default)]
struct Pending {
    hinted: bool,
    waker: Option<Waker>,
}

/// One client's listeners, removed when its driver task ends and drops this.
pub struct PageHints {
    pending: Rc<RefCell<Pending>>,
    /// `None` outside a window (a worker): no hints then.
    page: Option<(Window, Document)>,
    online: Closure<dyn FnMut()>,
    visible: Closure<dyn FnMut()>,
}

impl fmt::Debug for PageHints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageHints")
            .field("in_window", &self.page.is_some())
            .field("hinted", &self.pending.borrow().hinted)
            .finish()
    }
}

fn hint(pending: &RefCell<Pending>) {
    let mut pending = pending.borrow_mut();
    pending.hinted = true;
    if let Some(waker) = pending.waker.take() {
        waker.wake();
    }
}

impl PageHints {
    pub(crate) fn listen() -> Self {
        let pending = Rc::new(RefCell::new(Pending::default()));
        let page = web_sys::window().and_then(|w| w.document().map(|d| (w, d)));
        let on = pending.clone();
        let online = Closure::<dyn FnMut()>::new(move || hint(&on));
        let on = pending.clone();
        let document = page.as_ref().map(|(_, d)| d.clone());
        let visible = Closure::<dyn FnMut()>::new(move || {
            let shown = document
                .as_ref()
                .is_some_and(|d| d.visibility_state() == VisibilityState::Visible);
            if shown {
                hint(&on);
            }
        });
        if let Some((window, document)) = &page {
            let _ =
                window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
            let _ = document.add_event_listener_with_callback(
                "visibilitychange",
                visible.as_ref().unchecked_ref(),
            );
        }
        PageHints {
            pending,
            page,
            online,
            visible,
        }
    }
}

impl Stream for PageHints {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let mut pending = self.pending.borrow_mut();
        if std::mem::take(&mut pending.hinted) {
            return Poll::Ready(Some(()));
        }
        pending.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for PageHints {
    fn drop(&mut self) {
        if let Some((window, document)) = &self.page {
            let _ = window.remove_event_listener_with_callback(
                "online",
                self.online.as_ref().unchecked_ref(),
            );
            let _ = document.remove_event_listener_with_callback(
                "visibilitychange",
                self.visible.as_ref().unchecked_ref(),
            );
        }
    }
}

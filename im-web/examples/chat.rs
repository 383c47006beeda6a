//! A chat page on im-web: a line to type, the room's lines, and the connection's state.
//!
//! Built for the browser (`wasm32-unknown-unknown`) and served, with the livechat server it
//! talks to, by `cargo run -p im-tests --bin web-demo`; open the page in two tabs and chat.
//! Stop the server (the demo's Enter key) and the page says it is reconnecting; lines typed
//! meanwhile wait in the outbox and arrive, once and in order, when the server is back.
//!
//! The page reads where to connect from its `<meta name="im-endpoint">` and `im-key` tags, and
//! who it is from `?user=N` (a number; the livechat protocol's user id).

#[cfg(target_arch = "wasm32")]
mod page {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet, VecDeque};
    use std::rc::Rc;

    use futures_util::StreamExt;
    use im_web::{Client, Event, LiveChat, SendId};
    use serde_json::json;
    use wasm_bindgen::prelude::*;
    use web_sys::{Document, Element, HtmlInputElement};

    const ROOM: u64 = 1;
    const CHANNEL: &str = "lobby";

    #[wasm_bindgen(start)]
    pub fn start() -> Result<(), JsValue> {
        let document = web_sys::window()
            .and_then(|w| w.document())
            .ok_or("no document")?;
        let endpoint = meta(&document, "im-endpoint")?;
        let key = meta(&document, "im-key")?;
        let user: u64 = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .and_then(|q| q.strip_prefix("?user=").and_then(|u| u.parse().ok()))
            .unwrap_or(1);
        let (client, events) = Client::builder()
            .endpoint(endpoint.as_str())
            .protocol(LiveChat::new(ROOM, user, key))
            .name(format!("page-{user}"))
            .connect()
            .map_err(|e| e.to_string())?;
        client.subscribe(CHANNEL).map_err(|e| e.to_string())?;
        let view = Rc::new(View::new(document, user)?);
        view.wire_input(client.clone())?;
        wasm_bindgen_futures::spawn_local(view.clone().show(events));
        // The page holds the client for its lifetime.
        std::mem::forget(client);
        Ok(())
    }

    fn meta(document: &Document, name: &str) -> Result<String, JsValue> {
        document
            .query_selector(&format!("meta[name={name}]"))?
            .and_then(|m| m.get_attribute("content"))
            .ok_or_else(|| JsValue::from_str(&format!("missing <meta name={name}>")))
    }

    /// The page's elements, and the lines still waiting for their fate.
    struct View {
        document: Document,
        state: Element,
        lines: Element,
        user: u64,
        sent: RefCell<HashMap<SendId, Element>>,
        /// The (sender, id) of the latest lines shown: the server replays a room's recent
        /// lines on every join, and a line is shown once.
        shown: RefCell<Shown>,
    }

    /// A bounded memory of the lines shown.
    #[derive(Default)]
    struct Shown {
        set: HashSet<(String, String)>,
        order: VecDeque<(String, String)>,
    }

    impl Shown {
        const CAPACITY: usize = 1000;

        /// Whether the line is new (and remember it).
        fn first_time(&mut self, from: &str, id: &str) -> bool {
            let key = (from.to_owned(), id.to_owned());
            if !self.set.insert(key.clone()) {
                return false;
            }
            self.order.push_back(key);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
            true
        }
    }

    impl View {
        fn new(document: Document, user: u64) -> Result<Self, JsValue> {
            let find = |id: &str| {
                document
                    .get_element_by_id(id)
                    .ok_or_else(|| JsValue::from_str(&format!("no #{id}")))
            };
            let state = find("state")?;
            let lines = find("lines")?;
            find("me")?.set_text_content(Some(&format!("user {user}")));
            Ok(View {
                state,
                lines,
                user,
                sent: RefCell::default(),
                shown: RefCell::default(),
                document,
            })
        }

        fn wire_input(self: &Rc<Self>, client: Client) -> Result<(), JsValue> {
            let form = self.document.get_element_by_id("say").ok_or("no #say")?;
            let input: HtmlInputElement = self
                .document
                .get_element_by_id("line")
                .ok_or("no #line")?
                .dyn_into()?;
            let view = self.clone();
            let submit = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                e.prevent_default();
                let text = input.value();
                if text.trim().is_empty() {
                    return;
                }
                input.set_value("");
                match client.send_json(CHANNEL, &json!({ "text": text })) {
                    Ok(id) => {
                        let line = view.line("me", &text, "pending");
                        view.sent.borrow_mut().insert(id, line);
                    }
                    // The outbox is full or the client closed: say so on the line.
                    Err(e) => {
                        view.line("me", &format!("{text} ({e})"), "failed");
                    }
                }
            });
            form.add_event_listener_with_callback("submit", submit.as_ref().unchecked_ref())?;
            submit.forget();
            Ok(())
        }

        fn line(&self, from: &str, text: &str, class: &str) -> Element {
            let li = self.document.create_element("li").expect("create li");
            li.set_class_name(class);
            let who = self.document.create_element("b").expect("create b");
            who.set_text_content(Some(from));
            let _ = li.append_child(&who);
            let _ = li.append_with_str_1(text);
            let _ = self.lines.append_child(&li);
            li
        }

        fn set_state(&self, text: &str, class: &str) {
            self.state.set_text_content(Some(text));
            self.state.set_class_name(class);
        }

        async fn show(self: Rc<Self>, mut events: im_web::Events) {
            while let Some(event) = events.next().await {
                match event {
                    Event::Connected { .. } => self.set_state("connected", "up"),
                    Event::Disconnected { cause } => {
                        self.set_state(&format!("disconnected: {cause:?}"), "down")
                    }
                    Event::Reconnecting { attempt, delay, .. } => self.set_state(
                        &format!(
                            "reconnecting (attempt {attempt}, in {} ms)",
                            delay.as_millis()
                        ),
                        "down",
                    ),
                    Event::Message(m) => {
                        let text = m
                            .body
                            .decode::<serde_json::Value>()
                            .ok()
                            .and_then(|v| v["text"].as_str().map(str::to_owned))
                            .unwrap_or_else(|| format!("{:?}", m.body));
                        let from = m.from.as_deref().unwrap_or("?");
                        let new = match &m.id {
                            Some(id) => self.shown.borrow_mut().first_time(from, id),
                            None => true,
                        };
                        if new && from != self.user.to_string() {
                            self.line(&format!("user {from}"), &text, "theirs");
                        }
                    }
                    Event::Acked { id } | Event::Sent { id } => {
                        if let Some(line) = self.sent.borrow_mut().remove(&id) {
                            line.set_class_name("delivered");
                        }
                    }
                    Event::Undelivered { id, reason, .. } => {
                        if let Some(line) = self.sent.borrow_mut().remove(&id) {
                            line.set_class_name("failed");
                            let _ =
                                line.append_with_str_1(&format!(" (not delivered: {reason:?})"));
                        }
                    }
                    Event::Closed { reason } => {
                        self.set_state(&format!("closed: {reason:?}"), "down");
                    }
                    _ => {}
                }
            }
        }
    }
}

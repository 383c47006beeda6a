//! A W3C WebDriver session with headless Chromium (through `chromedriver`): what the web demo's
//! check needs to load the page, type into it, read it and take its picture.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::peers::{free_port, wait_listening};

/// The key WebDriver names an element's reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver`, running on a free loopback port until dropped.
pub struct Driver {
    child: Child,
    base: String,
}

impl Driver {
    pub fn start(chromedriver: &Path) -> std::io::Result<Driver> {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        wait_listening(port, Duration::from_secs(20));
        Ok(Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// A new headless Chromium, `width`×`height`.
    pub fn session(&self, width: u32, height: u32) -> Result<Session, String> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                format!("--window-size={width},{height}"),
            ]},
        }}});
        let answer = post(&format!("{}/session", self.base), &capabilities)?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {answer}"))?;
        Ok(Session {
            url: format!("{}/session/{id}", self.base),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window; closed when dropped.
pub struct Session {
    url: String,
}

impl Session {
    pub fn goto(&self, url: &str) -> Result<(), String> {
        post(&format!("{}/url", self.url), &json!({ "url": url })).map(drop)
    }

    /// Run `script` in the page (`return …` gives its value).
    pub fn script(&self, script: &str) -> Result<Value, String> {
        post(
            &format!("{}/execute/sync", self.url),
            &json!({"script": script, "args": []}),
        )
    }

    /// Type `text` into the element `css` selects, as a user's keys.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let found = post(
            &format!("{}/element", self.url),
            &json!({"using": "css selector", "value": css}),
        )?;
        let element = found[ELEMENT]
            .as_str()
            .ok_or_else(|| format!("no element {css}: {found}"))?;
        post(
            &format!("{}/element/{element}/value", self.url),
            &json!({ "text": text }),
        )
        .map(drop)
    }

    /// The text of the element `css` selects ("" when there is none).
    pub fn text(&self, css: &str) -> Result<String, String> {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : '';",
            json!(css)
        );
        Ok(self
            .script(&script)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Wait until the text of `css` satisfies `done`, or fail after `limit` with what it was.
    pub fn wait_text(
        &self,
        css: &str,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text(css)?;
            if done(&text) {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(format!("no {what} within {limit:?}; {css} reads {text:?}"));
            }
            // The page changes on its own schedule; WebDriver has no event for it.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let answer = get(&format!("{}/screenshot", self.url))?;
        let data = answer.as_str().ok_or("no screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url).call();
    }
}

/// WebDriver's answer's `value`, or its error.
fn value(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, String> {
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.body_mut().read_json().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("WebDriver said {status}: {}", body["value"]));
    }
    Ok(body["value"].clone())
}

fn post(url: &str, body: &Value) -> Result<Value, String> {
    value(
        ureq::post(url)
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(body),
    )
}

fn get(url: &str) -> Result<Value, String> {
    value(
        ureq::get(url)
            .config()
            .http_status_as_error(false)
            .build()
            .call(),
    )
}

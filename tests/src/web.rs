//! The web chat page (`im-web/examples/chat.rs`): built for the browser, measured, and served
//! beside the livechat server it talks to.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::peers::find_binary;

/// The page's HTML, with `{{endpoint}}` and `{{key}}` to fill in.
const HTML: &str = include_str!("../../im-web/examples/chat.html");

/// The built page: `chat.js` and `chat_bg.wasm` in `dir`.
pub struct Page {
    pub dir: PathBuf,
    pub size: Size,
}

/// What the page's `.wasm` weighs.
pub struct Size {
    /// As rustc leaves it (profile `web-page`).
    pub rustc: usize,
    /// After `wasm-opt -Oz`, when binaryen is installed.
    pub optimized: Option<usize>,
    /// The file served: wasm-bindgen's output.
    pub served: usize,
    /// The file served, gzipped (level 9).
    pub gzipped: usize,
    /// Its sections, largest first: (name, bytes).
    pub sections: Vec<(String, usize)>,
}

/// The page's `.wasm`, gzipped, may weigh this much: `web-demo --check` fails above it.
pub const BUDGET_GZIPPED: usize = 150 * 1024;

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "page .wasm (livechat only, profile web-page): {} B from rustc, ",
            self.rustc
        )?;
        match self.optimized {
            Some(opt) => write!(f, "{opt} B after wasm-opt -Oz, ")?,
            None => write!(f, "no wasm-opt (install binaryen), ")?,
        }
        write!(
            f,
            "{} B served after wasm-bindgen, {} B gzipped ({:.1} KB; budget {} KB)",
            self.served,
            self.gzipped,
            self.gzipped as f64 / 1024.0,
            BUDGET_GZIPPED / 1024
        )?;
        let sections: Vec<String> = self
            .sections
            .iter()
            .map(|(name, bytes)| format!("{name} {bytes} B"))
            .collect();
        write!(f, "\n  sections: {}", sections.join(", "))
    }
}

/// Build the page: the example for wasm32 with the livechat protocol only, `wasm-opt -Oz`
/// where binaryen is installed (`require_opt`: or fail), then `wasm-bindgen --target web`.
///
/// wasm-opt runs before wasm-bindgen, not after as usual: binaryen 108 (Debian 12's) rewrites
/// the export of wasm-bindgen's second table (its `externref` table) to name the first, and
/// the page then fails to start. Before wasm-bindgen there is one table.
pub fn build_page(require_opt: bool) -> Result<Page, String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    run(Command::new(env!("CARGO")).current_dir(&workspace).args([
        "build",
        "-p",
        "im-web",
        "--example",
        "chat",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "web-page",
        "--no-default-features",
        "--features",
        "livechat",
    ]))?;
    let built = target.join("wasm32-unknown-unknown/web-page/examples/chat.wasm");
    let dir = target.join("web-demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let rustc = file_size(&built)?;
    let (input, optimized) = match find_binary("wasm-opt") {
        Some(opt) => {
            let out = dir.join("chat-opt.wasm");
            run(Command::new(opt).arg("-Oz").arg(&built).arg("-o").arg(&out))?;
            let size = file_size(&out)?;
            (out, Some(size))
        }
        None if require_opt => {
            return Err("wasm-opt is not installed: apt-get install binaryen".into());
        }
        None => (built, None),
    };
    let bindgen = find_binary("wasm-bindgen").ok_or(
        "wasm-bindgen is not installed: cargo install wasm-bindgen-cli --version <the workspace's wasm-bindgen>",
    )?;
    run(Command::new(bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            // Function names serve stack traces, which a release page does not show.
            "--remove-name-section",
            "--out-name",
            "chat",
            "--out-dir",
        ])
        .arg(&dir)
        .arg(&input))?;
    let bytes = std::fs::read(dir.join("chat_bg.wasm")).map_err(|e| e.to_string())?;
    let size = Size {
        rustc,
        optimized,
        served: bytes.len(),
        gzipped: gzipped(&bytes),
        sections: sections(&bytes),
    };
    Ok(Page { dir, size })
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

fn file_size(path: &Path) -> Result<usize, String> {
    std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn gzipped(bytes: &[u8]) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("gzip in memory");
    gz.finish().expect("gzip in memory").len()
}

/// The sizes of a wasm module's sections (a section dump: id, then a LEB128 length), largest
/// first; custom sections by their name.
pub fn sections(wasm: &[u8]) -> Vec<(String, usize)> {
    const NAMES: [&str; 13] = [
        "custom",
        "type",
        "import",
        "function",
        "table",
        "memory",
        "global",
        "export",
        "start",
        "element",
        "code",
        "data",
        "data count",
    ];
    let mut out = Vec::new();
    let mut at = 8; // magic and version
    while at < wasm.len() {
        let id = wasm[at] as usize;
        at += 1;
        let Some((len, used)) = leb128(&wasm[at..]) else {
            break;
        };
        at += used;
        let body = &wasm[at..(at + len).min(wasm.len())];
        let name = if id == 0 {
            leb128(body)
                .and_then(|(n, used)| body.get(used..used + n))
                .map(|n| format!("custom \"{}\"", String::from_utf8_lossy(n)))
                .unwrap_or_else(|| "custom".into())
        } else {
            NAMES.get(id).copied().unwrap_or("unknown").to_owned()
        };
        out.push((name, len));
        at += len;
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    out
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The page served over HTTP on 127.0.0.1, until dropped.
pub struct PageServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl PageServer {
    /// Serve `page` on `port` (0: a free one), telling it to connect to `endpoint` with `key`.
    pub fn start(page: &Page, port: u16, endpoint: &str, key: &str) -> io::Result<PageServer> {
        let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(io::Error::other)?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("not an IP listener"))?;
        let server = Arc::new(server);
        let html = HTML
            .replace("{{endpoint}}", endpoint)
            .replace("{{key}}", key);
        let js = std::fs::read(page.dir.join("chat.js"))?;
        let wasm = std::fs::read(page.dir.join("chat_bg.wasm"))?;
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("/").to_owned();
                let (body, kind): (&[u8], &str) = match path.as_str() {
                    "/" | "/index.html" => (html.as_bytes(), "text/html; charset=utf-8"),
                    "/chat.js" => (&js, "text/javascript"),
                    "/chat_bg.wasm" => (&wasm, "application/wasm"),
                    _ => {
                        let _ = request.respond(tiny_http::Response::empty(404));
                        continue;
                    }
                };
                let header =
                    tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
                let _ = request.respond(tiny_http::Response::from_data(body).with_header(header));
            }
        });
        Ok(PageServer {
            server,
            thread: Some(thread),
            port,
        })
    }

    pub fn url(&self, user: u64) -> String {
        format!("http://127.0.0.1:{}/?user={user}", self.port)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

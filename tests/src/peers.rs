//! Real servers for the interop suites, started on free loopback ports and stopped on drop.
//!
//! Whether a peer is installed is decided when the tests are built (`tests/build.rs`): a test
//! whose peer is missing on a developer machine is compiled `#[ignore]`d with the reason, so
//! the harness reports it as ignored, never as passed; under CI (`CI=true`) nothing is ignored
//! and a missing peer fails. Starting a peer that is not there panics with what to install.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Find `name` on the PATH or in the sbin folders Debian installs daemons to.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The binary; panics when it is missing (`.ci/run` installs every peer; on a developer
/// machine the tests that need a missing one are built ignored, see the module docs).
pub fn require(name: &str) -> PathBuf {
    find_binary(name).unwrap_or_else(|| {
        panic!("`{name}` is not installed: install it (.ci/run shows how), then rebuild the tests")
    })
}

/// `npm ci` in `dir` unless its `node_modules` was installed from the lock file as it is now:
/// once per process, so that tests running in parallel do not install over each other (cargo
/// runs test binaries one at a time). A lock file changed since (a pull that added a package)
/// installs again.
fn npm_ci(dir: &Path) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let modified = |file: &str| {
        std::fs::metadata(dir.join(file))
            .and_then(|m| m.modified())
            .ok()
    };
    let installed = modified("node_modules/.package-lock.json");
    if installed.is_some() && installed >= modified("package-lock.json") {
        return;
    }
    let npm = require("npm");
    eprintln!(
        "installing the Socket.IO test server's packages: npm ci --prefix {}",
        dir.display()
    );
    let status = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("run npm");
    assert!(status.success(), "npm ci --prefix {} failed", dir.display());
}

/// A free port on 127.0.0.1 that this process has not handed out before, below the kernel's
/// ephemeral range (the server binds it right after).
///
/// Asking the kernel for port 0 would hand out a port from the ephemeral range at random: two
/// servers started at once could be given the same one, and an outgoing connection (a client's,
/// or a NATS node dialling its routes) could take it between our release and the server's bind.
/// Either way the server exits and the test fails on a port nobody listens on.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    let ephemeral_low = ephemeral_low();
    let span = ephemeral_low.saturating_sub(FIRST).max(1);
    // Each test process starts somewhere else, so that ports a previous run's servers left
    // in TIME_WAIT are not the first ones tried.
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    loop {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free loopback port left below {ephemeral_low}");
        let port = u16::try_from(FIRST + (start + n) % span).expect("a port below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first port the kernel hands out to outgoing connections (Linux's default where it cannot
/// be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
}

/// Wait until something accepts TCP on `port`, or fail after `limit`.
pub fn wait_listening(port: u16, limit: Duration) {
    if let Err(why) = wait_listening_unless(port, limit, || None) {
        panic!("{why}");
    }
}

/// Wait until something accepts TCP on `port`; `Err` after `limit`, or as soon as `gone` says
/// why nothing ever will (a server process that exited).
fn wait_listening_unless(
    port: u16,
    limit: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(why) = gone() {
            return Err(why);
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing listens on {port} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Where the [`Daemon`] on `port` writes its output.
fn log_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("im-peer-{}-{port}.log", std::process::id()))
}

/// A server process on a loopback port: started, killed (SIGKILL), restarted on the same port,
/// and killed when dropped. Its output goes to a log file, quoted when it fails to start, kept
/// when a test fails and removed otherwise.
struct Daemon {
    command: Box<dyn Fn() -> Command + Send>,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn start(port: u16, command: impl Fn() -> Command + Send + 'static) -> Daemon {
        let mut d = Daemon {
            command: Box::new(command),
            port,
            child: None,
            log: log_path(port),
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server's log");
        let mut child = (self.command)()
            .stdout(log.try_clone().expect("share the server's log"))
            .stderr(log)
            .spawn()
            .expect("start the server process");
        let waited = wait_listening_unless(self.port, Duration::from_secs(20), || {
            let status = child.try_wait().expect("ask whether the server runs")?;
            Some(format!(
                "the server for port {} exited ({status}) before it listened",
                self.port
            ))
        });
        if let Err(why) = waited {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = output.lines().rev().take(20).collect();
            panic!(
                "{why}; the end of its output ({}):\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            );
        }
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// SIGTERM, and wait until the process has exited (a graceful shutdown, done).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM {} failed", child.id());
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        // Kept when a test fails, for whoever reads the failure.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A Mosquitto 2 broker with a WebSocket listener on 127.0.0.1.
pub struct Mosquitto {
    config: PathBuf,
    daemon: Daemon,
}

impl Mosquitto {
    /// Start on a free port, keeping nothing on disk.
    pub fn start() -> Mosquitto {
        Self::launch(false)
    }

    /// Start on a free port with persistence on (its database in a temp dir): persistent
    /// sessions and their queued QoS 1 messages outlive a restart. Mosquitto writes them on a
    /// clean shutdown ([`restart_gracefully`](Self::restart_gracefully)); a SIGKILLed broker
    /// loses what came since its last autosave.
    pub fn start_persistent() -> Mosquitto {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Mosquitto {
        let binary = require("mosquitto");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("im-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("mosquitto.conf");
        let persistence = if persistent {
            // Started as root, Mosquitto drops to its own user before it writes the database.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .expect("open the broker's dir to its user");
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.display()
            )
        } else {
            "persistence false\n".into()
        };
        std::fs::write(
            &config,
            // Mosquitto 2.0.11 (Debian 12) refuses to start with websockets as its only
            // listener, a bug fixed in 2.0.12: a plain MQTT listener rides along.
            format!(
                "listener {port} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n\
                 listener {plain} 127.0.0.1\nprotocol mqtt\n\
                 allow_anonymous true\n{persistence}log_dest none\n",
                plain = free_port()
            ),
        )
        .expect("write mosquitto.conf");
        let conf = config.clone();
        let daemon = Daemon::start(port, move || {
            let mut c = Command::new(&binary);
            c.arg("-c").arg(&conf);
            c
        });
        Mosquitto { config, daemon }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.daemon.port)
    }

    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// SIGKILL: no goodbye to anyone.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// Start again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// SIGTERM (the broker writes its database and exits), then start again on the same port.
    pub fn restart_gracefully(&mut self) {
        self.daemon.stop();
        self.daemon.launch();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.daemon.kill();
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A Node `socket.io` 4 server of `tests/socketio` on a free loopback port; its npm packages
/// (from the lock file) are installed on first use.
pub struct SocketIoServer {
    daemon: Daemon,
}

impl SocketIoServer {
    /// `server.js`, the project's test app (rooms through a `subscribe` event, acks, `kick`),
    /// with Engine.IO's `pingInterval` and `pingTimeout`.
    pub fn start(ping_interval: Duration, ping_timeout: Duration) -> SocketIoServer {
        Self::start_with_redis(ping_interval, ping_timeout, None)
    }

    /// `tutorial.js`: the Socket.IO tutorial's chat server as published (every `chat message`
    /// emitted to everyone, no acks, no rooms), with the library's default heartbeat.
    pub fn start_tutorial() -> SocketIoServer {
        Self::launch("tutorial.js", None, vec![])
    }

    /// `tutorial.js` as the tutorial's "Connection state recovery" step has it
    /// (`connectionStateRecovery: {}`: sessions and missed packets kept for 2 minutes).
    pub fn start_tutorial_with_recovery() -> SocketIoServer {
        Self::launch("tutorial.js", None, vec![("RECOVERY", "1".into())])
    }

    /// One node of a cluster sharing rooms through Redis at `redis_url`.
    pub fn start_with_redis(
        ping_interval: Duration,
        ping_timeout: Duration,
        redis_url: Option<String>,
    ) -> SocketIoServer {
        Self::launch(
            "server.js",
            Some((ping_interval, ping_timeout)),
            redis_url
                .map(|url| ("REDIS_URL", url))
                .into_iter()
                .collect(),
        )
    }

    /// One node of a cluster with connection state recovery: rooms, broadcasts and sessions
    /// shared through `@socket.io/redis-streams-adapter` at `redis_url`, so a client whose
    /// node went away is restored by another.
    pub fn start_with_recovery(
        ping_interval: Duration,
        ping_timeout: Duration,
        redis_url: String,
    ) -> SocketIoServer {
        Self::launch(
            "server.js",
            Some((ping_interval, ping_timeout)),
            vec![("REDIS_URL", redis_url), ("RECOVERY", "1".into())],
        )
    }

    fn launch(
        script: &'static str,
        ping: Option<(Duration, Duration)>,
        env: Vec<(&'static str, String)>,
    ) -> SocketIoServer {
        let node = require("node");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("socketio");
        npm_ci(&dir);
        let port = free_port();
        let daemon = Daemon::start(port, move || {
            let mut c = Command::new(&node);
            c.arg(dir.join(script)).arg(port.to_string());
            if let Some((ping_interval, ping_timeout)) = ping {
                c.env("PING_INTERVAL", ping_interval.as_millis().to_string())
                    .env("PING_TIMEOUT", ping_timeout.as_millis().to_string());
            }
            for (name, value) in &env {
                c.env(name, value);
            }
            c
        });
        SocketIoServer { daemon }
    }

    /// The server's URL as a socket.io-client user writes it.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port)
    }

    /// The Engine.IO WebSocket URL.
    pub fn url(&self) -> String {
        format!(
            "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
            self.daemon.port
        )
    }

    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// Start again on the same port.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// SIGTERM: the server disconnects its sockets and writes their sessions, then exits.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

/// A routed cluster of nats-server nodes, each with a WebSocket listener on 127.0.0.1.
pub struct NatsCluster {
    nodes: Vec<Option<Daemon>>,
    ws_ports: Vec<u16>,
    client_ports: Vec<u16>,
    dir: PathBuf,
}

impl NatsCluster {
    /// Start `n` nodes routed to each other.
    pub fn start(n: usize) -> NatsCluster {
        Self::launch(n, false)
    }

    /// Start `n` nodes routed to each other, each with JetStream on (its store in a temp
    /// dir); streams are added with [`add_stream`](Self::add_stream).
    pub fn start_jetstream(n: usize) -> NatsCluster {
        Self::launch(n, true)
    }

    fn launch(n: usize, jetstream: bool) -> NatsCluster {
        let binary = require("nats-server");
        let dir =
            std::env::temp_dir().join(format!("im-nats-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, ws, route)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, _, r))| format!("nats-route://127.0.0.1:{r}"))
                .collect();
            let config = dir.join(format!("node{i}.conf"));
            let store = dir.join(format!("js{i}"));
            let js = if jetstream {
                format!(
                    "jetstream {{ store_dir: {:?} }}\n",
                    store.display().to_string()
                )
            } else {
                String::new()
            };
            // A lone JetStream node must not be configured as a cluster (it would wait for
            // routes to elect a leader with).
            let cluster = if n > 1 {
                format!(
                    "cluster {{ name: im, host: 127.0.0.1, port: {route}, routes: [{}] }}\n",
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            std::fs::write(
                &config,
                format!(
                    "server_name: node{i}\nhost: 127.0.0.1\nport: {client}\n\
                     websocket {{ host: 127.0.0.1, port: {ws}, no_tls: true }}\n{cluster}{js}"
                ),
            )
            .expect("write nats config");
            let binary = binary.clone();
            nodes.push(Some(Daemon::start(*ws, move || {
                let mut c = Command::new(&binary);
                c.arg("-c").arg(&config);
                c
            })));
        }
        NatsCluster {
            nodes,
            ws_ports: ports.iter().map(|p| p.1).collect(),
            client_ports: ports.iter().map(|p| p.0).collect(),
            dir,
        }
    }

    /// Add a stream as an operator would (`nats stream add`): `subjects`, file storage,
    /// `replicas` copies. Asked of a live node's client port until JetStream answers (a
    /// cluster elects its JetStream leader a few seconds after it starts); panics after 30 s.
    pub fn add_stream(&self, name: &str, subjects: &[&str], replicas: usize) {
        self.add_stream_with(name, subjects, replicas, serde_json::json!({}));
    }

    /// [`add_stream`](Self::add_stream) with more of the stream's configuration (`extra`'s
    /// fields, as `nats stream add` takes them: `max_msg_size`, `max_msgs`, …).
    pub fn add_stream_with(
        &self,
        name: &str,
        subjects: &[&str],
        replicas: usize,
        extra: serde_json::Value,
    ) {
        let mut config = serde_json::json!({
            "name": name, "subjects": subjects, "num_replicas": replicas, "storage": "file",
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        self.api(
            &format!("$JS.API.STREAM.CREATE.{name}"),
            &config.to_string(),
        );
    }

    /// Delete a durable consumer, as an operator would (`nats consumer rm`).
    pub fn delete_consumer(&self, stream: &str, consumer: &str) {
        self.api(&format!("$JS.API.CONSUMER.DELETE.{stream}.{consumer}"), "");
    }

    /// One JetStream API request over the plain NATS protocol, asked again until it succeeds.
    fn api(&self, subject: &str, body: &str) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            let Some(port) = self
                .nodes
                .iter()
                .zip(&self.client_ports)
                .find_map(|(node, port)| node.as_ref().map(|_| *port))
            else {
                panic!("no node of the cluster is running");
            };
            let answer = (|| -> std::io::Result<String> {
                let mut conn = TcpStream::connect(("127.0.0.1", port))?;
                conn.set_read_timeout(Some(Duration::from_secs(2)))?;
                write!(
                    conn,
                    "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.setup 1\r\n\
                     PUB {subject} _INBOX.setup {}\r\n{body}\r\n",
                    body.len()
                )?;
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // Until the answer's payload is in (it ends the stream of operations we wait for).
                loop {
                    let n = conn.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(at) = text.find("MSG _INBOX.setup") {
                        if text[at..].matches("\r\n").count() >= 2 {
                            break;
                        }
                    }
                }
                Ok(String::from_utf8_lossy(&got).into_owned())
            })();
            match answer {
                // An `HMSG` answer is a status (503: no JetStream leader yet).
                Ok(text)
                    if text.contains("MSG _INBOX.setup")
                        && !text.contains("HMSG _INBOX.setup")
                        && !text.contains("\"error\"") =>
                {
                    return
                }
                Ok(text) => last = text,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("JetStream did not do {subject} within 30 s; last answer: {last}");
    }

    /// Node `i`'s WebSocket URL.
    pub fn url(&self, i: usize) -> String {
        format!("ws://127.0.0.1:{}", self.ws_ports[i])
    }

    /// Node `i`'s WebSocket port.
    pub fn ws_port(&self, i: usize) -> u16 {
        self.ws_ports[i]
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.kill();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway redis-server on a free loopback port, keeping nothing on disk.
pub struct RedisServer {
    daemon: Daemon,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let binary = require("redis-server");
        let port = free_port();
        let daemon = Daemon::start(port, move || {
            let mut c = Command::new(&binary);
            c.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args([
                "--appendonly",
                "no",
                "--dir",
                &std::env::temp_dir().to_string_lossy(),
            ]);
            c
        });
        RedisServer { daemon }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.daemon.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice_and_stay_out_of_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port handed out twice: {ports:?}"
        );
        let below = ephemeral_low();
        assert!(ports.iter().all(|&p| u32::from(p) < below), "{ports:?}");
    }

    #[test]
    fn a_server_that_exits_before_listening_fails_at_once_with_its_output() {
        let port = free_port();
        let started = Instant::now();
        let failed = std::panic::catch_unwind(|| {
            Daemon::start(port, || {
                let mut c = Command::new("sh");
                c.args(["-c", "echo 'bind: address already in use' >&2; exit 3"]);
                c
            })
        });
        let message = failed.err().and_then(|e| e.downcast::<String>().ok());
        let message = message.expect("the start failed with a message");
        assert!(
            message.contains("exited (exit status: 3) before it listened")
                && message.contains("bind: address already in use"),
            "{message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited the limit out"
        );
        // Kept for the reader of a failure; this one was expected.
        std::fs::remove_file(log_path(port)).expect("the failed server's log was kept");
    }
}

//! The runtime the test servers and the fault proxy run on: their own, so they serve clients of
//! any runtime (tokio, async-std, smol, a blocking thread) and their API needs no runtime.

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;

use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};

/// The servers' runtime: two worker threads, started on first use.
pub fn get() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("im-test-servers")
            .enable_all()
            .build()
            .expect("start the test servers' runtime")
    })
}

/// A listener on `addr`, registered with the servers' runtime.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    let _guard = get().enter();
    TcpListener::from_std(std)
}

/// Wait, from any thread, for a task of the servers' runtime to end.
///
/// Unconstrained: called from inside a tokio task (a test's), the join would count against
/// that task's cooperative budget, and once the task's own socket work had spent it, every
/// poll would answer "yield first" to a caller that blocks instead of yielding: forever.
pub fn wait<T>(task: JoinHandle<T>) -> Result<T, JoinError> {
    futures_executor::block_on(tokio::task::unconstrained(task))
}

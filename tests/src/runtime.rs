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

/// Connections the kernel holds for a listener until it accepts them: the most Linux allows
/// by default (`net.core.somaxconn`). std's listeners ask for 128, which a fleet reconnecting
/// at thousands a second overflows: dropped SYNs are sent again 1, 3, 7 s later, and the
/// arrivals a test measures would be the kernel's retransmission schedule.
const BACKLOG: u32 = 4096;

/// A listener on `addr`, registered with the servers' runtime.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let _guard = get().enter();
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // A restarted server binds its port again at once, its old connections in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Wait, from any thread, for a task of the servers' runtime to end.
///
/// Unconstrained: called from inside a tokio task (a test's), the join would count against
/// that task's cooperative budget, and once the task's own socket work had spent it, every
/// poll would answer "yield first" to a caller that blocks instead of yielding: forever.
pub fn wait<T>(task: JoinHandle<T>) -> Result<T, JoinError> {
    futures_executor::block_on(tokio::task::unconstrained(task))
}

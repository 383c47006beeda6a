//! Test infrastructure for im: a reference livechat server with fault controls, a TCP fault
//! proxy, and helpers shared by the end-to-end suites.

pub mod alloc;
pub mod blast;
pub mod browser;
pub mod demo;
pub mod herd;
pub mod logs;
pub mod peers;
pub mod proxy;
pub mod raw;
pub mod runtime;
pub mod server;
pub mod wait;
pub mod web;
pub mod webdriver;

pub use peers::{Mosquitto, NatsCluster, RedisServer, SocketIoServer};
pub use proxy::FaultProxy;
pub use server::{Delivered, LiveChatServer};

//! `exai shim`: a thin stdio MCP server that bridges one assistant to the shared exai daemon over WebSocket.
//! `conn` owns the connection, `calls` correlates frames, `handler` speaks MCP, `spawn` starts a daemon.

mod backoff;
mod calls;
mod conn;
mod frames;
mod handler;
mod spawn;

pub use conn::{Daemon, Settings, TokenSource};
pub use handler::ShimHandler;
pub use spawn::{DaemonStarter, host_port};

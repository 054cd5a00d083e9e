//! Test helpers for the chat servers, shared by the conformance suite and the
//! binaries' tests.
//!
//! * [`Client`] (built with [`Connect`]): a WebSocket chat client over
//!   tokio-tungstenite. Every wait is bounded by [`STEP_TIMEOUT`] and panics
//!   with a message naming the client, its room and what it waited for.
//!   Connecting returns once the handshake has completed, and a server joins
//!   the room before its 101 response, so the client is in its room: no
//!   sleeps are needed after a connect.
//! * [`connect_crowd`] and [`expect_all_closed`]: many clients at once.
//! * [`DeafClient`]: a client that never answers pings or close frames (a
//!   vanished peer), for idle timeouts.
//! * [`raw`]: [`RawClient`], a WebSocket client that upgrades by hand and
//!   then writes any bytes (frames built field by field with [`RawFrame`]:
//!   unmasked, RSV bits, reserved opcodes, bad close codes), and reads the
//!   server's frames and how the connection ended, for hostile-client tests.
//! * [`http`]: raw HTTP exchanges over a `TcpStream`, for pages and refused
//!   handshakes (404, 403, 503, 400, 426, ...).
//! * [`unique_room`]: a room name no other test (or test process) uses.
//! * [`ServerProcess`]: a server binary started as a child process, its
//!   address read from the first line it prints, stopped with `SIGTERM`;
//!   built on [`launch::Launch`], which starts any server (ours, the
//!   reference servers, Daphne) with its logs in files and stops it with
//!   `SIGTERM` then `SIGKILL`, for the benchmark's driver.
//! * [`proc_status`]: a process's `Threads` and `VmRSS`, read from
//!   `/proc/<pid>/status`.
//! * [`RedisServer`]: a `redis-server` of the test's (or the benchmark's) own (free port,
//!   temporary directory, no persistence) that it can stop and restart on
//!   the same port; [`RedisServer::publish`] and [`Subscriber`] watch and
//!   inject pub/sub traffic without a Redis client crate.
//! * [`DjangoServer`]: the Django Channels tutorial chat
//!   (`scripts/django/run.sh`) under Daphne, on the Redis channel layer of
//!   the given Redis servers. Its `start` returns an error instead of
//!   panicking: creating its venv needs PyPI, and the error carries pip's.
//!
//! Helpers panic on failure (they are for tests); the `try_` variants return
//! errors where a test needs to see a failure, such as a refused connect.

mod client;
mod crowd;
mod deaf;
mod django;
pub mod http;
pub mod launch;
pub mod limits;
mod process;
mod procfs;
pub mod queues;
pub mod raw;
mod redis;
mod room;

use std::time::Duration;

pub use client::{Client, Connect, refusal_status};
pub use crowd::{connect_crowd, expect_all_closed};
pub use deaf::{DeafClient, DeafEnd};
pub use django::DjangoServer;
pub use process::{ServerProcess, assert_refused, assert_version_names, run_to_exit};
pub use procfs::{ProcStatus, proc_status, proc_status_field};
pub use raw::{RawClient, RawFrame};
pub use redis::{RedisServer, Subscriber};
pub use room::unique_room;

/// The tungstenite the clients use (the same one the servers use).
pub use chat_protocol::tungstenite;

/// How long any one step may take: a connect, a send, one frame to arrive, a
/// server to start or stop. Generous, because a loaded 2-core machine can
/// stall a test for a while; a correct server is never near it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a test gives a condition it polls for (a freed connection slot, a
/// thread count) before it fails.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between two looks at a condition being polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Formats `text` for a failure message: short texts whole, long ones cut,
/// with their length, so a 40 KiB payload does not flood the output.
pub fn abbreviate(text: &str) -> String {
    const KEEP: usize = 60;
    if text.chars().count() <= KEEP {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(KEEP).collect();
        format!("{head:?}... ({} bytes)", text.len())
    }
}

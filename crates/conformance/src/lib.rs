//! One conformance suite for every chat server, written once.
//!
//! Each scenario is an `async fn(Start)` in one of the modules below: it
//! starts a server with the [`ServerConfig`] it needs through [`Start`], talks
//! to it with `chat_testkit` clients, and shuts it down. The [`conformance!`]
//! macro instantiates every scenario as a `#[tokio::test]` for one server (the
//! idea of ripgrep's `tests/macros.rs`), so `tests/conformance.rs` is one line
//! per server:
//!
//! ```ignore
//! chat_conformance::conformance!(sync, chat_server_sync::spawn);
//! chat_conformance::conformance!(async_, chat_server_async::spawn);
//! ```
//!
//! which yields tests named `sync::same_room_delivery_includes_sender`,
//! `async_::slow_consumer_is_closed_1013`, and so on.
//!
//! The scenarios, by module:
//!
//! * [`delivery`]: who receives what, in which order; unicode; a client's
//!   own close.
//! * [`input`]: bad frames get an error reply and the connection stays; too
//!   big, invalid UTF-8 and protocol violations close with 1009, 1007, 1002;
//!   ping gets pong.
//! * [`handshake`]: the pages, and every refusal (404, 403, 400, 426, 503)
//!   with its status; origins; stalled handshakes harm no one.
//! * [`lifecycle`]: slow consumers (1013), idle timeout (1001), graceful
//!   shutdown (1001).
//!
//! Rules every scenario keeps: the server listens on port 0; every wait is
//! bounded and fails with a message saying what did not happen; nothing
//! sleeps to let things settle (a client is in its room once its handshake
//! has completed); rooms are unique per test; absence is proved with a
//! barrier message (the next frame a member receives is the barrier, so
//! nothing was queued for it before); no assertion is about time.

pub mod delivery;
pub mod handshake;
pub mod input;
pub mod lifecycle;
mod server;

pub use chat_protocol::ServerConfig;
pub use server::{SHUTDOWN_TIMEOUT, Start, TestServer};

/// Generates the whole suite for one server, as a module of
/// `#[tokio::test]`s named after the scenarios.
///
/// `$server` names the module (and the server in failure messages);
/// `$spawn` is the server's `spawn(ServerConfig) -> io::Result<Handle>`, whose
/// handle has `local_addr()` and a blocking `shutdown_and_join()`. The
/// invoking crate needs `tokio` (with `macros` and `rt-multi-thread`) for
/// `#[tokio::test]`.
#[macro_export]
macro_rules! conformance {
    ($server:ident, $spawn:path) => {
        $crate::conformance!(@suite $server, $spawn, [
            delivery::same_room_delivery_includes_sender,
            delivery::no_cross_room_delivery,
            delivery::concurrent_senders_same_order_for_all,
            delivery::unicode_round_trips,
            delivery::message_at_the_size_limit_round_trips,
            delivery::client_close_is_echoed_and_room_goes_on,
            input::bad_input_gets_an_error_and_the_connection_stays,
            input::extra_fields_are_ignored,
            input::oversized_message_closes_1009,
            input::invalid_utf8_closes_1007,
            input::protocol_violation_closes_1002,
            input::ping_gets_pong,
            handshake::serves_the_pages,
            handshake::refuses_unknown_paths_and_invalid_rooms,
            handshake::checks_the_origin,
            handshake::refuses_malformed_upgrades,
            handshake::refuses_upgrades_beyond_max_connections,
            handshake::ignores_the_query_string,
            handshake::stalled_handshakes_block_no_one,
            lifecycle::slow_consumer_is_closed_1013,
            lifecycle::idle_connection_is_closed_1001,
            lifecycle::graceful_shutdown_closes_everyone_1001,
            lifecycle::shutdown_finishes_despite_an_unresponsive_client,
            lifecycle::shutdown_mid_burst_delivers_the_same_messages_to_all,
        ]);
    };
    (@suite $server:ident, $spawn:path, [$($module:ident :: $scenario:ident),* $(,)?]) => {
        mod $server {
            fn start(config: $crate::ServerConfig) -> $crate::TestServer {
                let label = stringify!($server);
                let handle = $spawn(config)
                    .unwrap_or_else(|error| panic!("the {label} server did not start: {error}"));
                let addr = handle.local_addr();
                $crate::TestServer::new(label, addr, move || handle.shutdown_and_join())
            }

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    $crate::$module::$scenario(start).await;
                }
            )*
        }
    };
}

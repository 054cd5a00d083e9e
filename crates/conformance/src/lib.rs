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
//! chat_conformance::conformance!(sync, chat_server_sync::spawn, db_bridges: []);
//! chat_conformance::conformance!(async_, chat_server_async::spawn, db_bridges: [
//!     writer: |config| {
//!         chat_server_async::spawn_with_bridge(config, chat_server_async::DbBridge::Writer)
//!     },
//!     // ...
//! ]);
//! ```
//!
//! which yields tests named `sync::same_room_delivery_includes_sender`,
//! `async_::slow_consumer_is_closed_1013`, and so on. `db_bridges` lists, for
//! a server that offers a choice of how it reaches the database (chat-async's
//! `--db-bridge`), a module name and a `spawn` for each choice: the
//! [`history`] scenarios run once with the server's default, as
//! `async_::history_messages_are_stored`, and once more per bridge, as
//! `async_::inline::history_messages_are_stored`. The bridge is the server's
//! own option, not part of the shared [`ServerConfig`].
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
//! * [`hostile`]: what a buggy or malicious client can send (slowloris, a
//!   flood of silent connections, oversized or non-HTTP heads, every framing
//!   violation, bad close codes, resets and half-closed sockets), each
//!   answered with its RFC 9110 status or RFC 6455 close code, while the room
//!   it targets loses nothing; generated as `sync::hostile::<scenario>`.
//! * [`history`]: with `--history`, every message stored before delivery,
//!   exact replay on join, sequences continued across restarts, nothing
//!   received lost at shutdown, database failures answered with an error,
//!   and the configurations no server can run with refused.
//!
//! Rules every scenario keeps: the server listens on port 0; every wait is
//! bounded and fails with a message saying what did not happen; nothing
//! sleeps to let things settle (a client is in its room once its handshake
//! has completed); rooms are unique per test; absence is proved with a
//! barrier message (the next frame a member receives is the barrier, so
//! nothing was queued for it before); no assertion is about time.

pub mod delivery;
pub mod handshake;
pub mod history;
pub mod hostile;
pub mod input;
pub mod lifecycle;
mod server;

pub use chat_protocol::ServerConfig;
pub use history::{HistoryServer, TryStart};
pub use server::{SHUTDOWN_TIMEOUT, Start, TestServer};

/// Generates the whole suite for one server, as a module of
/// `#[tokio::test]`s named after the scenarios.
///
/// `$server` names the module (and the server in failure messages);
/// `$spawn` is the server's `spawn(ServerConfig) -> io::Result<Handle>`, whose
/// handle has `local_addr()` and a blocking `shutdown_and_join()`.
/// `db_bridges: [module: spawn, ...]` gives, for each database bridge the
/// server offers, a `spawn` that starts it with that bridge: the
/// [`history`] scenarios run with `$spawn` in `$server`, and with each
/// bridge's in `$server::module`. The invoking crate needs `tokio` (with
/// `macros` and `rt-multi-thread`) for `#[tokio::test]`.
#[macro_export]
macro_rules! conformance {
    (
        $server:ident,
        $spawn:expr,
        db_bridges: [$($bridge_module:ident : $bridge_spawn:expr),* $(,)?] $(,)?
    ) => {
        mod $server {
            $crate::conformance!(@starters $spawn, stringify!($server));

            $crate::conformance!(@tests start, [
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

            mod hostile {
                $crate::conformance!(@tests super::start, [
                    hostile::slowloris_head_is_refused_408,
                    hostile::silent_connection_flood_blocks_no_one,
                    hostile::one_address_cannot_take_every_slot,
                    hostile::handshake_rate_is_limited_per_address,
                    hostile::oversized_heads_are_refused_431,
                    hostile::http_1_0_upgrades_are_refused_400,
                    hostile::non_http_requests_are_refused_400,
                    hostile::bad_websocket_keys_are_refused_400,
                    hostile::bad_websocket_versions_are_refused_426,
                    hostile::frames_pipelined_after_the_head_are_delivered,
                    hostile::protocol_violations_close_1002,
                    hostile::utf8_split_across_fragments_is_delivered_whole,
                    hostile::invalid_utf8_across_fragments_closes_1007,
                    hostile::oversized_messages_close_1009_before_they_end,
                    hostile::bad_close_codes_are_answered_1002,
                    hostile::valid_close_codes_are_echoed,
                    hostile::data_after_a_close_never_reaches_the_room,
                    hostile::reset_mid_frame_frees_the_slot,
                    hostile::half_closed_client_is_served_then_ended,
                ]);
            }

            /// Delivery, order and the closes again with every frame handed
            /// to the connection's writer (`--direct-writes false`), the
            /// path that the default takes only for a backlog.
            mod writer_only {
                fn start(mut config: $crate::ServerConfig) -> $crate::TestServer {
                    config.direct_writes = false;
                    super::start(config)
                }

                $crate::conformance!(@tests start, [
                    delivery::same_room_delivery_includes_sender,
                    delivery::concurrent_senders_same_order_for_all,
                    delivery::client_close_is_echoed_and_room_goes_on,
                    lifecycle::slow_consumer_is_closed_1013,
                    lifecycle::shutdown_mid_burst_delivers_the_same_messages_to_all,
                    hostile::half_closed_client_is_served_then_ended,
                ]);
            }

            $crate::conformance!(@history $crate::HistoryServer {
                name: stringify!($server),
                start,
                try_start,
            });

            $(
                mod $bridge_module {
                    $crate::conformance!(
                        @starters
                        $bridge_spawn,
                        concat!(stringify!($server), "::", stringify!($bridge_module))
                    );

                    $crate::conformance!(@history $crate::HistoryServer {
                        name: concat!(stringify!($server), "::", stringify!($bridge_module)),
                        start,
                        try_start,
                    });
                }
            )*
        }
    };
    (@starters $spawn:expr, $name:expr) => {
        fn start(config: $crate::ServerConfig) -> $crate::TestServer {
            try_start(config)
                .unwrap_or_else(|error| panic!("the {} server did not start: {error}", $name))
        }

        fn try_start(config: $crate::ServerConfig) -> ::std::io::Result<$crate::TestServer> {
            let handle = ($spawn)(config)?;
            let addr = handle.local_addr();
            Ok($crate::TestServer::new(
                $name,
                addr,
                move || handle.shutdown_and_join(),
            ))
        }
    };
    (@history $server:expr) => {
        $crate::conformance!(@tests $server, [
            history::history_messages_are_stored,
            history::history_replay_on_join_is_exact_under_concurrent_posting,
            history::history_short_replay_joins_the_live_stream_without_gap,
            history::history_sequence_continues_across_a_restart,
            history::history_graceful_shutdown_loses_nothing_received,
            history::history_store_failure_gets_an_error_and_the_server_goes_on,
            history::history_read_failure_at_join_still_joins,
            history::history_unopenable_database_fails_the_start,
            history::history_db_options_are_checked,
        ]);
    };
    (@tests $arg:expr, [$($module:ident :: $scenario:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                $crate::$module::$scenario($arg).await;
            }
        )*
    };
}

//! The chat protocol, defined once.
//!
//! Everything both servers, the load generator and the tests must agree on
//! lives here, and nothing here does I/O: the `/ws/chat/<room>/` endpoint and
//! room-name rules ([`room`]), the routing of an HTTP request head to a page,
//! an upgrade or a refusal ([`route`]), the JSON frames in both directions
//! ([`message`]), close codes ([`close`]), the limits and buffer sizes shared by
//! both servers ([`config`]), the web page ([`page`]), the room registry
//! that fans a message out to every member's bounded outbox ([`rooms`]) and
//! the wire format of the Redis channel layer that lets servers in several
//! processes share rooms with each other and with Django Channels
//! ([`layer`]), and which pending handshake to evict when a flood of silent
//! connections holds every handshake slot ([`pending`]), how many connections
//! one client address may hold and how fast it may open them ([`per_ip`]),
//! the bytes each outbox and the whole server may queue ([`queued`]),
//! and the server frames
//! as the bytes the writers write, formatted once per message ([`wire`]), and
//! who may write them to a socket: the writer, or the broadcast itself when
//! nothing waits ([`gate`]).
//!
//! The servers differ only in how they move bytes and wait: the sync server
//! with blocking threads, the async server with tokio tasks. Keeping the
//! protocol here means neither can be faster or slower for a reason that has
//! nothing to do with its concurrency model.

pub mod close;
pub mod config;
pub mod gate;
pub mod layer;
pub mod message;
pub mod page;
pub mod pending;
pub mod per_ip;
pub mod queued;
pub mod readahead;
pub mod room;
pub mod rooms;
pub mod route;
pub mod session;
pub mod subscriptions;
pub mod wire;

pub use config::{CommonArgs, ServerConfig};
pub use room::RoomName;

/// Re-exported so that both servers and the clients use one tungstenite.
pub use tungstenite;

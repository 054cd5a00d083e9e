//! The chat web page, the Django Channels tutorial's `index.html` and
//! `room.html` with the same element ids and the same WebSocket endpoint.
//!
//! Both pages are static: the room page reads its room from its own URL, so
//! nothing a client sends is ever written into HTML.

/// `GET /`: pick a room.
pub const INDEX_HTML: &str = include_str!("page/index.html");

/// `GET /chat/<room>/`: the chat log, a text box and a send button.
pub const ROOM_HTML: &str = include_str!("page/room.html");

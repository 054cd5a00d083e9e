//! Room names and the paths that carry them.
//!
//! A room is named by 1 to 94 ASCII word characters (`[A-Za-z0-9_]`), as in the
//! Django Channels tutorial, where the room name becomes part of the group
//! name `chat_<room>` and Channels limits group names to 100 characters.

use std::fmt;

/// The longest room name: `chat_` + 94 characters stays under the 100-character
/// group-name limit of Django Channels.
pub const MAX_ROOM_NAME_LEN: usize = 94;

/// Path prefix of the WebSocket endpoint: `/ws/chat/<room>/`.
pub const WS_PATH_PREFIX: &str = "/ws/chat/";
/// Path prefix of a room's web page: `/chat/<room>/`.
pub const PAGE_PATH_PREFIX: &str = "/chat/";

/// A validated room name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

/// Why a string is not a room name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRoomName {
    /// The name is empty.
    #[error("room name is empty")]
    Empty,
    /// The name is longer than [`MAX_ROOM_NAME_LEN`].
    #[error("room name is longer than {MAX_ROOM_NAME_LEN} characters")]
    TooLong,
    /// The name holds a character outside `[A-Za-z0-9_]`.
    #[error("room name may only hold ASCII letters, digits and '_'")]
    BadCharacter,
}

impl RoomName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, InvalidRoomName> {
        if name.is_empty() {
            return Err(InvalidRoomName::Empty);
        }
        if name.len() > MAX_ROOM_NAME_LEN {
            return Err(InvalidRoomName::TooLong);
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(InvalidRoomName::BadCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Django Channels group of this room, `chat_<room>`.
    pub fn group(&self) -> String {
        format!("chat_{}", self.0)
    }

    /// The WebSocket path of this room, `/ws/chat/<room>/`.
    pub fn ws_path(&self) -> String {
        format!("{WS_PATH_PREFIX}{}/", self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Extracts the room from `path` if it is `<prefix><room>/`.
///
/// `Ok(None)`: the path does not have that shape. `Err`: it does, but the room
/// name is invalid.
pub fn room_in_path(path: &str, prefix: &str) -> Option<Result<RoomName, InvalidRoomName>> {
    let rest = path.strip_prefix(prefix)?;
    let name = rest.strip_suffix('/')?;
    if name.contains('/') {
        return None;
    }
    Some(RoomName::new(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_word_characters_up_to_the_limit() {
        assert!(RoomName::new("lobby_42").is_ok());
        assert!(RoomName::new(&"a".repeat(MAX_ROOM_NAME_LEN)).is_ok());
        assert_eq!(
            RoomName::new(&"a".repeat(MAX_ROOM_NAME_LEN + 1)),
            Err(InvalidRoomName::TooLong)
        );
        assert_eq!(RoomName::new(""), Err(InvalidRoomName::Empty));
        for bad in ["a-b", "a b", "é", "a.b", "a%20"] {
            assert_eq!(
                RoomName::new(bad),
                Err(InvalidRoomName::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_paths() {
        let room = room_in_path("/ws/chat/lobby/", WS_PATH_PREFIX);
        assert_eq!(room, Some(Ok(RoomName::new("lobby").unwrap())));
        assert_eq!(room_in_path("/ws/chat/lobby", WS_PATH_PREFIX), None);
        assert_eq!(room_in_path("/ws/chat/a/b/", WS_PATH_PREFIX), None);
        assert_eq!(
            room_in_path("/ws/chat/a-b/", WS_PATH_PREFIX),
            Some(Err(InvalidRoomName::BadCharacter))
        );
        assert_eq!(
            room_in_path("/ws/chat//", WS_PATH_PREFIX),
            Some(Err(InvalidRoomName::Empty))
        );
    }
}

//! Room names that no two tests share.

use std::sync::atomic::{AtomicU64, Ordering};

use chat_protocol::room::MAX_ROOM_NAME_LEN;

static NEXT_ROOM: AtomicU64 = AtomicU64::new(1);

/// A valid room name, unique to this call in this process and to this
/// process among concurrent ones: `<prefix>_<pid>_<counter>`.
///
/// `prefix` (usually the test's name) keeps logs readable; characters outside
/// `[A-Za-z0-9_]` become `_`, and it is cut so the name stays within
/// [`MAX_ROOM_NAME_LEN`].
pub fn unique_room(prefix: &str) -> String {
    let suffix = format!(
        "_{}_{}",
        std::process::id(),
        NEXT_ROOM.fetch_add(1, Ordering::Relaxed)
    );
    let keep = MAX_ROOM_NAME_LEN.saturating_sub(suffix.len());
    let mut name: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(keep)
        .collect();
    if name.is_empty() {
        name.push('r');
    }
    name.push_str(&suffix);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_protocol::RoomName;

    #[test]
    fn names_are_valid_and_distinct() {
        let long = "x".repeat(200);
        let names = [
            unique_room("same"),
            unique_room("same"),
            unique_room("with-dash and space/é"),
            unique_room(""),
            unique_room(&long),
        ];
        for name in &names {
            assert!(
                RoomName::new(name).is_ok(),
                "{name} is not a valid room name"
            );
        }
        assert_ne!(names[0], names[1]);
        assert_eq!(names[4].len(), MAX_ROOM_NAME_LEN);
    }
}

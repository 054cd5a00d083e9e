//! Which Redis channels a process must be subscribed to, and when a joining
//! client may be let in: the bookkeeping of the Redis layer, shared by both
//! servers, with no I/O (each server sends the commands and waits its own
//! way).
//!
//! A process subscribes to a room's channel when the room's first local
//! member joins and unsubscribes when the last one leaves, as channels_redis
//! does. A joiner is *ready* (its upgrade may complete) once every
//! `SUBSCRIBE` sent for its channel has been confirmed: counting the
//! confirmations in flight, rather than remembering one flag, keeps a quick
//! leave-and-rejoin correct (`SUBSCRIBE`, `UNSUBSCRIBE`, `SUBSCRIBE`: the
//! first confirmation must not let the rejoiner in, the second must).

use std::collections::HashMap;

/// A command for the shard's subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SUBSCRIBE channel`.
    Subscribe(String),
    /// `UNSUBSCRIBE channel`.
    Unsubscribe(String),
}

#[derive(Debug, Default)]
struct Channel {
    /// Local members (and joiners waiting to be let in).
    members: usize,
    /// `SUBSCRIBE`s sent and not yet confirmed.
    in_flight: usize,
    /// Confirmed, and not unsubscribed or lost since.
    subscribed: bool,
}

/// The subscriptions of one shard's subscriber connection.
#[derive(Debug, Default)]
pub struct Subscriptions {
    channels: HashMap<String, Channel>,
    /// Whether the subscriber connection is up: while it is down, nothing is
    /// sent (a reconnect resubscribes every channel with members).
    connected: bool,
}

impl Subscriptions {
    /// A member starts joining `channel`: the command to send, if it is the
    /// first.
    pub fn join(&mut self, channel: &str) -> Option<Command> {
        let connected = self.connected;
        let entry = self.channels.entry(channel.to_owned()).or_default();
        entry.members += 1;
        (entry.members == 1 && connected).then(|| {
            entry.in_flight += 1;
            entry.subscribed = false;
            Command::Subscribe(channel.to_owned())
        })
    }

    /// Whether a member of `channel` may be let in: the channel's
    /// subscription is confirmed.
    pub fn is_ready(&self, channel: &str) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|entry| entry.subscribed && entry.in_flight == 0)
    }

    /// A member left `channel` (or gave up joining): the command to send, if
    /// it was the last.
    pub fn leave(&mut self, channel: &str) -> Option<Command> {
        let entry = self.channels.get_mut(channel)?;
        entry.members = entry.members.saturating_sub(1);
        if entry.members > 0 {
            return None;
        }
        entry.subscribed = false;
        let command = self
            .connected
            .then(|| Command::Unsubscribe(channel.to_owned()));
        if entry.in_flight == 0 {
            self.channels.remove(channel);
        }
        command
    }

    /// Redis confirmed a `SUBSCRIBE` to `channel`.
    pub fn confirmed(&mut self, channel: &str) {
        let Some(entry) = self.channels.get_mut(channel) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if entry.in_flight == 0 {
            if entry.members == 0 {
                self.channels.remove(channel);
            } else {
                entry.subscribed = true;
            }
        }
    }

    /// The subscriber connection is lost: every subscription is gone. Returns
    /// the channels that had members, whose members may have missed messages.
    pub fn lost(&mut self) -> Vec<String> {
        self.connected = false;
        self.channels.retain(|_, entry| entry.members > 0);
        self.channels
            .iter_mut()
            .map(|(channel, entry)| {
                entry.subscribed = false;
                entry.in_flight = 0;
                channel.clone()
            })
            .collect()
    }

    /// The subscriber connection is (re)connected: the `SUBSCRIBE`s to send
    /// for the channels that have members.
    pub fn connected(&mut self) -> Vec<Command> {
        self.connected = true;
        self.channels
            .iter_mut()
            .map(|(channel, entry)| {
                entry.in_flight += 1;
                entry.subscribed = false;
                Command::Subscribe(channel.clone())
            })
            .collect()
    }

    /// Channels with local members.
    pub fn len(&self) -> usize {
        self.channels
            .values()
            .filter(|entry| entry.members > 0)
            .count()
    }

    /// Whether no channel has local members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Subscriptions {
        let mut subs = Subscriptions::default();
        assert!(subs.connected().is_empty());
        subs
    }

    #[test]
    fn first_member_subscribes_and_waits_for_the_confirmation() {
        let mut subs = up();
        assert_eq!(subs.join("a"), Some(Command::Subscribe("a".into())));
        assert_eq!(subs.join("a"), None);
        assert!(!subs.is_ready("a"));
        subs.confirmed("a");
        assert!(subs.is_ready("a"));
        assert_eq!(subs.leave("a"), None);
        assert_eq!(subs.leave("a"), Some(Command::Unsubscribe("a".into())));
        assert!(!subs.is_ready("a"));
        assert!(subs.is_empty());
    }

    #[test]
    fn a_stale_confirmation_does_not_let_a_rejoiner_in() {
        let mut subs = up();
        assert!(subs.join("a").is_some());
        assert!(subs.leave("a").is_some());
        assert_eq!(subs.join("a"), Some(Command::Subscribe("a".into())));
        subs.confirmed("a"); // the first SUBSCRIBE's
        assert!(!subs.is_ready("a"));
        subs.confirmed("a"); // the second's
        assert!(subs.is_ready("a"));
    }

    #[test]
    fn a_lost_connection_resubscribes_the_rooms_with_members() {
        let mut subs = up();
        assert!(subs.join("a").is_some());
        subs.confirmed("a");
        assert!(subs.join("b").is_some());
        let mut lost = subs.lost();
        lost.sort();
        assert_eq!(lost, ["a", "b"]);
        assert!(!subs.is_ready("a"));
        // While down: joins and leaves send nothing.
        assert_eq!(subs.join("c"), None);
        assert_eq!(subs.leave("b"), None);
        let mut again = subs.connected();
        again.sort_by_key(|command| format!("{command:?}"));
        assert_eq!(
            again,
            [
                Command::Subscribe("a".into()),
                Command::Subscribe("c".into())
            ]
        );
        subs.confirmed("c");
        assert!(subs.is_ready("c"));
        assert!(!subs.is_ready("a"));
    }
}

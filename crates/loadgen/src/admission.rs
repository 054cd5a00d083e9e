//! The admission check a server must pass before it is measured.
//!
//! A comparison is fair only if every server does the same job. A server
//! that skips the sender, leaks messages across rooms or lets each member
//! see its own order does less work than the protocol asks, and would be
//! measured faster for it. So before a sweep measures a server (a
//! reference server from `peers/` above all), it checks, through the
//! protocol alone, the three properties the load generator's counts take
//! for granted:
//!
//! * (a) delivery to every member, the sender included: three members of a
//!   room; the first sends one message; all three receive exactly
//!   `{"message": text}`;
//! * (b) nothing across rooms: a member of another room, there before (a)'s
//!   traffic, receives as its next frame a barrier sent in its own room
//!   after that traffic: nothing of (a)'s room came first;
//! * (c) one order with two senders: four members of a room, two of them
//!   sending 50 messages each at once; every member receives all 100
//!   exactly once, and all four in the same order.
//!
//! Every wait is bounded by the caller's timeout, every room is named
//! afresh ([`fanout::run_tag`]), and nothing sleeps: a member is in its room
//! once its handshake has completed (the protocol's rule), and a barrier
//! proves absence.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use chat_protocol::RoomName;
use chat_protocol::message::{ServerFrame, encode_client};
use chat_protocol::tungstenite::{self, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;

use crate::client::{Connection, Target};
use crate::fanout;

/// Members of check (c)'s room.
const ORDER_MEMBERS: usize = 4;
/// Senders among them.
const ORDER_SENDERS: usize = 2;
/// Messages each sender sends.
const ORDER_PER_SENDER: usize = 50;

/// One of the three checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// (a) Every member of the room receives each message, the sender too.
    DeliveryToAll,
    /// (b) A room receives nothing of another room's messages.
    NothingAcrossRooms,
    /// (c) Two senders' messages reach every member once, in one order.
    OneOrder,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeliveryToAll => "(a) delivery to every member, the sender included",
            Self::NothingAcrossRooms => "(b) nothing across rooms",
            Self::OneOrder => "(c) one order with two senders",
        })
    }
}

/// Why a server was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The URL does not parse or resolve, or nothing accepts connections
    /// there: check the URL and that the server is up. It says nothing of
    /// how the server behaves.
    #[error("the server is unreachable: {reason}")]
    Unreachable {
        /// The URL given.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server broke the protocol (or did not answer in time): it must
    /// not be measured.
    #[error("check {check} failed: {seen}")]
    Failed {
        /// The check that failed.
        check: Check,
        /// What was seen instead, in words.
        seen: String,
    },
    /// The blocking check could not start its runtime (out of threads or
    /// descriptors): retry once resources are free.
    #[error("cannot start the admission check's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl AdmissionError {
    /// The check that failed, if the server was reached.
    pub fn failed_check(&self) -> Option<Check> {
        match self {
            Self::Failed { check, .. } => Some(*check),
            Self::Unreachable { .. } | Self::Runtime(_) => None,
        }
    }
}

/// Checks the server at `url` (`ws://HOST:PORT`) for admission, each wait
/// bounded by `timeout`.
pub async fn check(url: &str, timeout: Duration) -> Result<(), AdmissionError> {
    let unreachable = |error: anyhow::Error| AdmissionError::Unreachable {
        url: url.to_owned(),
        reason: format!("{error:#}"),
    };
    let target = Target::resolve(url).await.map_err(unreachable)?;
    target.check_reachable(timeout).await.map_err(unreachable)?;
    let tag = fanout::run_tag();
    let room = |name: &str| {
        RoomName::new(&format!("{tag}_admit_{name}")).expect("a run tag and a letter name a room")
    };
    let (room_a, room_b, room_c) = (room("a"), room("b"), room("c"));
    let checker = Checker { target, timeout };
    // In room B before room A's traffic, so that anything it leaks reaches
    // this member.
    let mut watcher = checker
        .join(&room_b, Check::NothingAcrossRooms, "the first member")
        .await?;
    let sent_in_a = checker.delivery_to_all(&room_a).await?;
    checker
        .nothing_across_rooms(&room_b, &mut watcher, &sent_in_a)
        .await?;
    checker.one_order(&room_c).await
}

/// [`check`], on a small runtime of its own. Not from within a runtime:
/// from async code, await [`check`].
pub fn check_blocking(url: &str, timeout: Duration) -> Result<(), AdmissionError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AdmissionError::Runtime)?
        .block_on(check(url, timeout))
}

/// The server under check, and how long any one wait may take.
struct Checker {
    target: Target,
    timeout: Duration,
}

impl Checker {
    /// Check (a); returns the message sent, which room B must not see.
    async fn delivery_to_all(&self, room: &RoomName) -> Result<String, AdmissionError> {
        let check = Check::DeliveryToAll;
        let mut members = Vec::new();
        for k in 1..=3 {
            members.push(self.join(room, check, &format!("member {k}")).await?);
        }
        let text = format!("admission: to everyone in {room}");
        send(&mut members[0], &text, self.timeout)
            .await
            .map_err(|seen| failed(check, format!("member 1 could not send: {seen}")))?;
        for (k, member) in members.iter_mut().enumerate() {
            let who = match k {
                0 => "member 1 of 3 (the sender)".to_owned(),
                k => format!("member {} of 3", k + 1),
            };
            let frame = next_frame(member, self.timeout)
                .await
                .map_err(|seen| failed(check, format!("{who}, waiting for {text:?}, {seen}")))?;
            if frame != chat(&text) {
                return Err(failed(
                    check,
                    format!("{who} received {frame:?} instead of {text:?}"),
                ));
            }
        }
        Ok(text)
    }

    /// Check (b): `watcher` joined `room` before `other_text` was sent in
    /// another room; a barrier sent in `room` now must be its next frame.
    async fn nothing_across_rooms(
        &self,
        room: &RoomName,
        watcher: &mut Connection,
        other_text: &str,
    ) -> Result<(), AdmissionError> {
        let check = Check::NothingAcrossRooms;
        let mut second = self.join(room, check, "the second member").await?;
        let barrier = format!("admission: barrier in {room}");
        send(&mut second, &barrier, self.timeout)
            .await
            .map_err(|seen| failed(check, format!("the second member could not send: {seen}")))?;
        let frame = next_frame(watcher, self.timeout).await.map_err(|seen| {
            failed(
                check,
                format!("the first member of a room, waiting for the barrier sent in it, {seen}"),
            )
        })?;
        if frame == chat(&barrier) {
            return Ok(());
        }
        let whose = if frame == chat(other_text) {
            "another room's message"
        } else {
            "a frame"
        };
        Err(failed(
            check,
            format!(
                "a member of one room received {whose} {frame:?} before the barrier sent in its own room"
            ),
        ))
    }

    /// Check (c).
    async fn one_order(&self, room: &RoomName) -> Result<(), AdmissionError> {
        let check = Check::OneOrder;
        let mut members = Vec::new();
        for k in 1..=ORDER_MEMBERS {
            members.push(self.join(room, check, &format!("member {k}")).await?);
        }
        let sent: Vec<Vec<String>> = (1..=ORDER_SENDERS)
            .map(|s| {
                (1..=ORDER_PER_SENDER)
                    .map(|i| format!("admission: sender {s}, message {i}"))
                    .collect()
            })
            .collect();
        let expected = ORDER_SENDERS * ORDER_PER_SENDER;
        let timeout = self.timeout;
        let heard = members.into_iter().enumerate().map(|(k, member)| {
            let texts = sent.get(k);
            async move {
                match texts {
                    // A sender sends and receives at once.
                    Some(texts) => {
                        let (mut sink, mut stream) = member.split();
                        let (sending, heard) = futures_util::join!(
                            send_all(&mut sink, texts, timeout),
                            receive(&mut stream, expected, timeout)
                        );
                        sending.map_err(|seen| format!("could not send: {seen}"))?;
                        heard
                    }
                    None => {
                        let mut member = member;
                        receive(&mut member, expected, timeout).await
                    }
                }
            }
        });
        let heard = futures_util::future::join_all(heard).await;
        let all_sent: HashSet<&str> = sent.iter().flatten().map(String::as_str).collect();
        let mut first: Option<&Vec<String>> = None;
        for (k, heard) in heard.iter().enumerate() {
            let who = format!("member {} of {ORDER_MEMBERS}", k + 1);
            let heard = heard
                .as_ref()
                .map_err(|seen| failed(check, format!("{who} {seen}")))?;
            let mut seen_once = HashSet::new();
            for text in heard {
                if !all_sent.contains(text.as_str()) {
                    return Err(failed(
                        check,
                        format!("{who} received {text:?}, never sent"),
                    ));
                }
                if !seen_once.insert(text.as_str()) {
                    return Err(failed(check, format!("{who} received {text:?} twice")));
                }
            }
            match first {
                None => first = Some(heard),
                Some(first) => {
                    if let Some(at) = first.iter().zip(heard).position(|(a, b)| a != b) {
                        return Err(failed(
                            check,
                            format!(
                                "{who} received {:?} as message {} of {expected}, member 1 {:?}: two orders",
                                heard[at],
                                at + 1,
                                first[at]
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Connects a member (`who`, in words) to `room`.
    async fn join(
        &self,
        room: &RoomName,
        check: Check,
        who: &str,
    ) -> Result<Connection, AdmissionError> {
        self.target
            .connect(room, None, self.timeout)
            .await
            .map(|(connection, _took)| connection)
            .map_err(|error| failed(check, format!("{who} could not join a room: {error:#}")))
    }
}

fn failed(check: Check, seen: String) -> AdmissionError {
    AdmissionError::Failed { check, seen }
}

/// The frame a member receives for `text`.
fn chat(text: &str) -> ServerFrame {
    ServerFrame::Message {
        message: text.to_owned(),
    }
}

/// Sends `text` as a chat message.
async fn send<S>(sink: &mut S, text: &str, timeout: Duration) -> Result<(), String>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    match tokio::time::timeout(timeout, sink.send(Message::text(encode_client(text)))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("not sent within {} s", timeout.as_secs_f64())),
    }
}

/// Sends every one of `texts`, as fast as the connection takes them.
async fn send_all<S>(sink: &mut S, texts: &[String], timeout: Duration) -> Result<(), String>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    for text in texts {
        send(sink, text, timeout).await?;
    }
    Ok(())
}

/// The texts of the next `count` chat messages, or what came instead.
async fn receive<S>(stream: &mut S, count: usize, timeout: Duration) -> Result<Vec<String>, String>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut texts = Vec::with_capacity(count);
    while texts.len() < count {
        match next_frame(stream, timeout).await {
            Ok(ServerFrame::Message { message }) => texts.push(message),
            Ok(frame) => {
                return Err(format!(
                    "received {frame:?} after {} of {count} messages",
                    texts.len()
                ));
            }
            Err(seen) => {
                return Err(format!(
                    "received {} of {count} messages, then {seen}",
                    texts.len()
                ));
            }
        }
    }
    Ok(texts)
}

/// The next protocol frame, within `timeout` (pings and pongs skipped), or
/// what came instead, in words.
async fn next_frame<S>(stream: &mut S, timeout: Duration) -> Result<ServerFrame, String>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + timeout;
    loop {
        let message = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(format!(
                    "received nothing within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => return Err("the connection ended".to_owned()),
            Ok(Some(Err(error))) => return Err(format!("the connection failed: {error}")),
            Ok(Some(Ok(message))) => message,
        };
        return match message {
            Message::Text(text) => ServerFrame::parse(&text)
                .map_err(|_| format!("received {:?}, not a frame of the protocol", text.as_str())),
            Message::Close(Some(close)) => Err(format!(
                "the server closed the connection ({} {:?})",
                u16::from(close.code),
                close.reason.as_str()
            )),
            Message::Close(None) => Err("the server closed the connection".to_owned()),
            Message::Binary(_) => Err("received a binary frame".to_owned()),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
    }
}

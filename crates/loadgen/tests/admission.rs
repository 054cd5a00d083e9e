//! The admission check admits both our servers, and refuses servers that
//! do less than the protocol asks, naming the check each fails: one that
//! skips the sender (check (a)), one that ignores rooms (check (b)).
//!
//! Every wait is bounded: the check's own waits by its timeout, which a
//! refusal by silence runs out once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_loadgen::admission::{self, AdmissionError, Check};
use chat_protocol::ServerConfig;
use chat_protocol::message::{decode_client_text, encode_chat};
use chat_protocol::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use chat_protocol::tungstenite::{Message, Utf8Bytes};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Long enough for any wait that should succeed on a loaded machine.
const PATIENT: Duration = Duration::from_secs(10);
/// The wait a server refusing by silence runs out.
const BRIEF: Duration = Duration::from_secs(2);

macro_rules! admits {
    ($server:ident, $spawn:path) => {
        mod $server {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn is_admitted() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let url = format!("ws://{}", server.local_addr());
                let verdict = admission::check(&url, PATIENT).await;
                tokio::task::spawn_blocking(move || server.shutdown_and_join())
                    .await
                    .expect("join")
                    .expect("clean shutdown");
                verdict.expect("admitted");
            }

            #[test]
            fn is_admitted_by_the_blocking_check() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let url = format!("ws://{}", server.local_addr());
                let verdict = admission::check_blocking(&url, PATIENT);
                server.shutdown_and_join().expect("clean shutdown");
                verdict.expect("admitted");
            }
        }
    };
}

admits!(sync, chat_server_sync::spawn);
admits!(async_, chat_server_async::spawn);

/// What a flawed server does wrong.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    /// Sends a message to every member of its room but the sender.
    SkipsTheSender,
    /// Sends a message to every connection, whatever its room.
    IgnoresRooms,
}

/// A connection of a flawed server: its room's path and its outbox.
struct Member {
    id: u64,
    path: String,
    outbox: mpsc::Sender<Utf8Bytes>,
}

type Members = Arc<Mutex<Vec<Member>>>;

/// A WebSocket server that speaks the protocol's frames but has `flaw`;
/// returns its address and its accept loop, to abort.
async fn flawed_server(flaw: Flaw) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("bound address");
    let members = Members::default();
    let accept = tokio::spawn(async move {
        let mut next_id = 0;
        while let Ok((stream, _)) = listener.accept().await {
            next_id += 1;
            tokio::spawn(serve(stream, next_id, flaw, Arc::clone(&members)));
        }
    });
    (addr, accept)
}

async fn serve(stream: TcpStream, id: u64, flaw: Flaw, members: Members) {
    let (outbox, mut inbox) = mpsc::channel::<Utf8Bytes>(1024);
    // A member from its handshake on, as the protocol says: registered
    // before the 101 response goes out.
    #[expect(
        clippy::result_large_err,
        reason = "the error type is tungstenite's, for its handshake callback"
    )]
    let register = {
        let members = Arc::clone(&members);
        move |request: &Request, response: Response| {
            members.lock().expect("members").push(Member {
                id,
                path: request.uri().path().to_owned(),
                outbox,
            });
            Ok::<_, ErrorResponse>(response)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, register).await else {
        members.lock().expect("members").retain(|m| m.id != id);
        return;
    };
    let (mut sink, mut incoming) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = inbox.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = incoming.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(message) = decode_client_text(&text) else {
            continue;
        };
        let frame = encode_chat(&message);
        let members = members.lock().expect("members");
        let room = members.iter().find(|m| m.id == id).map(|m| m.path.clone());
        let receivers = members.iter().filter(|m| match flaw {
            Flaw::SkipsTheSender => Some(&m.path) == room.as_ref() && m.id != id,
            Flaw::IgnoresRooms => true,
        });
        for member in receivers {
            // A full outbox drops the frame: the checks send far less.
            let _ = member.outbox.try_send(frame.clone());
        }
    }
    members.lock().expect("members").retain(|m| m.id != id);
    writer.abort();
}

/// Runs the check against a server with `flaw`, which must refuse it.
async fn refused(flaw: Flaw) -> AdmissionError {
    let (addr, accept) = flawed_server(flaw).await;
    let verdict = admission::check(&format!("ws://{addr}"), BRIEF).await;
    accept.abort();
    verdict.expect_err("a flawed server is not admitted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_skips_the_sender_fails_check_a() {
    let error = refused(Flaw::SkipsTheSender).await;
    assert_eq!(error.failed_check(), Some(Check::DeliveryToAll), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_rooms_fails_check_b() {
    let error = refused(Flaw::IgnoresRooms).await;
    assert_eq!(
        error.failed_check(),
        Some(Check::NothingAcrossRooms),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_url_is_unreachable_not_a_failed_check() {
    let error = admission::check("wss://127.0.0.1:1", BRIEF)
        .await
        .expect_err("not a URL the check can use");
    assert!(
        matches!(error, AdmissionError::Unreachable { .. }),
        "{error}"
    );
    assert_eq!(error.failed_check(), None);
}

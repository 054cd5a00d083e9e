//! Hostile close frames: codes no endpoint may send (answered 1002, RFC 6455
//! 7.4), valid ones echoed, and data sent after a close, which must never
//! reach the room.

use chat_protocol::ServerConfig;
use chat_testkit::{RawClient, RawFrame, unique_room};

use super::{Witnesses, still_serves};
use crate::Start;

/// Close codes a client may not send: below 1000, reserved (1004), for
/// reporting only (1005, 1006, 1015), unassigned in the IANA range
/// (1016-2999), and above 4999.
const BAD_CODES: &[u16] = &[
    0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2999, 5000, 65535,
];

/// Close codes a client may send, which the server echoes.
const VALID_CODES: &[u16] = &[1000, 1001, 1003, 1008, 3000, 3999, 4000, 4999];

/// A close frame with a code no client may send, or a 1-byte payload, is
/// answered with 1002; a close reason that is not UTF-8 with 1007 (invalid
/// UTF-8 data, RFC 6455 7.4.1; Autobahn's case 7.5.1 allows either). The
/// server ends the connection.
pub async fn bad_close_codes_are_answered_1002(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("bad_close");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let mut cases: Vec<(String, RawFrame, &[u16])> = BAD_CODES
        .iter()
        .map(|&code| {
            (
                format!("close code {code}"),
                RawFrame::close(code, b"bad"),
                &[1002][..],
            )
        })
        .collect();
    let one_byte = RawFrame::new(chat_testkit::raw::opcode::CLOSE, vec![0x03]);
    cases.push(("a 1-byte close payload".to_owned(), one_byte, &[1002]));
    let not_utf8 = RawFrame::close(1000, b"bye \xff\xfe");
    cases.push((
        "a close reason that is not UTF-8".to_owned(),
        not_utf8,
        &[1007],
    ));
    for (what, close, answers) in cases {
        let mut hostile = RawClient::connect(addr, &room, "bad-closer").await;
        hostile.send(&[close]).await;
        let answer = hostile
            .expect_close_frame(&format!("the answer to {what}"))
            .await;
        assert!(
            answer
                .close_code()
                .is_some_and(|code| answers.contains(&code)),
            "{what}: answered with code {:?} (reason {:?}), expected one of {answers:?}",
            answer.close_code(),
            answer.close_reason()
        );
        hostile.expect_end(&format!("the answer to {what}")).await;
        witnesses.barrier(&format!("after {what}")).await;
    }

    witnesses.finish().await;
    still_serves(addr, "after_bad_close").await;
    server.shutdown().await;
}

/// A close frame with a valid code is echoed with that code (an empty one,
/// with an empty close or 1000), and the server ends the connection.
pub async fn valid_close_codes_are_echoed(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("valid_close");
    let mut witnesses = Witnesses::join(&server, &room).await;

    for &code in VALID_CODES {
        let mut hostile = RawClient::connect(addr, &room, "closer").await;
        hostile
            .send(&[RawFrame::close(code, "goodbye, é".as_bytes())])
            .await;
        let what = format!("close code {code}");
        let echo = hostile
            .expect_close_frame(&format!("the echo of {what}"))
            .await;
        assert_eq!(echo.close_code(), Some(code), "{what}: not echoed");
        hostile.expect_end(&format!("the echo of {what}")).await;
        witnesses.barrier(&format!("after {what}")).await;
    }
    let mut hostile = RawClient::connect(addr, &room, "closer").await;
    hostile
        .send(&[RawFrame::new(chat_testkit::raw::opcode::CLOSE, Vec::new())])
        .await;
    let echo = hostile
        .expect_close_frame("the echo of an empty close")
        .await;
    assert!(
        matches!(echo.close_code(), None | Some(1000)),
        "an empty close: answered with {:?}",
        echo.close_code()
    );
    hostile.expect_end("the echo of an empty close").await;
    witnesses.barrier("after an empty close").await;

    witnesses.finish().await;
    still_serves(addr, "after_valid_close").await;
    server.shutdown().await;
}

/// A chat message sent after the client's close frame (in the same write)
/// never reaches the room; the server echoes the close and ends the
/// connection all the same.
pub async fn data_after_a_close_never_reaches_the_room(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("after_close");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let mut hostile = RawClient::connect(addr, &room, "talks-after-close").await;
    hostile
        .send(&[
            RawFrame::close(1000, b"bye"),
            RawFrame::chat("after my close"),
        ])
        .await;
    let echo = hostile.expect_close_frame("the echo of the close").await;
    assert_eq!(echo.close_code(), Some(1000), "the close should be echoed");
    hostile.expect_end("the echo of the close").await;
    // The connection is over: had the message been read, it would be in the
    // room before this barrier.
    witnesses.barrier("after the close").await;

    witnesses.finish().await;
    still_serves(addr, "after_data_after_close").await;
    server.shutdown().await;
}

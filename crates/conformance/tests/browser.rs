//! The chat web page in a real browser, against both servers.
//!
//! For each server this test starts it in-process, drives Debian's headless
//! Chromium (`/usr/bin/chromium`, or the path in `CHROME`) over the DevTools
//! protocol, and checks what a user would see:
//!
//! 1. the room picker at `/` takes a room name and, on **Enter**, navigates to
//!    `/chat/<room>/`;
//! 2. a second tab opened on the same room, and the first tab, both open their
//!    WebSocket (`#chat-status` reads `connected`);
//! 3. a message with non-ASCII text typed into the first tab and sent with
//!    **Send** appears, exactly once, in the `#chat-log` of both tabs;
//! 4. the browser closes and the server shuts down cleanly.
//!
//! Chromium is a hard requirement: without it the test fails with a message
//! saying how to install it (`.ci/install-chromium.sh` does). Nothing is
//! downloaded at run time. Every wait is a bounded poll with a deadline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::{FutureExt, StreamExt};

/// Where Debian's `chromium` package puts the browser.
const DEFAULT_CHROME: &str = "/usr/bin/chromium";

/// How long Chromium may take to start (slow on a loaded 2-core machine).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long any one step (a page load, a WebSocket open, a delivery, one
/// DevTools command) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to shut down once the browser has gone.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Pause between two looks at the page while waiting for it to change.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The two tests run one at a time: two Chromiums starting at once on a
/// 2-core machine only make both slower and the timings less predictable.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test per server: start it, run the browser scenario, shut it down.
///
/// The server is shut down even when the scenario fails; the scenario's
/// failure is then the one reported.
macro_rules! browser_test {
    ($name:ident, $label:literal, $spawn:path) => {
        #[tokio::test]
        async fn $name() {
            let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
            let server = $spawn(chat_protocol::ServerConfig::default()).expect(concat!(
                "the ",
                $label,
                " server should start"
            ));
            let addr = server.local_addr();
            let scenario = AssertUnwindSafe(chat_in_two_tabs($label, addr))
                .catch_unwind()
                .await;
            let shutdown = shut_down($label, move || server.shutdown_and_join()).await;
            if let Err(panic) = scenario {
                resume_unwind(panic);
            }
            if let Err(error) = shutdown {
                panic!("{error}");
            }
        }
    };
}

browser_test!(
    sync_server_page_works_in_chromium,
    "sync",
    chat_server_sync::spawn
);
browser_test!(
    async_server_page_works_in_chromium,
    "async",
    chat_server_async::spawn
);

/// The browser scenario against a server listening on `addr`.
async fn chat_in_two_tabs(server: &str, addr: SocketAddr) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock should be after 1970")
        .as_nanos();
    let unique = format!("{server}_{}_{nanos}", std::process::id());
    let profile = TempProfile::new(&unique);
    let chrome = ChromeSession::launch(profile.path()).await;
    let scenario = AssertUnwindSafe(scenario(&chrome.browser, addr, &unique, nanos))
        .catch_unwind()
        .await;
    // Close Chromium (or kill it, after a failure) before its profile goes.
    let closed = chrome.close().await;
    drop(profile);
    if let Err(panic) = scenario {
        resume_unwind(panic);
    }
    if let Err(error) = closed {
        panic!("{error}");
    }
}

/// What a user does: pick a room in one tab, open it in a second, chat.
async fn scenario(browser: &Browser, addr: SocketAddr, unique: &str, nanos: u128) {
    let room = format!("browser_{unique}");
    let room_url = format!("http://{addr}/chat/{room}/");

    // Tab one: the room picker, then Enter.
    let tab_one = step(
        "open the room picker in tab one",
        browser.new_page(format!("http://{addr}/")),
    )
    .await
    .unwrap_or_else(|error| panic!("tab one could not open http://{addr}/: {error}"));
    let room_input = wait_for(
        "the room picker's #room-name-input in tab one",
        STEP_TIMEOUT,
        || async {
            tab_one
                .find_element("#room-name-input")
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    step("type the room name", async {
        room_input.click().await?.type_str(&room).await
    })
    .await
    .unwrap_or_else(|error| panic!("could not type the room name {room:?}: {error}"));
    step("click Enter", async {
        tab_one
            .find_element("#room-name-submit")
            .await?
            .click()
            .await?;
        Ok::<_, chromiumoxide::error::CdpError>(())
    })
    .await
    .unwrap_or_else(|error| panic!("could not click #room-name-submit: {error}"));
    wait_for(
        &format!("tab one to navigate to {room_url}"),
        STEP_TIMEOUT,
        || async {
            let href = eval_string(&tab_one, "window.location.href").await?;
            if href == room_url {
                Ok(())
            } else {
                Err(format!("location is {href}"))
            }
        },
    )
    .await;

    // Tab two: straight to the room.
    let tab_two = step(
        "open the room in tab two",
        browser.new_page(room_url.as_str()),
    )
    .await
    .unwrap_or_else(|error| panic!("tab two could not open {room_url}: {error}"));

    for (name, tab) in [("tab one", &tab_one), ("tab two", &tab_two)] {
        wait_for(
            &format!("{name}'s #chat-status to read \"connected\""),
            STEP_TIMEOUT,
            || async {
                let status = eval_string(
                    tab,
                    "(document.querySelector('#chat-status') || {}).textContent || ''",
                )
                .await?;
                if status == "connected" {
                    Ok(())
                } else {
                    Err(format!("#chat-status reads {status:?}"))
                }
            },
        )
        .await;
    }

    // Type into tab one: ASCII as key presses, the rest as committed text
    // (the way an input method delivers it), then click Send. Tab two, opened
    // last, is in front, and a tab in the background gets no key events: the
    // DevTools command would hang, so tab one comes to the front first.
    let ascii = format!("hello from tab one {nanos} ");
    let non_ascii = "– 안녕 🎉";
    let message = format!("{ascii}{non_ascii}");
    step("type the message into tab one", async {
        tab_one.bring_to_front().await?;
        tab_one
            .find_element("#chat-message-input")
            .await?
            .click()
            .await?
            .type_str(&ascii)
            .await?;
        tab_one.execute(InsertTextParams::new(non_ascii)).await
    })
    .await
    .unwrap_or_else(|error| panic!("could not type {message:?} into tab one: {error}"));
    let typed = step(
        "read tab one's #chat-message-input",
        eval_string(
            &tab_one,
            "document.querySelector('#chat-message-input').value",
        ),
    )
    .await
    .unwrap_or_else(|error| panic!("could not read tab one's #chat-message-input: {error}"));
    assert_eq!(
        typed, message,
        "tab one's #chat-message-input should hold what was typed"
    );
    step("click Send in tab one", async {
        tab_one
            .find_element("#chat-message-submit")
            .await?
            .click()
            .await?;
        Ok::<_, chromiumoxide::error::CdpError>(())
    })
    .await
    .unwrap_or_else(|error| panic!("could not click #chat-message-submit: {error}"));

    for (name, tab) in [("tab one", &tab_one), ("tab two", &tab_two)] {
        let log = wait_for(
            &format!("{name}'s #chat-log to show {message:?}"),
            STEP_TIMEOUT,
            || async {
                let log = eval_string(
                    tab,
                    "(document.querySelector('#chat-log') || {}).value || ''",
                )
                .await?;
                if log.lines().any(|line| line == message) {
                    Ok(log)
                } else {
                    Err(format!("#chat-log holds {log:?}"))
                }
            },
        )
        .await;
        let copies = log.lines().filter(|line| *line == message).count();
        assert_eq!(
            copies, 1,
            "{name}'s #chat-log should show the message once: {log:?}"
        );
    }
}

/// A running Chromium and the task that drives its DevTools connection.
struct ChromeSession {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
}

impl ChromeSession {
    /// Starts headless Chromium with its profile in `profile`.
    ///
    /// Panics if there is no Chromium to start: this test never skips.
    async fn launch(profile: &Path) -> Self {
        let chrome = std::env::var_os("CHROME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROME));
        assert!(
            chrome.is_file(),
            "chromium not found at {}: install it with `apt-get install -y chromium` \
             (Debian; `.ci/install-chromium.sh` does it) or set CHROME=/path/to/chromium",
            chrome.display()
        );
        // The builder adds `--headless` (its default mode) and, with
        // `no_sandbox`, `--no-sandbox` (needed as root); flags are given
        // without their leading dashes.
        let config = BrowserConfig::builder()
            .chrome_executable(&chrome)
            .user_data_dir(profile)
            .no_sandbox()
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(STEP_TIMEOUT)
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .build()
            .unwrap_or_else(|error| panic!("invalid browser config: {error}"));
        let launched = tokio::time::timeout(LAUNCH_TIMEOUT + STEP_TIMEOUT, Browser::launch(config))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not start within {LAUNCH_TIMEOUT:?}",
                    chrome.display()
                )
            });
        let (browser, mut handler) = launched
            .unwrap_or_else(|error| panic!("could not launch {}: {error}", chrome.display()));
        // Drives the DevTools connection, as chromiumoxide's docs show; it
        // ends when the connection fails or closes.
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(error) = event {
                    eprintln!("chromium DevTools connection ended: {error}");
                    break;
                }
            }
        });
        Self { browser, handler }
    }

    /// Closes the browser (kills it if it does not close) and waits for its
    /// process to exit. Returns why a clean close failed, if it did.
    async fn close(mut self) -> Result<(), String> {
        let closed = match tokio::time::timeout(STEP_TIMEOUT, self.browser.close()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("could not close chromium: {error}")),
            Err(_) => Err(format!("chromium did not close within {STEP_TIMEOUT:?}")),
        };
        if closed.is_err() {
            // Kills the process and waits for it; nothing more to report.
            let _ = tokio::time::timeout(STEP_TIMEOUT, self.browser.kill()).await;
        }
        let exited = match tokio::time::timeout(STEP_TIMEOUT, self.browser.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("could not wait for chromium to exit: {error}")),
            Err(_) => Err(format!("chromium did not exit within {STEP_TIMEOUT:?}")),
        };
        let handler_ended = match tokio::time::timeout(STEP_TIMEOUT, &mut self.handler).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("the DevTools handler task failed: {error}")),
            Err(_) => {
                self.handler.abort();
                Err(format!(
                    "the DevTools handler did not stop within {STEP_TIMEOUT:?} of chromium's exit"
                ))
            }
        };
        closed.and(exited).and(handler_ended)
    }
}

/// A fresh Chromium profile directory, removed when dropped.
struct TempProfile(PathBuf);

impl TempProfile {
    fn new(unique: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chat-browser-test-{unique}"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("could not create {}: {error}", dir.display()));
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempProfile {
    fn drop(&mut self) {
        // Best effort: on a failed test Chromium may still be exiting.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shuts a server down on a blocking thread, within [`SHUTDOWN_TIMEOUT`].
async fn shut_down(
    server: &str,
    shutdown_and_join: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> Result<(), String> {
    let task = tokio::task::spawn_blocking(shutdown_and_join);
    match tokio::time::timeout(SHUTDOWN_TIMEOUT, task).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => Err(format!(
            "the {server} server's shutdown_and_join failed: {error}"
        )),
        Ok(Err(error)) => Err(format!(
            "the {server} server's shutdown_and_join panicked: {error}"
        )),
        Err(_) => Err(format!(
            "the {server} server did not shut down within {SHUTDOWN_TIMEOUT:?}"
        )),
    }
}

/// Runs one step, failing the test if it takes longer than [`STEP_TIMEOUT`].
async fn step<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP_TIMEOUT:?}: {what}"))
}

/// Polls `probe` until it returns `Ok`, failing the test with `what` and the
/// last thing `probe` saw if that takes longer than `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_seen = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, probe()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(seen)) => last_seen = Some(seen),
            // The deadline passed during this look; the previous one stands.
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}; last seen: {}",
                last_seen.as_deref().unwrap_or("no answer from the browser")
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Evaluates a JavaScript expression that yields a string in `page`.
async fn eval_string(page: &Page, expression: &str) -> Result<String, String> {
    page.evaluate(expression)
        .await
        .map_err(|error| format!("evaluating {expression:?} failed: {error}"))?
        .into_value::<String>()
        .map_err(|error| format!("{expression:?} did not yield a string: {error}"))
}

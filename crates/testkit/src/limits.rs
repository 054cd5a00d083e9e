//! Scenarios at the limits of the machine, for either server binary: out of
//! file descriptors, out of threads, and a long churn of connections that
//! must leave nothing behind.
//!
//! They need the server in a process of its own, so that its descriptors,
//! threads, memory and CPU can be read from `/proc` and its limits set with
//! `prlimit(1)`; each server crate calls them from its `tests/limits.rs`, so
//! the two servers run the same bodies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::procfs::process::Process;
use anyhow::Context;
use tokio::net::TcpStream;

use crate::{Client, POLL_INTERVAL, POLL_TIMEOUT, ServerProcess, unique_room};

/// How long a graceful stop may take.
pub(crate) const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// What a server process holds, read from `/proc/<pid>`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// User + system CPU since it started, seconds.
    pub cpu_s: f64,
}

/// The binary's file name, for what a test prints.
pub(crate) fn name(bin: &str) -> &str {
    bin.rsplit('/').next().unwrap_or(bin)
}

/// Reads [`Usage`] of process `pid`; panics if it is gone.
pub fn usage(pid: u32) -> Usage {
    try_usage(pid).unwrap_or_else(|error| panic!("cannot read /proc/{pid}: {error:#}"))
}

fn try_usage(pid: u32) -> anyhow::Result<Usage> {
    let process = Process::new(pid as i32).context("no such process")?;
    let stat = process.stat().context("cannot read stat")?;
    // Counted by listing `/proc/<pid>/fd`: procfs' `fd_count` takes the
    // directory's size (Linux 6.2's fast path), which was seen here to stay
    // one above the descriptors listed.
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .context("cannot list fds")?
        .count();
    let ticks = ::procfs::ticks_per_second() as f64;
    Ok(Usage {
        threads: stat.num_threads.max(0) as u64,
        fds: fds as u64,
        rss_kib: stat.rss * ::procfs::page_size() / 1024,
        cpu_s: (stat.utime + stat.stime) as f64 / ticks,
    })
}

/// Polls `pid`'s usage until `done` holds, for up to [`POLL_TIMEOUT`];
/// panics with `what` and the last reading otherwise.
pub async fn wait_for_usage(pid: u32, what: &str, done: impl Fn(&Usage) -> bool) -> Usage {
    let deadline = Instant::now() + POLL_TIMEOUT;
    loop {
        let now = usage(pid);
        if done(&now) {
            return now;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: not within {} s; last reading {now:?}",
                POLL_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A client joins a fresh room, sends a message and receives it back.
pub async fn chat_once(addr: SocketAddr, prefix: &str) -> Client {
    let mut client = Client::connect(addr, &unique_room(prefix)).await;
    client.send_chat("still serving").await;
    client.expect_message("still serving").await;
    client
}

/// Opens `n` TCP connections to `addr` that never send a byte.
pub async fn silent_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut silent = Vec::with_capacity(n);
    for i in 0..n {
        let stream = tokio::time::timeout(crate::STEP_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("silent connection {i} timed out"))
            .unwrap_or_else(|error| panic!("silent connection {i} failed: {error}"));
        silent.push(stream);
    }
    silent
}

/// Descriptors the server may hold in [`accept_backs_off_out_of_descriptors`].
const FD_LIMIT: u64 = 48;

/// Out of file descriptors, `accept` fails (EMFILE): the server backs off
/// instead of spinning, keeps its clients, and takes new ones once
/// descriptors come free.
///
/// The server runs under `prlimit --nofile=48`; silent connections use up
/// its descriptors (a long handshake timeout keeps them); while the
/// connections beyond wait in the backlog, its CPU time over a window stays
/// far below what a spinning acceptor burns; once some silent connections
/// leave, a client gets in and chats.
pub async fn accept_backs_off_out_of_descriptors(bin: &str) {
    let nofile = format!("--nofile={FD_LIMIT}:{FD_LIMIT}");
    let args = [
        nofile.as_str(),
        "--",
        bin,
        "--addr",
        "127.0.0.1:0",
        "--handshake-timeout-secs",
        "120",
    ];
    let server = ServerProcess::start("prlimit", &args);
    let (addr, pid) = (server.addr(), server.pid());
    let member = chat_once(addr, "emfile_before").await;

    let mut leaving = silent_connections(addr, FD_LIMIT as usize + 16).await;
    wait_for_usage(pid, "the server using all its descriptors", |u| {
        u.fds >= FD_LIMIT
    })
    .await;

    // What a spinning acceptor would burn: a core for the whole window.
    const WINDOW: Duration = Duration::from_secs(2);
    let before = usage(pid);
    tokio::time::sleep(WINDOW).await;
    let after = usage(pid);
    let busy = (after.cpu_s - before.cpu_s) / WINDOW.as_secs_f64();
    assert!(
        busy < 0.25,
        "out of descriptors, the server used {:.0}% of a core: it spins on accept",
        busy * 100.0
    );

    // Half the silent connections leave: the server takes the rest of the
    // backlog, and then a real client.
    let staying = leaving.split_off(leaving.len() / 2);
    drop(leaving);
    let member_after = chat_once(addr, "emfile_after").await;
    drop(staying);
    server
        .stop_gracefully(vec![member, member_after], EXIT_TIMEOUT)
        .await;
}

/// Runs `program args` under a user of its own whose thread count
/// `RLIMIT_NPROC` can bound: as root (who is exempt from the limit), as a
/// fresh numeric uid through `setpriv(1)`, from a copy of `bin` that uid can
/// execute; otherwise in a user namespace of its own (`unshare --user`),
/// where only its own threads count.
fn start_as_own_user(bin: &str, args: &[&str]) -> (ServerProcess, OwnUser) {
    let root = crate::proc_status_field(std::process::id(), "Uid")
        .map(|uids| uids.split_whitespace().nth(1) == Some("0"))
        .unwrap_or(false);
    if !root {
        let mut full = vec!["--user", "--", bin];
        full.extend_from_slice(args);
        let own = OwnUser {
            uid: None,
            _copy: None,
        };
        return (ServerProcess::start("unshare", &full), own);
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("server");
    std::fs::copy(bin, &copy).expect("copying the server binary");
    for (path, mode) in [(dir.path(), 0o755), (copy.as_path(), 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .expect("making the copy executable by anyone");
    }
    // A uid nobody else runs as, so that only the server's threads count.
    let uid = 40_000 + std::process::id() % 20_000;
    let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={uid}"));
    let copy = copy.to_str().expect("a UTF-8 temporary path").to_owned();
    let mut full = vec![
        reuid.as_str(),
        regid.as_str(),
        "--clear-groups",
        "--",
        copy.as_str(),
    ];
    full.extend_from_slice(args);
    let own = OwnUser {
        uid: Some(uid),
        _copy: Some(dir),
    };
    (ServerProcess::start("setpriv", &full), own)
}

/// The user a server runs as in [`start_as_own_user`].
struct OwnUser {
    /// The uid `setpriv` switched to (when the test runs as root).
    uid: Option<u32>,
    /// The copy of the binary that uid executes.
    _copy: Option<tempfile::TempDir>,
}

/// Sets the soft `RLIMIT_NPROC` of process `pid` to `threads` with
/// `prlimit(1)`, run as the process's own user (root may lack
/// `CAP_SYS_RESOURCE` in a container, and only the soft limit can go back
/// up without it).
fn limit_threads(pid: u32, threads: u64, own: &OwnUser) {
    let limit = format!("--nproc={threads}:");
    let pid = pid.to_string();
    let mut command = match own.uid {
        Some(uid) => {
            let mut setpriv = std::process::Command::new("setpriv");
            setpriv.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "--".into(),
                "prlimit".into(),
            ]);
            setpriv
        }
        None => std::process::Command::new("prlimit"),
    };
    let status = command
        .args(["--pid", &pid, &limit])
        .status()
        .expect("running prlimit");
    assert!(status.success(), "prlimit --pid {pid} {limit} failed");
}

/// The status and one-line body of the server's answer to an upgrade.
async fn upgrade_answer(addr: SocketAddr, prefix: &str) -> crate::http::HttpResponse {
    let path = format!("/ws/chat/{}/", unique_room(prefix));
    crate::http::exchange(addr, &crate::http::upgrade_request(addr, &path, &[])).await
}

/// For a thread-per-connection server: when a connection's thread cannot be
/// created (here `RLIMIT_NPROC`; elsewhere `pid_max`, `threads-max` or a
/// cgroup's `pids.max`), that client is refused with 503 and the server goes
/// on serving the others, and takes new clients once threads come free.
/// Both threads are checked: the reader (created at accept) and the writer
/// (created before the 101).
pub async fn refuses_503_out_of_threads(bin: &str) {
    let (server, own) = start_as_own_user(bin, &["--addr", "127.0.0.1:0"]);
    let (addr, pid) = (server.addr(), server.pid());
    let idle = usage(pid).threads;

    // Room for exactly one connection's two threads.
    limit_threads(pid, idle + 2, &own);
    let mut member = chat_once(addr, "nproc_member").await;
    let refused = upgrade_answer(addr, "nproc_no_reader").await;
    assert_eq!(refused.status, 503, "no reader thread: {refused:?}");
    assert!(
        refused.body.contains("thread"),
        "reason: {:?}",
        refused.body
    );
    member.send_chat("the member goes on").await;
    member.expect_message("the member goes on").await;
    member.send_close(1000, "done").await;
    member.expect_close(1000).await;
    wait_for_usage(pid, "the member's threads ending", |u| u.threads == idle).await;

    // Room for a reader but not its writer.
    limit_threads(pid, idle + 1, &own);
    let refused = upgrade_answer(addr, "nproc_no_writer").await;
    assert_eq!(refused.status, 503, "no writer thread: {refused:?}");
    assert!(
        refused.body.contains("thread"),
        "reason: {:?}",
        refused.body
    );
    wait_for_usage(pid, "the refused reader ending", |u| u.threads == idle).await;

    limit_threads(pid, idle + 100, &own);
    let after = chat_once(addr, "nproc_after").await;
    server.stop_gracefully(vec![after], EXIT_TIMEOUT).await;
}

/// Connect–join–send–disconnect cycles in [`churn_leaves_no_trace`].
pub const CHURN_CYCLES: usize = 100_000;

/// Cycles run first, so that the allocator, the kernel's socket caches and
/// the runtime have grown to their working size before the baseline.
const CHURN_WARM_UP: usize = 2_000;

/// Clients cycling at once.
const CHURN_CLIENTS: usize = 8;

/// How far resident memory may end above the baseline: the allocator keeps
/// some freed memory, but a leak of even 100 bytes a cycle (10 MB over
/// 100,000 cycles) would show.
const CHURN_RSS_MARGIN_KIB: u64 = 4 * 1024;

/// `cycles` times, from `CHURN_CLIENTS` clients at once: connect, join a
/// room of one's own, send a message, receive it, close. Afterwards the
/// server's threads and descriptors are back to the baseline taken after a
/// warm-up, and its RSS within `CHURN_RSS_MARGIN_KIB` of it: nothing leaks
/// per connection or per room.
pub async fn churn_leaves_no_trace(bin: &str, cycles: usize) {
    // Every cycle comes from 127.0.0.1, thousands a second: the rate of new
    // connections per address is lifted, the count per address is not, so
    // the churn also proves that an address's connections are given back
    // (a leak would refuse it with 429 after 256 cycles).
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--max-handshakes-per-ip-per-sec",
        "1000000",
    ];
    let server = ServerProcess::start(bin, &args);
    let (addr, pid) = (server.addr(), server.pid());
    let idle = usage(pid);

    churn(addr, CHURN_WARM_UP).await;
    let baseline = wait_for_usage(pid, "threads and descriptors back after the warm-up", |u| {
        u.threads == idle.threads && u.fds == idle.fds
    })
    .await;

    churn(addr, cycles).await;
    let after = wait_for_usage(pid, "threads and descriptors back after the churn", |u| {
        u.threads == baseline.threads && u.fds == baseline.fds
    })
    .await;
    let growth = after.rss_kib.saturating_sub(baseline.rss_kib);
    eprintln!(
        "{}: churn of {cycles} cycles: idle {idle:?}, baseline {baseline:?}, after {after:?}",
        name(bin)
    );
    assert!(
        growth <= CHURN_RSS_MARGIN_KIB,
        "RSS grew by {growth} KiB over {cycles} cycles (baseline {baseline:?}, after {after:?})"
    );
    server.stop_gracefully(Vec::new(), EXIT_TIMEOUT).await;
}

/// Runs `cycles` connect–join–send–close cycles from `CHURN_CLIENTS` tasks.
async fn churn(addr: SocketAddr, cycles: usize) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CHURN_CLIENTS {
        let next = std::sync::Arc::clone(&next);
        tasks.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < cycles {
                let mut client = chat_once(addr, "churn").await;
                client.send_close(1000, "cycle done").await;
                client.expect_close(1000).await;
            }
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished.expect("a churning client failed");
    }
}

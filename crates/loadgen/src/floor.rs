//! The write floor: the CPU one thread spends to `write()` a server's
//! chat frame to a loopback TCP socket, one frame per call and several,
//! measured on the machine (and in the benchmark run) that measures the
//! servers.
//!
//! Why: every delivery a chat server makes ends in a `write()`, or in a
//! share of one. On loopback that call does the whole TCP path of both
//! ends: the sender's stack, the loopback device, the receiver's stack, the
//! wake-up of the reader (the receive side runs as a softirq on the
//! writer's CPU, accounted to the writing thread when the kernel, as here,
//! has no separate IRQ time accounting). A server that writes each frame
//! with its own syscall cannot spend less CPU per delivery than this floor,
//! whatever its concurrency model; one that puts several frames in one
//! `write()` can. The report states each server's CPU per delivery as a
//! multiple of the floor, so that "sync costs twice async" can be read
//! against "the kernel alone costs one".
//!
//! How: [`Pairs::open`] makes N connection pairs on 127.0.0.1 (both ends
//! `TCP_NODELAY`, as the servers and the load generator set them) and a
//! tokio runtime of its own drains the client ends; its threads are not
//! measured. [`measure`] writes, on the calling thread, the frame the
//! servers send ([`frame`]: `chat_protocol::message::encode_chat` of a
//! load-generator message, in an unmasked WebSocket text frame)
//! round-robin over the server ends, `b` frames concatenated into each
//! socket's write, in whole rounds until the time is up, and reads the
//! thread's own CPU time before and after from
//! `/proc/thread-self/schedstat`: nanoseconds on CPU, user and system
//! (`/proc/thread-self/stat`'s clock ticks, 4 ms here, are too coarse, and
//! split it into user and system only). The scheduler updates that figure
//! at ticks and switches, so each reading first yields the CPU
//! (`sched_yield`), which brings it up to date to the microsecond.
//!
//! Not measured: encoding (the frame is built once), a server's rooms,
//! queues, locks and the wake-ups of its writers, waiting for readiness
//! (epoll), reading. A write that has to wait (a full socket buffer, or the
//! socket held by its reader) puts the writer to sleep: each sleep is
//! counted (`writer_sleeps`) and turned into a warning, since the figure
//! then includes it; the readers normally keep every buffer nearly empty.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_protocol::message::encode_chat;
use chat_protocol::tungstenite::protocol::frame::Frame;
use chat_protocol::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::probe::Probe;
use crate::sampler::Sampler;
use chat_record::{FloorBatch, FloorResults, ProcessFigures};

/// Connection pairs written to by default: as many sockets as a 1,000-client
/// fan-out writes to, so that the sockets' state does not all fit in the
/// caches, as in the servers.
pub const DEFAULT_CONNECTIONS: usize = 1000;
/// Writing at one frame per call before the first measurement: the
/// connections leave slow start, the caches and the allocator warm up.
pub const WARMUP: Duration = Duration::from_millis(200);
/// Each reader's buffer: several rounds of the largest batch (64 frames of
/// 80 bytes), so that a reader that fell behind catches up in one read.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// How long the readers get to read the rest once the writers close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What to measure.
#[derive(Debug, Clone)]
pub struct FloorParams {
    /// Loopback connection pairs written to, round-robin.
    pub connections: usize,
    /// Frames per `write()`, one measurement each, in this order.
    pub batch_sizes: Vec<usize>,
    /// Writing measured per batch size (whole rounds over every connection,
    /// at least one).
    pub per_batch: Duration,
    /// Bytes of the message's text, as `fanout --payload`.
    pub payload_bytes: usize,
    /// Threads of the runtime that drains the client ends.
    pub reader_threads: usize,
}

impl FloorParams {
    /// Checks the parameters make a measurement.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.batch_sizes.is_empty() || self.batch_sizes.contains(&0) {
            bail!("--batch must list frames per write, each at least 1");
        }
        if self.reader_threads == 0 {
            bail!("--readers must be at least 1");
        }
        Ok(())
    }
}

/// What a floor run measured, and the process around it.
#[derive(Debug, Clone)]
pub struct FloorOutcome {
    /// The measurements.
    pub results: FloorResults,
    /// The load generator's own process over the run (readers included).
    pub loadgen: ProcessFigures,
    /// What the figures must be read with: a writer that slept, bytes that
    /// did not arrive, a coarse CPU clock.
    pub warnings: Vec<String>,
    /// The listener the connections were made to.
    pub addr: SocketAddr,
}

/// The frame a server sends every member for one load-generator message of
/// `payload_bytes`: the JSON text `encode_chat` makes, in a final, unmasked
/// WebSocket text frame (80 bytes for a 64-byte message).
pub fn frame(payload_bytes: usize) -> Vec<u8> {
    let text = Probe {
        sender: 1,
        seq: 12_345,
        intended_us: 12_345_678,
    }
    .encode(payload_bytes);
    let mut out = Vec::new();
    Frame::message(encode_chat(&text), OpCode::Data(Data::Text), true)
        .format(&mut out)
        .expect("formatting a frame into a Vec cannot fail");
    out
}

/// N loopback connection pairs: the server ends to write to, the client
/// ends drained by a runtime of their own.
pub struct Pairs {
    writers: Vec<TcpStream>,
    readers: Vec<JoinHandle<io::Result<u64>>>,
    runtime: Runtime,
    addr: SocketAddr,
}

impl Pairs {
    /// Opens `connections` pairs through a listener on 127.0.0.1:0, both
    /// ends `TCP_NODELAY`, and starts draining the client ends on
    /// `reader_threads` threads.
    pub fn open(connections: usize, reader_threads: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(reader_threads.max(1))
            .thread_name("floor-reader")
            .enable_all()
            .build()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let mut writers = Vec::with_capacity(connections);
        let mut readers = Vec::with_capacity(connections);
        for _ in 0..connections {
            // One at a time: the accept queue never overflows.
            let client = TcpStream::connect(addr)?;
            client.set_nodelay(true)?;
            client.set_nonblocking(true)?;
            let (server, _) = listener.accept()?;
            server.set_nodelay(true)?;
            writers.push(server);
            readers.push(runtime.spawn(drain(client)));
        }
        Ok(Self {
            writers,
            readers,
            runtime,
            addr,
        })
    }

    /// The server ends, blocking, to write to.
    pub fn writers(&mut self) -> &mut [TcpStream] {
        &mut self.writers
    }

    /// The listener the pairs were made through.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The readers' runtime (a sampler can run on it, off the writer).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Closes the server ends and waits (bounded) for the readers to read
    /// everything: the bytes they received, in all.
    pub fn close(self) -> io::Result<u64> {
        let Self {
            writers,
            readers,
            runtime,
            ..
        } = self;
        drop(writers);
        runtime.block_on(async {
            let all = async {
                let mut total = 0;
                for reader in readers {
                    total += reader.await.map_err(io::Error::other)??;
                }
                Ok::<u64, io::Error>(total)
            };
            tokio::time::timeout(CLOSE_TIMEOUT, all)
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the readers had not read to the end {} s after the writers closed",
                            CLOSE_TIMEOUT.as_secs()
                        ),
                    )
                })?
        })
    }
}

/// Reads a client end to its end: the bytes read.
async fn drain(stream: TcpStream) -> io::Result<u64> {
    let mut stream = tokio::net::TcpStream::from_std(stream)?;
    let mut buffer = vec![0; READ_BUFFER_BYTES];
    let mut total = 0;
    loop {
        match stream.read(&mut buffer).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// The calling thread's CPU counters.
#[derive(Debug, Clone, Copy)]
struct ThreadCpu {
    /// Time on CPU, user and system, nanoseconds.
    on_cpu_ns: u64,
    /// User time, clock ticks.
    user_ticks: u64,
    /// System time, clock ticks.
    system_ticks: u64,
    /// Times the thread slept.
    voluntary: u64,
    /// Times the thread was preempted.
    involuntary: u64,
}

/// Which clock [`ThreadCpu::on_cpu_ns`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpuClock {
    /// `/proc/thread-self/schedstat`, nanoseconds.
    Schedstat,
    /// utime + stime of `/proc/thread-self/stat`, clock ticks.
    StatTicks,
}

impl CpuClock {
    fn name(self) -> &'static str {
        match self {
            Self::Schedstat => "schedstat",
            Self::StatTicks => "stat",
        }
    }
}

impl ThreadCpu {
    /// Reads the calling thread's counters.
    fn read() -> io::Result<(Self, CpuClock)> {
        // Yielding makes the scheduler account the time run so far, which
        // schedstat otherwise shows only as of the last tick.
        std::thread::yield_now();
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
        let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
        // The fields after the command name, which is in parentheses and
        // may hold anything: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| -> io::Result<u64> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| io::Error::other(format!("no field {n} in /proc/thread-self/stat")))
        };
        let (user_ticks, system_ticks) = (field(14)?, field(15)?);
        let status = std::fs::read_to_string("/proc/thread-self/status")?;
        let switches = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let (on_cpu_ns, clock) = match schedstat {
            Some(ns) => (ns, CpuClock::Schedstat),
            None => {
                let ticks = procfs::ticks_per_second().max(1);
                let ns = (user_ticks + system_ticks) * 1_000_000_000 / ticks;
                (ns, CpuClock::StatTicks)
            }
        };
        Ok((
            Self {
                on_cpu_ns,
                user_ticks,
                system_ticks,
                voluntary: switches("voluntary_ctxt_switches:"),
                involuntary: switches("nonvoluntary_ctxt_switches:"),
            },
            clock,
        ))
    }
}

/// Writes all of `buffer` to `writer`: the `write()` calls it took.
fn write_counted(writer: &mut TcpStream, mut buffer: &[u8]) -> io::Result<u64> {
    let mut calls = 0;
    while !buffer.is_empty() {
        calls += 1;
        match writer.write(buffer) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buffer = &buffer[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(calls)
}

/// Writes `frame` round-robin over `writers`, `frames_per_write` frames
/// concatenated into each socket's write, in whole rounds until `duration`
/// has passed (at least one round), on the calling thread, and measures
/// that thread's CPU.
pub fn measure(
    writers: &mut [TcpStream],
    frame: &[u8],
    frames_per_write: usize,
    duration: Duration,
) -> io::Result<FloorBatch> {
    let frames_per_write = frames_per_write.max(1);
    let buffer = frame.repeat(frames_per_write);
    let (before, _) = ThreadCpu::read()?;
    let started = Instant::now();
    let mut rounds = 0u64;
    let mut writes = 0u64;
    loop {
        for writer in writers.iter_mut() {
            writes += write_counted(writer, &buffer)?;
        }
        rounds += 1;
        if started.elapsed() >= duration {
            break;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let (after, _) = ThreadCpu::read()?;
    let frames = rounds * writers.len() as u64 * frames_per_write as u64;
    let cpu_s = after.on_cpu_ns.saturating_sub(before.on_cpu_ns) as f64 / 1e9;
    let ticks = procfs::ticks_per_second().max(1) as f64;
    Ok(FloorBatch {
        frames_per_write: frames_per_write as u64,
        frames,
        writes,
        wall_s,
        cpu_s,
        cpu_user_s: after.user_ticks.saturating_sub(before.user_ticks) as f64 / ticks,
        cpu_system_s: after.system_ticks.saturating_sub(before.system_ticks) as f64 / ticks,
        cpu_us_per_frame: cpu_s * 1e6 / frames.max(1) as f64,
        cpu_us_per_write: cpu_s * 1e6 / writes.max(1) as f64,
        frames_per_s_per_core: if cpu_s > 0.0 {
            frames as f64 / cpu_s
        } else {
            0.0
        },
        writer_sleeps: after.voluntary.saturating_sub(before.voluntary),
        writer_preemptions: after.involuntary.saturating_sub(before.involuntary),
    })
}

/// The whole measurement: open the pairs, warm up, measure each batch size
/// on the calling thread, close, and check every byte arrived.
pub fn run(params: &FloorParams) -> anyhow::Result<FloorOutcome> {
    params.validate()?;
    let frame = frame(params.payload_bytes);
    let mut pairs = Pairs::open(params.connections, params.reader_threads).with_context(|| {
        format!(
            "cannot open {} loopback connection pairs",
            params.connections
        )
    })?;
    let addr = pairs.addr();
    let (_, clock) = ThreadCpu::read().context("cannot read /proc/thread-self")?;
    let mut sampler = {
        let _runtime = pairs.runtime().enter();
        Sampler::start(std::process::id())?
    };
    pairs.runtime().block_on(sampler.begin_window());

    let warmup = measure(pairs.writers(), &frame, 1, WARMUP).context("writing (warm-up)")?;
    let mut bytes_written = warmup.frames * frame.len() as u64;
    let mut batches = Vec::with_capacity(params.batch_sizes.len());
    for &frames_per_write in &params.batch_sizes {
        let batch = measure(pairs.writers(), &frame, frames_per_write, params.per_batch)
            .with_context(|| format!("writing {frames_per_write} frames per write"))?;
        bytes_written += batch.frames * frame.len() as u64;
        batches.push(batch);
    }

    let loadgen = pairs.runtime().block_on(sampler.finish(None));
    let bytes_read = pairs.close().context("draining the loopback connections")?;

    let mut warnings = Vec::new();
    for batch in batches.iter().filter(|b| b.writer_sleeps > 0) {
        warnings.push(format!(
            "at {} frames per write the writer slept {} times (a write waited for a full socket buffer or for its reader): the figure includes those waits",
            batch.frames_per_write, batch.writer_sleeps
        ));
    }
    if bytes_read != bytes_written {
        warnings.push(format!(
            "the readers received {bytes_read} of the {bytes_written} bytes written"
        ));
    }
    if clock == CpuClock::StatTicks {
        warnings.push(
            "no /proc/thread-self/schedstat: the writer's CPU is in clock ticks, coarse over a short measurement"
                .to_owned(),
        );
    }
    Ok(FloorOutcome {
        results: FloorResults {
            frame_bytes: frame.len() as u64,
            cpu_clock: clock.name().to_owned(),
            batches,
            bytes_written,
            bytes_read,
        },
        loadgen,
        warnings,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_protocol::tungstenite::protocol::frame::FrameHeader;
    use std::io::Cursor;

    #[test]
    fn the_frame_is_what_a_server_sends() {
        let bytes = frame(64);
        // 2-byte header (FIN + text, unmasked length < 126) and
        // {"message":"<64 bytes>"}.
        assert_eq!(bytes.len(), 2 + 14 + 64);
        let mut cursor = Cursor::new(&bytes);
        let (header, length) = FrameHeader::parse(&mut cursor)
            .expect("a valid header")
            .expect("complete");
        assert!(header.is_final);
        assert!(header.mask.is_none());
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        let text = std::str::from_utf8(&bytes[2..]).expect("UTF-8");
        assert_eq!(length as usize, text.len());
        let parsed = chat_protocol::message::ServerFrame::parse(text).expect("a server frame");
        assert!(matches!(
            parsed,
            chat_protocol::message::ServerFrame::Message { message } if message.len() == 64
        ));
    }

    #[test]
    fn measures_and_every_byte_arrives() {
        let params = FloorParams {
            connections: 20,
            batch_sizes: vec![1, 4],
            per_batch: Duration::from_millis(20),
            payload_bytes: 64,
            reader_threads: 1,
        };
        let outcome = run(&params).expect("a floor run");
        let results = &outcome.results;
        assert_eq!(results.frame_bytes, 80);
        assert_eq!(results.batches.len(), 2);
        assert_eq!(results.bytes_read, results.bytes_written);
        for (batch, b) in results.batches.iter().zip([1, 4]) {
            assert_eq!(batch.frames_per_write, b);
            assert_eq!(batch.frames % (20 * b), 0, "whole rounds");
            assert!(batch.writes >= batch.frames / b);
            assert!(batch.cpu_s > 0.0, "{batch:?}");
            assert!(batch.cpu_us_per_write >= batch.cpu_us_per_frame);
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let good = FloorParams {
            connections: 1,
            batch_sizes: vec![1],
            per_batch: Duration::ZERO,
            payload_bytes: 64,
            reader_threads: 1,
        };
        assert!(good.validate().is_ok());
        for bad in [
            FloorParams {
                connections: 0,
                ..good.clone()
            },
            FloorParams {
                batch_sizes: vec![1, 0],
                ..good.clone()
            },
            FloorParams {
                reader_threads: 0,
                ..good.clone()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}

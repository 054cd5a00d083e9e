//! What a scenario does where it is told nothing: `chat-loadgen`'s
//! command-line defaults, and the sweep driver's (`chat-bench`) for a step
//! that leaves a field out, written once.

/// Rooms the clients are spread over.
pub const ROOMS: u64 = 1;
/// Senders per room.
pub const SENDERS: u64 = 1;
/// Messages per second, per sender.
pub const RATE_PER_S: f64 = 100.0;
/// Bytes of each message's text.
pub const PAYLOAD_BYTES: usize = 64;
/// Seconds of load before measuring.
pub const WARMUP_S: f64 = 2.0;
/// Seconds measured.
pub const DURATION_S: f64 = 10.0;
/// Seconds without a delivery, once senders stop, after which the rest is lost.
pub const DRAIN_S: f64 = 5.0;
/// The longest wait, once senders stop, for deliveries still arriving.
pub const DRAIN_MAX_S: f64 = 60.0;
/// Messages per second, per sender of the busy room.
pub const BUSY_RATE_PER_S: f64 = 100.0;
/// Seconds to wait for one connection.
pub const CONNECT_TIMEOUT_S: f64 = 10.0;
/// Connections opened at once.
pub const CONCURRENCY: usize = 256;
/// Capacity: clients in the first step.
pub const CAPACITY_START: u64 = 100;
/// Capacity: clients added per step.
pub const CAPACITY_STEP: u64 = 100;
/// Capacity: the largest step.
pub const CAPACITY_MAX: u64 = 5000;
/// Capacity: the p99 latency a step must stay within, milliseconds.
pub const SLO_MS: f64 = 250.0;
/// Connections: seconds they are held open.
pub const HOLD_S: f64 = 5.0;
/// Connections: failures after which no new one is tried.
pub const MAX_FAILURES: u64 = 100;

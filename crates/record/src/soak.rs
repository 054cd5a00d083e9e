//! The JSON record of one soak run (`chat-loadgen soak --json FILE`): one
//! object per server per run, appended as one line to `soak.jsonl`, and
//! read by the report's endurance section.
//!
//! Units are in the field names, as in [`crate::Record`]: `_s` seconds,
//! `_kib` KiB, `_per_s` per second.

use serde::{Deserialize, Serialize};

/// One soak run against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakRecord {
    /// Always `soak`.
    pub scenario: String,
    /// The server's label (`--label`: `sync`, `async`).
    pub server: String,
    /// The commit of this project that ran the load.
    pub commit: String,
    /// When the run started, RFC 3339, UTC.
    pub started_at: String,
    /// The URL driven (`ws://HOST:PORT`).
    pub url: String,
    /// The exact command line of the load generator.
    pub command: String,
    /// The load, as asked.
    pub params: SoakParams,
    /// The server process read from `/proc` every `sample_interval_s`,
    /// oldest first; the first sample is taken before any load starts.
    pub samples: Vec<SoakSample>,
    /// Everything the run counted.
    pub totals: SoakTotals,
    /// Zero loss, duplicates, reorderings and unexpected closes among the
    /// well-behaved clients, and every hostile client answered as the
    /// protocol says.
    pub passed: bool,
    /// What a reader must not miss: where it lost, what went wrong.
    pub warnings: Vec<String>,
}

/// The soak's load, as asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakParams {
    /// How long the load ran, in seconds.
    pub duration_s: f64,
    /// Seconds between two samples of the server.
    pub sample_interval_s: f64,
    /// The steady rooms: members of each (e.g. `[2, 10, 50]`).
    pub room_sizes: Vec<u32>,
    /// Messages per second sent in each steady room, by its senders together.
    pub rate_per_room_per_s: f64,
    /// Members of each steady room that send (the first ones; fewer in a
    /// room that has fewer members). Two or more put several senders'
    /// messages in one room, so that the room's one order is tested, not
    /// only each sender's. Absent from records written before it: 1.
    #[serde(default = "one")]
    pub senders_per_room: u32,
    /// Connect–join–send–disconnect cycles started per second.
    pub churn_per_s: f64,
    /// Seconds between two slow readers (a member that stops reading in a
    /// busy room until the server closes it with 1013).
    pub slow_reader_every_s: f64,
    /// Seconds between two hostile clients (bad frames, bad handshakes).
    pub bad_client_every_s: f64,
}

/// One reading of the server process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoakSample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Resident memory (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Threads of the process.
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/<pid>/fd`).
    pub fds: u64,
    /// User + system CPU since the process started, seconds.
    pub cpu_s: f64,
    /// Connections the load generator had open at that moment.
    pub client_connections: u64,
    /// Deliveries to well-behaved members counted so far.
    pub delivered: u64,
}

/// What the run counted, over all of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakTotals {
    /// Chat messages sent by well-behaved clients (steady rooms and churn).
    pub sent: u64,
    /// Deliveries owed to well-behaved members.
    pub expected: u64,
    /// Deliveries received by well-behaved members.
    pub delivered: u64,
    /// Owed but never received.
    pub lost: u64,
    /// Received more than once.
    pub duplicates: u64,
    /// Received out of the room's one order.
    pub out_of_order: u64,
    /// Well-behaved connections closed or failed without asking to.
    pub unexpected_closes: u64,
    /// Connect–join–send–disconnect cycles completed.
    pub churn_cycles: u64,
    /// Churn cycles that failed (refused, lost their echo, broke).
    pub churn_failures: u64,
    /// Slow readers started.
    pub slow_readers: u64,
    /// Slow readers the server closed with 1013, as it should.
    pub slow_readers_closed_1013: u64,
    /// Hostile clients started.
    pub bad_clients: u64,
    /// Hostile clients answered as the protocol says (error reply, close
    /// code or HTTP status).
    pub bad_clients_answered: u64,
    /// Frames well-behaved clients received that were not this run's chat
    /// messages for their room: error replies, unknown messages, another
    /// room's. Junk that reached a member: a failure. Absent from records
    /// written before it: 0.
    #[serde(default)]
    pub foreign_frames: u64,
}

fn one() -> u32 {
    1
}

impl SoakSample {
    /// CPU utilisation between `earlier` and `self`: 1.0 is one core busy.
    pub fn cpu_since(&self, earlier: &SoakSample) -> f64 {
        let wall = self.t_s - earlier.t_s;
        if wall > 0.0 {
            (self.cpu_s - earlier.cpu_s) / wall
        } else {
            0.0
        }
    }
}

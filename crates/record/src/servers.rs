//! The servers a sweep measured, as data: `servers.json` beside
//! `runs.jsonl`.
//!
//! A comparison is only as fair as what each side ran with. The sweep
//! writes, for every server it measured, what it is, how it was started,
//! its settings (queue sizes, what it does with a slow member) and, for a
//! reference server, whether it passed the admission check that every
//! server must pass before it is measured: each message reaches every
//! member of its room, the sender included; nothing crosses rooms; two
//! senders' messages reach every member in one order. The report states
//! them from this file.

use serde::{Deserialize, Serialize};

/// Which side of the comparison a server is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// One of this project's servers (chat-sync, chat-async).
    Ours,
    /// A WebSocket server engineers already trust, speaking our protocol
    /// (`peers/`).
    Reference,
    /// The Django Channels tutorial chat this project reproduces.
    Django,
}

/// The admission check's outcome for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Admission {
    /// Every check passed: the server was measured.
    Passed,
    /// A check failed (what failed, in words): the server was not measured.
    Failed(String),
    /// It could not be started or installed (why): not measured.
    Unavailable(String),
}

impl Admission {
    /// Whether the server may be measured.
    pub fn passed(&self) -> bool {
        matches!(self, Self::Passed)
    }
}

/// One server of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSetup {
    /// The label its runs carry (`Record::server`): `sync`, `uws`...
    pub label: String,
    /// What it is, in words: "uWebSockets.js (npm uwebsockets 3.0.6)".
    pub name: String,
    /// Ours, a reference server, or Django.
    pub kind: ServerKind,
    /// How the sweep started it (program and arguments; the port is 0).
    pub command: String,
    /// Its settings that bear on the comparison, in words: queue bounds,
    /// what a slow member gets, threads.
    pub settings: String,
    /// Whether it may use more than one core, in words, for the cores
    /// experiment ("one thread": Node.js).
    pub cores: String,
    /// The admission check's outcome.
    pub admission: Admission,
}

/// Every server of a sweep, in the order they were measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Servers {
    /// One entry per server.
    pub servers: Vec<ServerSetup>,
}

impl Servers {
    /// The entry labelled `label`.
    pub fn get(&self, label: &str) -> Option<&ServerSetup> {
        self.servers.iter().find(|s| s.label == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_read_back() {
        let servers = Servers {
            servers: vec![ServerSetup {
                label: "uws".into(),
                name: "uWebSockets.js".into(),
                kind: ServerKind::Reference,
                command: "node peers/uws/server.js".into(),
                settings: "closed past 64 MiB of backlog".into(),
                cores: "one thread".into(),
                admission: Admission::Failed("nothing across rooms".into()),
            }],
        };
        let json = serde_json::to_string(&servers).expect("encodes");
        assert!(json.contains(r#""outcome":"failed""#), "{json}");
        let back: Servers = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, servers);
        assert!(!back.get("uws").expect("listed").admission.passed());
        assert!(back.get("sync").is_none());
    }
}

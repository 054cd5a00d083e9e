//! Limits per client address: how many connections one address may hold
//! (`--max-connections-per-ip`, pending handshakes included) and how fast it
//! may open new ones (`--max-handshakes-per-ip-per-sec`).
//!
//! The server-wide limits (`--max-connections`, and `--max-pending-handshakes`
//! with eviction of the oldest silent handshake, [`crate::pending`]) bound
//! what all clients together hold, but one address could still take every
//! slot. So each accepted connection is checked against its address before
//! it takes a handshake slot, and one over either limit is refused at once
//! with 429: a flood from one address costs its neighbours only the
//! acceptor's time to refuse it.
//!
//! An address is an IPv4 address, or an IPv6 /64 (one host's usual share:
//! counted by the full address, one host could open connections from 2^64
//! of them); an IPv4-mapped IPv6 address is its IPv4 address. The count of
//! an address lives in a map entry while it has connections. The rate is
//! governor's GCRA per address, with a burst of the per-address connection
//! limit, so that a NAT's worth of clients reconnecting at once (after a
//! restart) get in, and a steady rate after that; governor's state for
//! addresses that have been quiet long enough to look new is pruned whenever
//! it has doubled since the last pruning, so it is bounded by the addresses
//! recently seen, not by every address ever seen.
//!
//! Both servers check here, from their acceptor; each holds the returned
//! [`IpSlot`] for as long as the connection lives.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ServerConfig;
use crate::route::Refusal;

/// The governor state size below which it is never pruned.
const PRUNE_FLOOR: usize = 1024;

/// A client address as the limits count it: IPv4, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    /// The address `ip` counts as.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// The per-address counts and rates of one server.
pub struct PerIpLimits {
    max_connections: usize,
    connections: Mutex<HashMap<ClientAddr, usize>>,
    handshakes: DefaultKeyedRateLimiter<ClientAddr>,
    /// The rate limiter's state size after its last pruning.
    pruned_to: AtomicUsize,
}

/// One connection's place in its address's count, given back on drop.
#[must_use = "the connection counts against its address only while this lives"]
pub struct IpSlot {
    limits: Arc<PerIpLimits>,
    addr: ClientAddr,
}

impl PerIpLimits {
    /// The limits `config` sets.
    pub fn new(config: &ServerConfig) -> Arc<Self> {
        Self::with(
            config.max_connections_per_ip,
            config.max_handshakes_per_ip_per_sec,
        )
    }

    /// At most `max_connections` per address (at least 1), opened at
    /// `per_sec` a second (at least 1) after a burst of `max_connections`.
    pub fn with(max_connections: usize, per_sec: u32) -> Arc<Self> {
        let burst = u32::try_from(max_connections).unwrap_or(u32::MAX);
        let quota = Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            max_connections: max_connections.max(1),
            connections: Mutex::new(HashMap::new()),
            handshakes: RateLimiter::keyed(quota),
            pruned_to: AtomicUsize::new(0),
        })
    }

    /// Counts a new connection from `ip`, or says why it is refused: its
    /// address holds `--max-connections-per-ip` already, or has opened
    /// connections faster than `--max-handshakes-per-ip-per-sec`. A refused
    /// connection is not counted.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, Refusal> {
        let addr = ClientAddr::of(ip);
        let mut connections = self.lock();
        let held = connections.get(&addr).copied().unwrap_or(0);
        if held >= self.max_connections {
            return Err(Refusal::TooManyFromAddress);
        }
        if self.handshakes.check_key(&addr).is_err() {
            return Err(Refusal::TooFastFromAddress);
        }
        connections.insert(addr, held + 1);
        drop(connections);
        self.prune_if_grown();
        Ok(IpSlot {
            limits: Arc::clone(self),
            addr,
        })
    }

    /// Connections counted for `ip`'s address now.
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.lock().get(&ClientAddr::of(ip)).copied().unwrap_or(0)
    }

    /// Addresses with connections now.
    pub fn addresses(&self) -> usize {
        self.lock().len()
    }

    fn prune_if_grown(&self) {
        let pruned_to = self.pruned_to.load(Ordering::Relaxed);
        if self.handshakes.len() <= (2 * pruned_to).max(PRUNE_FLOOR) {
            return;
        }
        self.handshakes.retain_recent();
        self.handshakes.shrink_to_fit();
        self.pruned_to
            .store(self.handshakes.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientAddr, usize>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut connections = self.limits.lock();
        if let Entry::Occupied(mut entry) = connections.entry(self.addr) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    #[test]
    fn an_address_holds_at_most_its_connections() {
        let limits = PerIpLimits::with(3, 1000);
        let held: Vec<IpSlot> = (0..3)
            .map(|_| limits.admit(ip("10.0.0.1")).expect("within the limit"))
            .collect();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(limits.admit(ip("10.0.0.2")).is_ok(), "another address");
        drop(held);
        assert_eq!(limits.connections(ip("10.0.0.1")), 0);
        assert_eq!(limits.addresses(), 0, "no entry outlives its connections");
    }

    #[test]
    fn beyond_the_burst_the_rate_refuses() {
        let limits = PerIpLimits::with(4, 1);
        let mut held = Vec::new();
        for _ in 0..4 {
            let slot = limits.admit(ip("10.0.0.1")).expect("the burst");
            held.push(slot);
        }
        held.clear();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).err(),
            Some(Refusal::TooFastFromAddress),
            "the burst is spent and a second has not passed"
        );
        assert!(limits.admit(ip("10.0.0.2")).is_ok(), "another address");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            ClientAddr::of(ip("2001:db8:1:2:aaaa::1")),
            ClientAddr::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            ClientAddr::of(ip("2001:db8:1:2::1")),
            ClientAddr::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientAddr::of(ip("::ffff:192.0.2.7")),
            ClientAddr::of(ip("192.0.2.7"))
        );
    }
}

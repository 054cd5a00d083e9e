//! Connecting to a chat server, given only its URL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_protocol::RoomName;
use chat_protocol::tungstenite::client::IntoClientRequest;
use chat_protocol::tungstenite::protocol::WebSocketConfig;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;

/// Which of `targets` URLs member `member` of room `room` connects to:
/// (`room` + `member`) mod `targets`.
///
/// Deterministic, and even: a room's members go round the URLs, so every
/// room with at least as many members as URLs has members behind every
/// URL; and each room starts one URL further, so that senders (a room's
/// first members) are spread too, even one per room.
pub fn spread(room: u64, member: u64, targets: usize) -> usize {
    ((room + member) % targets.max(1) as u64) as usize
}

/// Resolves every URL (at least one) and checks each accepts connections.
pub async fn resolve_all(urls: &[String], timeout: Duration) -> anyhow::Result<Vec<Target>> {
    if urls.is_empty() {
        bail!("no --url given");
    }
    let mut targets = Vec::with_capacity(urls.len());
    for url in urls {
        let target = Target::resolve(url).await?;
        target.check_reachable(timeout).await?;
        targets.push(target);
    }
    Ok(targets)
}

/// A client connection.
pub type Connection = WebSocketStream<TcpStream>;

/// Read buffer of each client: small, because a run holds thousands.
const CLIENT_READ_BUFFER: usize = 16 * 1024;

/// The loopback addresses that connections to a server on loopback come
/// from, in turn, when the caller names none: 127.0.0.1 to 127.0.0.200.
///
/// Real clients come from many addresses, and our servers limit what one
/// address may hold (`--max-connections-per-ip`, 256) and how fast it may
/// connect: spread this way, 20,000 clients are 100 per address, so a run
/// measures the servers at their defaults. (A server on another machine
/// sees this machine's one address: raise its per-address limits for a run.)
pub const LOOPBACK_SOURCES: u8 = 200;

/// The server to drive: `ws://HOST:PORT` (or `http://`), any path ignored;
/// clients connect to `/ws/chat/<room>/` as the tutorial's page does.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT` as given, for the `Host` header.
    pub authority: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// The URL as given.
    pub url: String,
    /// Connections opened so far, for [`LOOPBACK_SOURCES`].
    opened: Arc<AtomicU64>,
}

impl Target {
    /// Parses `url` and resolves its host.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let rest = ["ws://", "http://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .with_context(|| format!("unsupported URL {url:?}: expected ws://HOST:PORT"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            bail!("no host in URL {url:?}");
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve {authority}"))?
            .next()
            .with_context(|| format!("no address for {authority}"))?;
        Ok(Self {
            authority: authority.to_owned(),
            addr,
            url: url.to_owned(),
            opened: Arc::default(),
        })
    }

    /// The target at `addr`, named by it (`ws://ADDR`).
    pub fn at(addr: SocketAddr) -> Self {
        Self {
            authority: addr.to_string(),
            addr,
            url: format!("ws://{addr}"),
            opened: Arc::default(),
        }
    }

    /// The source address of the next connection that names none: the
    /// next of [`LOOPBACK_SOURCES`] for a server on IPv4 loopback, else the
    /// system's choice.
    fn next_source(&self) -> Option<IpAddr> {
        let IpAddr::V4(server) = self.addr.ip() else {
            return None;
        };
        if !server.is_loopback() {
            return None;
        }
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let last_octet = 1 + (n % u64::from(LOOPBACK_SOURCES)) as u8;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
    }

    /// Checks that the server accepts TCP connections at all.
    pub async fn check_reachable(&self, timeout: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(timeout, TcpStream::connect(self.addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => bail!("cannot connect to {}: {error}", self.url),
            Err(_) => bail!("cannot connect to {}: timed out", self.url),
        }
    }

    /// Opens a WebSocket to `room`, from `source` if given (else see
    /// [`LOOPBACK_SOURCES`]); returns it and how long the TCP connect and the
    /// handshake took.
    pub async fn connect(
        &self,
        room: &RoomName,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> anyhow::Result<(Connection, Duration)> {
        let started = Instant::now();
        let source = source.or_else(|| self.next_source());
        let attempt = async {
            let socket = match self.addr {
                SocketAddr::V4(_) => TcpSocket::new_v4(),
                SocketAddr::V6(_) => TcpSocket::new_v6(),
            }?;
            if let Some(source) = source {
                socket.bind(SocketAddr::new(source, 0))?;
            }
            let stream = socket.connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let mut request =
                format!("ws://{}{}", self.authority, room.ws_path()).into_client_request()?;
            // As a browser on the server's own page would: Django Channels'
            // `AllowedHostsOriginValidator` refuses a WebSocket without it.
            request
                .headers_mut()
                .insert("Origin", format!("http://{}", self.authority).parse()?);
            let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
            anyhow::Ok(ws)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(ws)) => Ok((ws, started.elapsed())),
            Ok(Err(error)) => Err(error),
            Err(_) => bail!("timed out after {} s", timeout.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_members_go_round_the_urls_from_one_further_each_room() {
        // Room 0: URLs 0, 1, 2, 0, ...; room 1: 1, 2, 0, 1, ...
        let room = |r: u64| -> Vec<usize> { (0..7).map(|k| spread(r, k, 3)).collect() };
        assert_eq!(room(0), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(room(1), [1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(room(5), [2, 0, 1, 2, 0, 1, 2]);
        // One sender per room: the rooms' senders (member 0) are spread.
        let senders: Vec<usize> = (0..4).map(|r| spread(r, 0, 2)).collect();
        assert_eq!(senders, [0, 1, 0, 1]);
        // One URL: everyone behind it.
        assert!((0..50).all(|i| spread(i % 7, i / 7, 1) == 0));
    }
}

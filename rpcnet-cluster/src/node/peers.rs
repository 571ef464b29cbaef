//! The node's clients of its peers: one per address it gossips to, bounded so that gossip
//! naming addresses without end (forged members, a flood) cannot grow the table, and
//! refusing addresses no node can listen on.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use rpcnet_runtime::{ClientEndpoint, RpcClient, RpcConfig};

/// The peer clients, at most `capacity` of them; the least recently used goes first.
#[derive(Debug)]
pub(super) struct PeerClients {
    /// Each client and the tick of its last use.
    clients: HashMap<SocketAddr, (RpcClient, u64)>,
    /// Uses from oldest to newest; an entry whose tick is no longer its client's last use
    /// is stale and skipped.
    order: VecDeque<(SocketAddr, u64)>,
    tick: u64,
    capacity: usize,
}

/// Whether a node could be listening at `addr`: not an unspecified, broadcast or
/// multicast address, not port 0.
pub(super) fn dialable(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    addr.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast())
}

impl PeerClients {
    pub(super) fn new(capacity: usize) -> Self {
        PeerClients {
            clients: HashMap::new(),
            order: VecDeque::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// The client of `addr`, made on first use (connecting lazily), or `None` for an
    /// address no node can listen on.
    pub(super) fn get(
        &mut self,
        addr: SocketAddr,
        endpoint: &ClientEndpoint,
        config: &RpcConfig,
    ) -> Option<RpcClient> {
        if !dialable(addr) {
            return None;
        }
        self.tick += 1;
        self.order.push_back((addr, self.tick));
        if let Some((client, used)) = self.clients.get_mut(&addr) {
            *used = self.tick;
            let client = client.clone();
            self.compact();
            return Some(client);
        }
        while self.clients.len() >= self.capacity && self.evict_least_recent() {}
        let client = RpcClient::lazy(endpoint, addr, config.clone());
        self.clients.insert(addr, (client.clone(), self.tick));
        Some(client)
    }

    /// Forgets the client of `addr` (its peer failed or left: a return gets a fresh one).
    pub(super) fn remove(&mut self, addr: &SocketAddr) {
        self.clients.remove(addr);
    }

    /// How many clients are kept.
    pub(super) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Drops the least recently used client; `false` if there was none to drop.
    fn evict_least_recent(&mut self) -> bool {
        while let Some((addr, tick)) = self.order.pop_front() {
            if self
                .clients
                .get(&addr)
                .is_some_and(|(_, used)| *used == tick)
            {
                self.clients.remove(&addr);
                return true;
            }
        }
        false
    }

    /// Drops stale uses once they outnumber the clients a few times over, so that the
    /// order stays proportional to the table.
    fn compact(&mut self) {
        if self.order.len() > 4 * self.capacity {
            let clients = &self.clients;
            self.order
                .retain(|(addr, tick)| clients.get(addr).is_some_and(|(_, used)| used == tick));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (ClientEndpoint, RpcConfig) {
        let config = RpcConfig::new(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem"),
            "127.0.0.1:0",
        );
        let endpoint = ClientEndpoint::new(&config).expect("endpoint");
        (endpoint, config)
    }

    fn addr(n: u32) -> SocketAddr {
        let [a, b, c, d] = n.to_be_bytes();
        SocketAddr::from(([127, b | a, c, d.max(1)], 7000))
    }

    #[tokio::test]
    async fn a_flood_of_addresses_keeps_the_table_within_its_capacity_and_the_recent_ones() {
        let (endpoint, config) = setup();
        let mut peers = PeerClients::new(64);
        let real = SocketAddr::from(([127, 0, 0, 1], 7001));
        for n in 0..100_000u32 {
            assert!(peers.get(addr(n), &endpoint, &config).is_some());
            if n % 32 == 0 {
                // A real member, gossiped with all along, stays.
                assert!(peers.get(real, &endpoint, &config).is_some());
            }
            assert!(peers.len() <= 64);
        }
        assert!(peers.clients.contains_key(&real));
        assert!(peers.order.len() <= 4 * 64 + 1);
    }

    #[tokio::test]
    async fn addresses_no_node_listens_on_are_not_dialled() {
        let (endpoint, config) = setup();
        let mut peers = PeerClients::new(8);
        for bad in [
            "0.0.0.0:7000",
            "127.0.0.1:0",
            "[::]:7000",
            "255.255.255.255:7000",
            "224.0.0.1:7000",
        ] {
            let bad: SocketAddr = bad.parse().expect("an address");
            assert!(peers.get(bad, &endpoint, &config).is_none(), "{bad}");
        }
        assert_eq!(peers.len(), 0);
    }
}

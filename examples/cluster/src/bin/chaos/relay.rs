//! `chaos relay`: a UDP relay that delays every datagram, both ways. The kernel here has no
//! `netem` qdisc, so delay between two namespaces goes through this: a client sends to
//! the relay's `--listen` address, the relay forwards to `--to` from a socket of its own
//! per client address, and each datagram waits `--delay-ms` before it is passed on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::Options;

/// The largest datagram relayed (QUIC's are at most the path MTU).
const MAX_DATAGRAM: usize = 65_535;

pub(crate) fn main(options: &Options) -> Result<bool, String> {
    let listen: SocketAddr = options.parse_as("listen")?;
    let to: SocketAddr = options.parse_as("to")?;
    let delay = Duration::from_millis(options.parse_as("delay-ms")?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(relay(listen, to, delay))
}

async fn relay(listen: SocketAddr, to: SocketAddr, delay: Duration) -> Result<bool, String> {
    let front = Arc::new(
        UdpSocket::bind(listen)
            .await
            .map_err(|e| format!("cannot bind {listen}: {e}"))?,
    );
    println!(
        "RELAY READY {listen} -> {to}, {} ms each way",
        delay.as_millis()
    );
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, client) = front
            .recv_from(&mut buf)
            .await
            .map_err(|e| format!("receive: {e}"))?;
        let back = match upstream.get(&client) {
            Some(socket) => Arc::clone(socket),
            None => {
                let bind: SocketAddr = ([0, 0, 0, 0], 0).into();
                let socket = Arc::new(
                    UdpSocket::bind(bind)
                        .await
                        .map_err(|e| format!("cannot bind an upstream socket: {e}"))?,
                );
                socket
                    .connect(to)
                    .await
                    .map_err(|e| format!("cannot address {to}: {e}"))?;
                tokio::spawn(replies(
                    Arc::clone(&socket),
                    Arc::clone(&front),
                    client,
                    delay,
                ));
                upstream.insert(client, Arc::clone(&socket));
                socket
            }
        };
        let datagram = buf[..len].to_vec();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A datagram lost here is a datagram lost on the network: QUIC recovers it.
            let _ = back.send(&datagram).await;
        });
    }
}

/// Passes the upstream's replies back to `client`, each after `delay`.
async fn replies(
    socket: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    delay: Duration,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok(len) = socket.recv(&mut buf).await {
        let datagram = buf[..len].to_vec();
        let front = Arc::clone(&front);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = front.send_to(&datagram, client).await;
        });
    }
}

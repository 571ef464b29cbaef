//! The `raw-quic` baseline: bare s2n-quic, one bidirectional stream per request carrying
//! `[op: u8][u32 big-endian length][payload]`; op 0 is echoed back as `[length][payload]`,
//! op 1 (payload `[count: u32][size: u32]`) makes the server write `count` length-prefixed
//! items, coalesced into large writes. Then end of stream.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use s2n_quic::client::Connect;
use s2n_quic::connection::Handle;
use s2n_quic::stream::BidirectionalStream;

use crate::transport::{client_endpoint, server_endpoint, Limits};
use crate::workload::{Target, DEADLINE};

const OP_ECHO: u8 = 0;
const OP_STREAM: u8 = 1;
const WRITE_CHUNK: usize = 64 * 1024;

/// Serves the baseline protocol until the process is killed.
pub(crate) async fn serve(addr: SocketAddr, limits: &Limits) -> Result<(), String> {
    let mut server = server_endpoint(addr, limits)?;
    let local = server.local_addr().map_err(|e| e.to_string())?;
    println!("READY {local}");
    while let Some(connection) = server.accept().await {
        tokio::spawn(async move {
            let (_handle, mut acceptor) = connection.split();
            while let Ok(Some(stream)) = acceptor.accept_bidirectional_stream().await {
                tokio::spawn(async move {
                    let _ = serve_stream(stream).await;
                });
            }
        });
    }
    Ok(())
}

async fn read_request(stream: &mut BidirectionalStream) -> Result<(u8, Vec<Bytes>, usize), String> {
    let mut head = BytesMut::new();
    let mut body = Vec::new();
    let mut got = 0usize;
    let mut need: Option<usize> = None;
    while let Some(mut chunk) = stream.receive().await.map_err(|e| e.to_string())? {
        if need.is_none() {
            let take = (5 - head.len()).min(chunk.len());
            head.put_slice(&chunk[..take]);
            chunk.advance(take);
            if head.len() == 5 {
                need = Some(u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize);
            }
        }
        got += chunk.len();
        if !chunk.is_empty() {
            body.push(chunk);
        }
        // Read on to the client's end of stream rather than drop the stream half-read:
        // s2n-quic answers an unread side with STOP_SENDING, which can reset the reply
        // along with it and fail the call.
    }
    let need = need.ok_or("short request")?;
    if got != need {
        return Err("request length does not match its header".into());
    }
    Ok((head[0], body, need))
}

async fn serve_stream(mut stream: BidirectionalStream) -> Result<(), String> {
    let (op, mut body, len) = read_request(&mut stream).await?;
    match op {
        OP_ECHO => {
            let mut reply = Vec::with_capacity(body.len() + 1);
            reply.push(Bytes::copy_from_slice(&(len as u32).to_be_bytes()));
            reply.append(&mut body);
            stream
                .send_vectored(&mut reply)
                .await
                .map_err(|e| e.to_string())?;
        }
        OP_STREAM => {
            let mut args = BytesMut::new();
            for chunk in &body {
                args.put_slice(chunk);
            }
            if args.len() < 8 {
                return Err("bad stream request".into());
            }
            let count = args.get_u32();
            let size = args.get_u32() as usize;
            let item = crate::workload::payload(size);
            let mut buffer = BytesMut::with_capacity(WRITE_CHUNK);
            for _ in 0..count {
                buffer.put_u32(size as u32);
                buffer.put_slice(&item);
                if buffer.len() >= WRITE_CHUNK {
                    stream
                        .send(buffer.split().freeze())
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            if !buffer.is_empty() {
                stream
                    .send(buffer.freeze())
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        _ => return Err("unknown op".into()),
    }
    stream.finish().map_err(|e| e.to_string())
}

/// A baseline client: one connection shared by every task.
#[derive(Clone)]
pub(crate) struct RawTarget {
    handle: Handle,
    _endpoint: std::sync::Arc<s2n_quic::Client>,
}

impl RawTarget {
    pub(crate) async fn connect(addr: SocketAddr, limits: &Limits) -> Result<Self, String> {
        let endpoint = client_endpoint(limits)?;
        let connection = endpoint
            .connect(Connect::new(addr).with_server_name("localhost"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(RawTarget {
            handle: connection.handle(),
            _endpoint: std::sync::Arc::new(endpoint),
        })
    }

    async fn request(&self, op: u8, payload: Bytes) -> Result<BidirectionalStream, String> {
        let mut stream = self
            .handle
            .clone()
            .open_bidirectional_stream()
            .await
            .map_err(|e| e.to_string())?;
        let mut head = BytesMut::with_capacity(5);
        head.put_u8(op);
        head.put_u32(payload.len() as u32);
        let mut parts = [head.freeze(), payload];
        stream
            .send_vectored(&mut parts)
            .await
            .map_err(|e| e.to_string())?;
        stream.finish().map_err(|e| e.to_string())?;
        Ok(stream)
    }
}

impl Target for RawTarget {
    async fn echo(&self, payload: Bytes) -> Result<Bytes, String> {
        tokio::time::timeout(DEADLINE, self.echo_once(payload))
            .await
            .map_err(|_| "deadline exceeded".to_string())?
    }

    async fn stream(&self, count: u32, size: u32) -> Result<u64, String> {
        tokio::time::timeout(DEADLINE, self.stream_once(count, size))
            .await
            .map_err(|_| "deadline exceeded".to_string())?
    }

    fn name(&self) -> &'static str {
        "raw-quic"
    }
}

impl RawTarget {
    async fn echo_once(&self, payload: Bytes) -> Result<Bytes, String> {
        let mut stream = self.request(OP_ECHO, payload).await?;
        let mut reply = BytesMut::new();
        while let Some(chunk) = stream.receive().await.map_err(|e| e.to_string())? {
            if reply.is_empty() && chunk.len() >= 4 {
                // Keep the common single-chunk case free of copies beyond this one.
                reply.reserve(chunk.len());
            }
            reply.put_slice(&chunk);
        }
        if reply.len() < 4 {
            return Err("short reply".into());
        }
        let len = reply.get_u32() as usize;
        if reply.len() != len {
            return Err("wrong reply length".into());
        }
        Ok(reply.freeze())
    }

    async fn stream_once(&self, count: u32, size: u32) -> Result<u64, String> {
        let mut args = BytesMut::with_capacity(8);
        args.put_u32(count);
        args.put_u32(size);
        let mut stream = self.request(OP_STREAM, args.freeze()).await?;
        let mut buffer = BytesMut::new();
        let mut items = 0u64;
        while let Some(chunk) = stream.receive().await.map_err(|e| e.to_string())? {
            buffer.put_slice(&chunk);
            loop {
                if buffer.len() < 4 {
                    break;
                }
                let len = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
                if buffer.len() < 4 + len {
                    break;
                }
                let item = buffer.split_to(4 + len);
                if len != size as usize
                    || item.get(4) != Some(&0)
                    || item.last() != Some(&(((len - 1) % 251) as u8))
                {
                    return Err("corrupt item".into());
                }
                items += 1;
            }
        }
        Ok(items)
    }
}

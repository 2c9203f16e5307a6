//! The transport floor of an initial sync: one QUIC connection from 127.0.0.1 to 127.0.0.2 with
//! fossa's own endpoint and TLS setup (socket buffers, transport config, cipher suites, pinned
//! device keys), moving N MiB of random bytes from the server to the client over 4 concurrent
//! streams, as fossa's fetches do. No hashing, no storage. Used by `bench/sync.sh`.
//!
//!   cargo run --release --example quic_floor -p fossa-net -- [--size-mib N] [--json]
//!
//! Timed from the first request byte until the last byte received; the random data is
//! generated before.
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use fossa_net::{
    ALPN, DeviceKey, MemberRecord, Members, Role, quic_endpoint, raw_client_config,
    raw_server_config,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Concurrent streams, as in one fossa fetch (`STREAMS_PER_FETCH`).
const STREAMS: u64 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

struct Args {
    size_mib: u64,
    json: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        size_mib: 1024,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size-mib" => {
                let n = it.next().context("--size-mib needs a value")?;
                args.size_mib = n.parse().context("--size-mib")?;
            }
            "--json" => args.json = true,
            _ => bail!("usage: quic_floor [--size-mib N] [--json]"),
        }
    }
    ensure!(args.size_mib > 0, "--size-mib must be positive");
    Ok(args)
}

/// A member list holding both devices, signed by the server's key.
fn members(server: &DeviceKey, client: &DeviceKey) -> Result<Arc<Members>> {
    let members = Members::new([0; 16]);
    for (key, name) in [(server, "floor-server"), (client, "floor-client")] {
        let record = MemberRecord {
            device: key.id(),
            public_key: key.public_key(),
            name: name.to_string(),
            added_by: server.id(),
            revoked: false,
            role: Role::Device,
            addrs: Vec::new(),
        };
        members.add_own(server, record)?;
    }
    Ok(Arc::new(members))
}

/// The byte range stream `i` of `STREAMS` carries.
fn range(i: u64, len: u64) -> (u64, u64) {
    (len * i / STREAMS, len * (i + 1) / STREAMS)
}

/// Serves one connection: each stream's request is a range (two u64 LE); the answer is those
/// bytes of `data`. Returns once the client closes the connection.
async fn serve(endpoint: quinn::Endpoint, data: Bytes) -> Result<()> {
    let incoming = endpoint.accept().await.context("server endpoint closed")?;
    let conn = incoming.await?;
    let mut streams = JoinSet::new();
    for _ in 0..STREAMS {
        let (mut send, mut recv) = conn.accept_bi().await?;
        let data = data.clone();
        streams.spawn(async move {
            let mut req = [0u8; 16];
            recv.read_exact(&mut req).await?;
            let (start, end) = decode_range(&req)?;
            let (start, end) = (usize::try_from(start)?, usize::try_from(end)?);
            ensure!(
                start <= end && end <= data.len(),
                "bad range {start}..{end}"
            );
            send.write_chunk(data.slice(start..end)).await?;
            send.finish()?;
            anyhow::Ok(())
        });
    }
    while let Some(r) = streams.join_next().await {
        r??;
    }
    conn.closed().await;
    Ok(())
}

fn decode_range(req: &[u8; 16]) -> Result<(u64, u64)> {
    let (a, b) = req.split_at(8);
    Ok((
        u64::from_le_bytes(a.try_into()?),
        u64::from_le_bytes(b.try_into()?),
    ))
}

/// Requests all `len` bytes over `STREAMS` streams and returns how many arrived.
async fn fetch(conn: &quinn::Connection, len: u64) -> Result<u64> {
    let mut streams = JoinSet::new();
    for i in 0..STREAMS {
        let conn = conn.clone();
        streams.spawn(async move {
            let (mut send, mut recv) = conn.open_bi().await?;
            let (start, end) = range(i, len);
            let mut req = [0u8; 16];
            req[..8].copy_from_slice(&start.to_le_bytes());
            req[8..].copy_from_slice(&end.to_le_bytes());
            send.write_all(&req).await?;
            send.finish()?;
            let mut got = 0u64;
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
                got += u64::try_from(chunk.bytes.len())?;
            }
            ensure!(
                got == end - start,
                "stream {i}: {got} of {} bytes",
                end - start
            );
            anyhow::Ok(got)
        });
    }
    let mut total = 0;
    while let Some(r) = streams.join_next().await {
        total += r??;
    }
    Ok(total)
}

/// A runtime like a fossa daemon's network node (2 workers).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let len = args.size_mib << 20;
    let mut data = vec![0u8; usize::try_from(len)?];
    getrandom::fill(&mut data).map_err(|e| anyhow::anyhow!("random data: {e}"))?;
    let data = Bytes::from(data);
    let (server_key, client_key) = (DeviceKey::generate()?, DeviceKey::generate()?);
    let server_cfg = raw_server_config(&server_key, members(&server_key, &client_key)?)?;

    // Each side on its own runtime, as the two daemons of a sync are two processes.
    let server_rt = runtime()?;
    let server = server_rt.block_on(async {
        quic_endpoint(SocketAddr::from(([127, 0, 0, 2], 0)), Some(server_cfg))
    })?;
    let addr = server.local_addr()?;
    let serving = server_rt.spawn(serve(server, data));
    let client_rt = runtime()?;
    let (secs, wire) = client_rt.block_on(async {
        let client = quic_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), None)?;
        let cfg = raw_client_config(&client_key, server_key.id(), ALPN)?;
        let r = transfer(&client, cfg, addr, len).await;
        client.wait_idle().await;
        r
    })?;
    let served = server_rt.block_on(async { timeout(CONNECT_TIMEOUT, serving).await });
    served.context("server did not stop")???;

    let rate = args.size_mib as f64 / secs;
    if args.json {
        println!(
            "{{\"size_mib\": {}, \"seconds\": {secs:.4}, \"mib_per_s\": {rate:.1}, \"wire_bytes\": {wire}, \"streams\": {STREAMS}}}",
            args.size_mib
        );
    } else {
        println!(
            "{} MiB over {STREAMS} streams in {secs:.3} s: {rate:.1} MiB/s ({wire} UDP payload bytes)",
            args.size_mib
        );
    }
    Ok(())
}

/// Connects, fetches `len` bytes and closes; returns the seconds the fetch took and the UDP
/// payload bytes sent and received by the client.
async fn transfer(
    client: &quinn::Endpoint,
    cfg: quinn::ClientConfig,
    addr: SocketAddr,
    len: u64,
) -> Result<(f64, u64)> {
    let connecting = client.connect_with(cfg, addr, "fossa")?;
    let conn = timeout(CONNECT_TIMEOUT, connecting)
        .await
        .context("connect timed out")??;
    let t0 = Instant::now();
    let got = timeout(TRANSFER_TIMEOUT, fetch(&conn, len))
        .await
        .context("transfer timed out")??;
    let secs = t0.elapsed().as_secs_f64();
    ensure!(got == len, "received {got} of {len} bytes");
    let stats = conn.stats();
    conn.close(0u32.into(), b"done");
    Ok((secs, stats.udp_tx.bytes + stats.udp_rx.bytes))
}

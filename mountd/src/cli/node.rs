//! Swarm nodes (docs/swarm.md, docs/cli.md): `fossa node init`, `fossa swarm create`,
//! `fossa swarm invite`, and `fossa node [CODE]`, which runs the DHT on `fossa/dht/1` until
//! SIGINT or SIGTERM. State: `DATA/device.key` (the node key), `DATA/swarm.json` (the swarm,
//! how it admits, this node's ticket, bootstrap and listen addresses) and
//! `DATA/node-status.json`, rewritten every 2 s for `fossa status`.
use super::{Ctx, read_json, stop_on_signal, write_json};
use crate::control::api::NodeStatus;
use crate::sync::{self, parse_addr_list};
use anyhow::{Context, Result, anyhow, bail};
use fossa_net::dht;
use fossa_net::swarm::{Admission, Gate, JoinCode, SwarmConfig, SwarmId, SwarmNode, SwarmTicket};
use fossa_net::{DeviceId, DeviceKey};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default UDP address of `fossa node`.
const DEFAULT_NODE_LISTEN: &str = "0.0.0.0:22100";
/// How often `node-status.json` is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// A status file older than this means the node is not running.
const STALE_AFTER: u64 = 10;
/// Seconds per day.
const DAY: u64 = 86_400;

/// `DATA/swarm.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SwarmFile {
    /// The swarm id (display form).
    swarm: String,
    /// The founder's public key (hex); absent for an open swarm.
    founder: Option<String>,
    /// This node's ticket (hex of its encoding); absent for an open swarm.
    ticket: Option<String>,
    /// Addresses to bootstrap from.
    bootstrap: Vec<SocketAddr>,
    /// Where the node listens (saved from `--listen`).
    listen: Option<SocketAddr>,
}

impl SwarmFile {
    fn gate(&self) -> Result<Gate> {
        let swarm: SwarmId = self.swarm.parse().context("bad swarm id in swarm.json")?;
        let admission = match (&self.founder, &self.ticket) {
            (Some(f), Some(t)) => {
                let mut founder = [0u8; 32];
                hex::decode_to_slice(f, &mut founder).context("bad founder key in swarm.json")?;
                let bytes = hex::decode(t).context("bad ticket in swarm.json")?;
                let ticket = SwarmTicket::decode(&bytes).context("bad ticket in swarm.json")?;
                Admission::Ticket { founder, ticket }
            }
            (None, None) => Admission::Open,
            _ => bail!("swarm.json has a founder key without a ticket or the reverse"),
        };
        Ok(Gate { swarm, admission })
    }

    fn of(gate: &Gate, bootstrap: Vec<SocketAddr>, listen: Option<SocketAddr>) -> Self {
        let (founder, ticket) = match &gate.admission {
            Admission::Open => (None, None),
            Admission::Ticket { founder, ticket } => (
                Some(hex::encode(founder)),
                Some(hex::encode(ticket.encode())),
            ),
        };
        SwarmFile {
            swarm: gate.swarm.to_string(),
            founder,
            ticket,
            bootstrap,
            listen,
        }
    }
}

fn swarm_path(ctx: &Ctx) -> PathBuf {
    ctx.paths.data.join("swarm.json")
}

fn status_path(ctx: &Ctx) -> PathBuf {
    ctx.paths.data.join("node-status.json")
}

fn load_swarm(ctx: &Ctx) -> Result<Option<SwarmFile>> {
    read_json(&swarm_path(ctx))
}

fn node_key(ctx: &Ctx) -> Result<DeviceKey> {
    ctx.paths.create_dirs()?;
    sync::load_key(&ctx.paths)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `fossa node init`: makes (or reads) the node key and prints the node id.
pub(crate) fn init(ctx: &Ctx) -> Result<()> {
    let key = node_key(ctx)?;
    crate::logging::stdout_line(&key.id().to_string());
    Ok(())
}

/// `fossa swarm create [--open] [--days D]`.
pub(crate) fn create(ctx: &Ctx, open: bool, days: u64) -> Result<()> {
    if load_swarm(ctx)?.is_some() {
        bail!(
            "this home is in a swarm already ({})",
            swarm_path(ctx).display()
        );
    }
    let key = node_key(ctx)?;
    let swarm = SwarmId::random()?;
    let admission = if open {
        Admission::Open
    } else {
        let expiry = unix_now().saturating_add(days.saturating_mul(DAY));
        Admission::Ticket {
            founder: key.public_key(),
            ticket: SwarmTicket::found(&key, swarm, expiry),
        }
    };
    let gate = Gate { swarm, admission };
    write_json(&swarm_path(ctx), &SwarmFile::of(&gate, Vec::new(), None))?;
    crate::logging::stdout_line(&swarm.to_string());
    Ok(())
}

/// `fossa swarm invite [NODE_ID] [--admit] [--days D] [--addr HOST:PORT]…`.
pub(crate) fn invite(
    ctx: &Ctx,
    node: Option<&str>,
    admit: bool,
    days: u64,
    addrs: &[String],
) -> Result<()> {
    let file = load_swarm(ctx)?.ok_or_else(|| {
        anyhow!("this home is in no swarm: `fossa swarm create` or `fossa node CODE`")
    })?;
    let gate = file.gate()?;
    let mut bootstrap = parse_addr_list(addrs)?;
    if bootstrap.is_empty() {
        bootstrap.extend(file.listen.filter(|a| !a.ip().is_unspecified()));
    }
    if bootstrap.is_empty() {
        bail!("no address to bootstrap from: give --addr HOST:PORT (this node listens on 0.0.0.0)");
    }
    let admission = match &gate.admission {
        Admission::Open => {
            if node.is_some() {
                bail!("an open swarm admits anyone: its code names no node");
            }
            Admission::Open
        }
        Admission::Ticket { founder, ticket } => {
            let node: DeviceId = node
                .ok_or_else(|| {
                    anyhow!("NODE_ID is required (the joiner prints it with `fossa node init`)")
                })?
                .parse()
                .map_err(|e| anyhow!("bad NODE_ID: {e}"))?;
            let key = node_key(ctx)?;
            let expiry = unix_now().saturating_add(days.saturating_mul(DAY));
            let issued = ticket
                .issue(&key, node, admit, expiry)
                .context("this node may not admit others")?;
            Admission::Ticket {
                founder: *founder,
                ticket: issued,
            }
        }
    };
    let code = JoinCode {
        swarm: gate.swarm,
        admission,
        bootstrap,
    };
    crate::logging::stdout_line(&code.encode());
    Ok(())
}

/// `fossa node [CODE] [--listen ADDR] [--bootstrap HOST:PORT]…`.
pub(crate) fn node(
    ctx: &Ctx,
    code: Option<&str>,
    listen: Option<SocketAddr>,
    bootstrap: &[String],
) -> Result<()> {
    let key = node_key(ctx)?;
    let mut file = match (load_swarm(ctx)?, code) {
        (Some(_), Some(_)) => {
            bail!("this home is in a swarm already: run `fossa node` without a code")
        }
        (Some(f), None) => f,
        (None, Some(c)) => join(&key, c)?,
        (None, None) => {
            bail!("this home is in no swarm: `fossa swarm create` or `fossa node CODE`")
        }
    };
    let default_listen: SocketAddr = DEFAULT_NODE_LISTEN.parse()?;
    let listen = listen.or(file.listen).unwrap_or(default_listen);
    file.listen = Some(listen);
    write_json(&swarm_path(ctx), &file)?;
    let mut boot = file.bootstrap.clone();
    boot.extend(parse_addr_list(bootstrap)?);
    boot.retain(|a| *a != listen);
    run(ctx, Arc::new(key), file.gate()?, listen, boot)
}

/// Checks a join code for this node (offline) and returns what to save.
fn join(key: &DeviceKey, code: &str) -> Result<SwarmFile> {
    let code = JoinCode::decode(code).context("bad join code")?;
    let gate = Gate {
        swarm: code.swarm,
        admission: code.admission,
    };
    if let Admission::Ticket { founder, ticket } = &gate.admission {
        ticket
            .verify(&gate.swarm, founder, &key.id(), unix_now())
            .context("the code's ticket does not admit this node")?;
    }
    Ok(SwarmFile::of(&gate, code.bootstrap, None))
}

fn run(
    ctx: &Ctx,
    key: Arc<DeviceKey>,
    gate: Gate,
    listen: SocketAddr,
    bootstrap: Vec<SocketAddr>,
) -> Result<()> {
    let stop = stop_on_signal()?;
    let rt = sync::runtime()?;
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no OS randomness: {e}"))?;
    let swarm = gate.swarm;
    let cfg = SwarmConfig {
        gate,
        listen,
        bootstrap,
        dht: dht::Config::default(),
        max_connections: 256,
        idle_close: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        seed: u64::from_le_bytes(seed),
    };
    let node = rt
        .block_on(async { SwarmNode::start(key, cfg) })
        .with_context(|| format!("listening on {listen}"))?;
    let addr = node.local_addr()?;
    tracing::info!(%addr, %swarm, "swarm node running");
    let mut last = std::time::Instant::now() - STATUS_EVERY;
    while !stop.load(Ordering::Relaxed) {
        if last.elapsed() >= STATUS_EVERY {
            last = std::time::Instant::now();
            match rt.block_on(node.status()) {
                Ok(st) => {
                    let file = NodeStatus::of(&swarm, &st, unix_now());
                    if let Err(e) = write_json(&status_path(ctx), &file) {
                        tracing::warn!(error = %e, "could not write the node status");
                    }
                }
                Err(e) => bail!("swarm node stopped: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(node.shutdown());
    tracing::info!("swarm node stopped");
    Ok(())
}

/// `fossa status` on a node home: its last status (None: not a node home).
pub(crate) fn status(ctx: &Ctx) -> Result<Option<NodeStatus>> {
    if load_swarm(ctx)?.is_none() {
        return Ok(None);
    }
    let p = status_path(ctx);
    let mut st: NodeStatus = match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}", p.display()))?,
        Err(_) => return Ok(Some(NodeStatus::default())),
    };
    st.running = unix_now().saturating_sub(st.updated_unix) <= STALE_AFTER;
    Ok(Some(st))
}

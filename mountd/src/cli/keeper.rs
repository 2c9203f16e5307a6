//! `fossa keeper [CODE] --quota SIZE`: a storage peer (docs/redundancy.md). It joins with a
//! `FOSSAK2-` code (never receiving the volume secret), then holds and serves ciphertext blocks
//! in `DATA/blocks` under its quota until SIGINT or SIGTERM. Its state is `DATA/keeper.json`
//! (volume id, quota), `DATA/device.key`, `DATA/members`; `DATA/keeper-status.json` is
//! rewritten every few seconds for `fossa status`.
use super::devices::{decode_code, remove_created, run_join, save_joined_members};
use super::{Ctx, read_json, stop_on_signal, write_json};
use crate::KeeperArgs;
use crate::control::api::{KeeperLive, KeeperStatus};
use crate::sync::{
    self, DEFAULT_LISTEN, hostname, load_members, parse_addr_list, parse_rate, save_members,
    short_id,
};
use anyhow::{Context, Result, anyhow, bail};
use blockstore::{BlockStore, StoreOptions};
use fossa_net::{BlockHolder, Keeper, Members, Node, NodeConfig, PendingJoin, Role, StoreHolder};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the member list and the status file are refreshed.
const TICK: Duration = Duration::from_millis(500);
/// How often `keeper-status.json` is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Deadline of every connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `DATA/keeper.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeeperConfig {
    /// The volume id, 32 hex digits.
    volume_id: String,
    /// Most bytes held.
    quota: u64,
    /// This keeper's name in the member list.
    name: String,
}

fn config_path(ctx: &Ctx) -> PathBuf {
    ctx.paths.data.join("keeper.json")
}

fn status_path(ctx: &Ctx) -> PathBuf {
    ctx.paths.data.join("keeper-status.json")
}

fn save_config(ctx: &Ctx, c: &KeeperConfig) -> Result<()> {
    write_json(&config_path(ctx), c)
}

fn load_config(ctx: &Ctx) -> Result<Option<KeeperConfig>> {
    read_json(&config_path(ctx))
}

/// `fossa status` on a keeper's home: its last status file (None: not a keeper home).
pub(crate) fn status(ctx: &Ctx) -> Result<Option<KeeperStatus>> {
    if load_config(ctx)?.is_none() {
        return Ok(None);
    }
    let p = status_path(ctx);
    let v = match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}", p.display()))?,
        Err(_) => KeeperStatus {
            keeper: true,
            running: false,
            live: None,
        },
    };
    Ok(Some(v))
}

/// Joins (with a code) or resumes, then runs until a signal.
pub(crate) fn keeper(ctx: &Ctx, args: &KeeperArgs) -> Result<()> {
    let quota = args.quota.as_deref().map(parse_rate).transpose()?;
    let mut peers = parse_addr_list(&args.net.peer)?;
    let cfg = match &args.code {
        Some(code) => join(ctx, code, quota, args.name.clone(), &mut peers)?,
        None => {
            let mut c = load_config(ctx)?.ok_or_else(|| {
                anyhow!(
                    "{} is not a keeper's home: run `fossa keeper CODE --quota SIZE` first",
                    ctx.paths.data.display()
                )
            })?;
            if let Some(q) = quota {
                c.quota = q;
                save_config(ctx, &c)?;
            }
            c
        }
    };
    let limits = (
        parse_rate(&args.net.max_send)?,
        parse_rate(&args.net.max_recv)?,
    );
    run(ctx, &cfg, args.net.listen, peers, limits)
}

fn join(
    ctx: &Ctx,
    code: &str,
    quota: Option<u64>,
    name: Option<String>,
    peers: &mut Vec<SocketAddr>,
) -> Result<KeeperConfig> {
    if load_config(ctx)?.is_some() {
        bail!("this home already holds a keeper: run `fossa keeper` without a code");
    }
    if ctx.paths.volume_exists() {
        bail!("a volume already exists in {}", ctx.paths.data.display());
    }
    let quota = quota.ok_or_else(|| anyhow!("--quota SIZE is required when joining"))?;
    let code = decode_code(code, Role::Keeper)?;
    ctx.paths.create_dirs()?;
    let key = sync::load_key(&ctx.paths)?;
    let name = name.unwrap_or_else(|| format!("{}-keeper-{}", hostname(), short_id(&key.id())));
    let cfg = KeeperConfig {
        volume_id: hex::encode(code.volume),
        quota,
        name: name.clone(),
    };
    let store = |p: &PendingJoin| {
        if p.k_wrap.is_some() {
            bail!("the inviter did not admit this node as a storage peer");
        }
        let members = Members::new(code.volume);
        members.merge(&p.members);
        save_members(&ctx.paths, &members)?;
        save_config(ctx, &cfg)
    };
    let undo = || remove_created(&[ctx.paths.members(), config_path(ctx)]);
    let ((), joined) = run_join(&code, &key, &name, store, undo)?;
    if joined.role != Role::Keeper || joined.k_wrap.is_some() {
        bail!("the inviter did not admit this node as a storage peer");
    }
    save_joined_members(ctx, &code, &key, &joined)?;
    peers.extend(code.addrs.iter().copied());
    crate::logging::stdout_line(&key.id().to_string());
    Ok(cfg)
}

fn run(
    ctx: &Ctx,
    cfg: &KeeperConfig,
    listen: Option<SocketAddr>,
    peers: Vec<SocketAddr>,
    limits: (u64, u64),
) -> Result<()> {
    let mut volume = [0u8; 16];
    hex::decode_to_slice(&cfg.volume_id, &mut volume).context("bad volume id in keeper.json")?;
    let key = Arc::new(sync::load_key(&ctx.paths)?);
    let members = Arc::new(load_members(&ctx.paths, volume)?);
    let store = Arc::new(BlockStore::open(
        &ctx.paths.blocks(),
        StoreOptions::default(),
    )?);
    let holder = Arc::new(StoreHolder::new(store, cfg.quota));
    let stop = stop_on_signal()?;
    let rt = sync::runtime()?;
    let node_cfg = |listen| NodeConfig {
        volume,
        name: cfg.name.clone(),
        listen,
        peers: peers.clone(),
        connect_timeout: CONNECT_TIMEOUT,
    };
    let start = |l: SocketAddr| {
        let h: Arc<dyn BlockHolder> = holder.clone();
        rt.block_on(Node::start_keeper(
            node_cfg(l),
            key.clone(),
            members.clone(),
            h,
        ))
    };
    let node = match listen {
        Some(l) => start(l).with_context(|| format!("listening on {l}"))?,
        None => {
            let default: SocketAddr = DEFAULT_LISTEN
                .parse()
                .map_err(|e| anyhow!("{DEFAULT_LISTEN}: {e}"))?;
            match start(default) {
                Ok(n) => n,
                Err(_) => start(SocketAddr::from(([0, 0, 0, 0], 0)))
                    .context("listening on a free port")?,
            }
        }
    };
    node.set_rate_limits(limits.0, limits.1);
    tracing::info!(keeper = %node.id(), listen = %node.local_addr(), quota = cfg.quota, "keeper running");
    serve_until(ctx, &node, &holder, &members, &stop);
    rt.block_on(node.shutdown());
    rt.shutdown_timeout(Duration::from_secs(2));
    save_members(&ctx.paths, &members)?;
    let _ = std::fs::remove_file(status_path(ctx));
    tracing::info!("keeper stopped");
    Ok(())
}

fn serve_until(
    ctx: &Ctx,
    node: &Keeper,
    holder: &StoreHolder,
    members: &Members,
    stop: &AtomicBool,
) {
    let mut saved = members.signed();
    let mut last_status: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let now = members.signed();
        if now != saved {
            if let Err(e) = save_members(&ctx.paths, members) {
                tracing::warn!("{e:#}");
            }
            saved = now;
        }
        if last_status.is_none_or(|t| t.elapsed() >= STATUS_EVERY) {
            write_status(ctx, node, holder);
            last_status = Some(Instant::now());
        }
        std::thread::sleep(TICK);
    }
}

fn write_status(ctx: &Ctx, node: &Keeper, holder: &StoreHolder) {
    let (used, quota) = holder.usage();
    let blocks = holder.list().map_or(0, |l| l.len());
    let st = node.stats();
    let v = KeeperStatus {
        keeper: true,
        running: true,
        live: Some(KeeperLive {
            device_id: node.id().to_string(),
            listen: node.local_addr().to_string(),
            connected: node.connected().iter().map(ToString::to_string).collect(),
            blocks: blocks as u64,
            bytes: used,
            quota,
            bytes_sent: st.bytes_sent,
            bytes_received: st.bytes_received,
        }),
    };
    let p = status_path(ctx);
    let tmp = p.with_extension("json.tmp");
    let r = serde_json::to_vec_pretty(&v)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, &p));
    if let Err(e) = r {
        tracing::warn!(error = %e, "cannot write {}", p.display());
    }
}

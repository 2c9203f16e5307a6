//! `fossa invite`, `fossa join`, `fossa devices [remove]` and `fossa status PATH`.
use super::{Ctx, mount, print_json, require_volume};
use crate::config::Config;
use crate::control::api::{Device, PathStatus, Redundancy};
use crate::control::{self, Call, NOT_MOUNTED, Request, member_rows};
use crate::sync::{self, default_name, find_member, load_members, parse_duration, save_members};
use crate::volume::{self, VolumeLock};
use crate::{JoinArgs, MountArgs, timefmt, unlock};
use anyhow::{Context, Result, anyhow, bail};
use fossa_fs::volkey;
use fossa_net::{
    DeviceKey, InviteCode, InviteError, JoinResult, Members, NetError, PendingJoin, Role,
    SignedMember,
};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Deadline of the whole join exchange.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Fails with [`NOT_MOUNTED`] unless a daemon holds the volume.
fn require_daemon(ctx: &Ctx) -> Result<()> {
    require_volume(ctx)?;
    if VolumeLock::try_acquire(&ctx.paths)?.is_some() {
        bail!(NOT_MOUNTED);
    }
    Ok(())
}

fn call<T: DeserializeOwned>(ctx: &Ctx, call: &Call<T>) -> Result<T> {
    control::call(&ctx.paths.control_socket(), call)
}

/// `fossa invite [--expires D] [--addr A]…`: prints the code.
pub(crate) fn invite(ctx: &Ctx, expires: &str, addrs: Vec<String>, keeper: bool) -> Result<()> {
    let valid = parse_duration(expires)?;
    require_daemon(ctx)?;
    let inv = call(ctx, &Request::invite(valid.as_secs(), addrs, keeper))?;
    println!("{}", inv.code);
    Ok(())
}

/// `fossa redundancy DIR [N] [--json]`.
pub(crate) fn redundancy(ctx: &Ctx, dir: &Path, level: Option<u8>, json: bool) -> Result<()> {
    require_daemon(ctx)?;
    let abs = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    let path = abs
        .to_str()
        .ok_or_else(|| anyhow!("{}: not UTF-8", abs.display()))?
        .to_owned();
    let r: Redundancy = call(ctx, &Request::redundancy(path, level))?;
    if json {
        return print_json(&r);
    }
    let from = match &r.set_at {
        Some(p) => format!("set on /{p}"),
        None => "default".to_owned(),
    };
    println!("{}: level {} ({from})", abs.display(), r.level);
    Ok(())
}

/// `fossa status PATH [--json]`.
pub(crate) fn path_status(ctx: &Ctx, path: &Path, json: bool) -> Result<()> {
    require_daemon(ctx)?;
    let abs = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
    let path = abs
        .to_str()
        .ok_or_else(|| anyhow!("{}: not UTF-8", abs.display()))?
        .to_owned();
    let st: PathStatus = call(ctx, &Request::path_status(path))?;
    if json {
        return print_json(&st);
    }
    let yes_no = |b: bool, y: &'static str, n: &'static str| if b { y } else { n };
    println!(
        "{}: {}, {}\nversion: {}\nauthor:  {}",
        abs.display(),
        yes_no(st.local, "local", "remote-only (blocks not all here)"),
        yes_no(st.pending, "pending (changes not yet synced)", "in sync"),
        serde_json::to_string(&st.version)?,
        st.author,
    );
    Ok(())
}

/// `fossa devices [--json]`.
pub(crate) fn list(ctx: &Ctx, json: bool) -> Result<()> {
    require_volume(ctx)?;
    let rows: Vec<Device> = match VolumeLock::try_acquire(&ctx.paths)? {
        None => call(ctx, &Request::devices())?,
        Some(_lock) => {
            let members = load_members(&ctx.paths, Config::load(&ctx.paths)?.volume_bytes()?)?;
            let me = own_key(ctx)?.map(|k| k.id());
            member_rows(&members, me, &[])
        }
    };
    if json {
        return print_json(&rows);
    }
    for r in &rows {
        println!("{}", human_row(r));
    }
    Ok(())
}

fn human_row(r: &Device) -> String {
    let flag = |set: bool, word: &str| {
        if set {
            format!(" {word}")
        } else {
            String::new()
        }
    };
    format!(
        "{}  {}{}{}{}{}",
        r.id,
        r.name,
        flag(r.this_device, "(this device)"),
        flag(r.revoked, "revoked"),
        flag(r.connected, "connected"),
        if r.addrs.is_empty() {
            String::new()
        } else {
            format!("  {}", r.addrs.join(" "))
        },
    )
}

/// The device key if this home has one (never creates it).
fn own_key(ctx: &Ctx) -> Result<Option<DeviceKey>> {
    if !ctx.paths.device_key().exists() {
        return Ok(None);
    }
    sync::load_key(&ctx.paths).map(Some)
}

/// `fossa devices remove ID`: through the daemon when mounted, else on the saved list.
pub(crate) fn remove(ctx: &Ctx, id: &str) -> Result<()> {
    require_volume(ctx)?;
    let Some(_lock) = VolumeLock::try_acquire(&ctx.paths)? else {
        return call(ctx, &Request::devices_remove(id.to_owned()));
    };
    let members = load_members(&ctx.paths, Config::load(&ctx.paths)?.volume_bytes()?)?;
    let key = own_key(ctx)?.context("this home has no device key")?;
    let device = find_member(&members, id)?;
    if device == key.id() {
        bail!("{device} is this device: remove it from another member");
    }
    members.revoke(&key, &device)?;
    save_members(&ctx.paths, &members)
}

/// `fossa join CODE DIR`: checks the code, joins, creates the volume locally, confirms the
/// join (only then is the invitation used up), mounts as a daemon.
pub(crate) fn join(ctx: &Ctx, args: &JoinArgs) -> Result<()> {
    mount::check_mountpoint(&args.dir)?;
    if ctx.paths.volume_exists() {
        bail!("a volume already exists in {}", ctx.paths.data.display());
    }
    let code = decode_code(&args.code, Role::Device)?;
    ctx.paths.create_dirs()?;
    let key = sync::load_key(&ctx.paths)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&key.id()));
    // The local secret first: nothing the user could have avoided may fail during the join.
    let (secret, made) = unlock::for_new(ctx.key_file.as_deref(), &ctx.paths, false)?;
    let store = |p: &PendingJoin| {
        let k_wrap = p.k_wrap.ok_or_else(|| {
            anyhow!("the inviter admitted this device as a storage peer, not a device")
        })?;
        let vs = volkey::unwrap_invite(&code.wrapped, &k_wrap, &code.volume).map_err(|_| {
            anyhow!(
                "the invitation's volume secret does not open with the inviter's key: the \
                 code was altered (ask for a new code)"
            )
        })?;
        save_list(ctx, code.volume, &p.members)?;
        volume::create_with(&ctx.paths, &secret, code.volume, &vs)
    };
    let p = &ctx.paths;
    let undo = || remove_created(&[p.sealed_key(), p.members(), p.blocks(), p.config_file()]);
    let (id, joined) = run_join(&code, &key, &name, store, undo)?;
    save_joined_members(ctx, &code, &key, &joined)?;
    if let Some(f) = made {
        super::init::announce_key_file(&f);
    }
    println!("{id}");
    let mut net = args.net.clone();
    net.peer.extend(code.addrs.iter().map(ToString::to_string));
    let margs = MountArgs {
        dir: args.dir.clone(),
        daemon: true,
        read_only: false,
        allow_other: false,
        cached_writes: false,
        net,
        name: None,
    };
    mount::spawn_existing(ctx, &margs, &secret)?;
    // On a terminal, show the initial sync (Ctrl-C stops watching, not the sync).
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        super::progress::follow(ctx)?;
    }
    Ok(())
}

/// Decodes a code of the wanted role and checks its expiry: all before any network traffic.
pub(crate) fn decode_code(text: &str, want: Role) -> Result<InviteCode> {
    let code = InviteCode::decode(text).map_err(code_error)?;
    match (code.role, want) {
        (Role::Keeper, Role::Device) => {
            bail!("this is a storage-peer invitation: run `fossa keeper CODE` with it")
        }
        (Role::Device, Role::Keeper) => {
            bail!("this is a device invitation: run `fossa join CODE DIR` with it")
        }
        _ => {}
    }
    code.check_expiry(SystemTime::now()).map_err(code_error)?;
    Ok(code)
}

/// The user's words for a refused code (docs/cli.md).
fn code_error(e: impl Into<NetError>) -> anyhow::Error {
    match e.into() {
        NetError::Invite(InviteError::Expired { expiry }) => anyhow!(
            "invitation expired at {}: ask for a new code",
            timefmt::rfc3339(UNIX_EPOCH + Duration::from_secs(expiry))
        ),
        e => e.into(),
    }
}

/// Joins with `code`: once the inviter has accepted (and holds the invitation), `store`
/// writes the local state, then the join is confirmed. If `store` or the confirmation fails,
/// `undo` removes what `store` wrote and the invitation stays valid on the inviter.
pub(crate) fn run_join<T>(
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
    store: impl FnOnce(&PendingJoin) -> Result<T>,
    undo: impl FnOnce(),
) -> Result<(T, JoinResult)> {
    // One worker drives the connection while `store` runs (Argon2 can take a while).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let via = || format!("joining through {}", code.inviter);
    let pending = rt
        .block_on(fossa_net::begin_join(code, key, name, JOIN_TIMEOUT))
        .map_err(code_error)
        .with_context(via)?;
    let stored = match store(&pending) {
        Ok(t) => t,
        Err(e) => {
            undo();
            rt.block_on(pending.abort());
            return Err(e);
        }
    };
    match rt.block_on(pending.confirm(JOIN_TIMEOUT)) {
        Ok(joined) => Ok((stored, joined)),
        Err(e) => {
            undo();
            Err(anyhow::Error::from(e).context(format!(
                "{}: the join was not confirmed (the code stays valid until it expires)",
                via()
            )))
        }
    }
}

/// Removes files and directories a failed join created (absent ones are fine).
pub(crate) fn remove_created(paths: &[PathBuf]) {
    for p in paths {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        if let Err(e) = r
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", p.display());
        }
    }
}

fn save_list(ctx: &Ctx, volume: [u8; 16], list: &[SignedMember]) -> Result<()> {
    let members = Members::new(volume);
    members.merge(list);
    save_members(&ctx.paths, &members)
}

pub(crate) fn save_joined_members(
    ctx: &Ctx,
    code: &InviteCode,
    key: &DeviceKey,
    joined: &JoinResult,
) -> Result<()> {
    let members = Members::new(code.volume);
    members.merge(&joined.members);
    if !members.is_member(&key.id()) {
        bail!("the inviter's member list does not include this device");
    }
    save_members(&ctx.paths, &members)
}

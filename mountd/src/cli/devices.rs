//! `fossa invite`, `fossa join`, `fossa devices [remove]` and `fossa status PATH`.
use super::{Ctx, mount, require_volume};
use crate::config::Config;
use crate::control::{self, NOT_MOUNTED, Request, member_rows};
use crate::sync::{self, find_member, hostname, load_members, parse_duration, save_members};
use crate::unlock;
use crate::volume::{self, VolumeLock};
use crate::{JoinArgs, MountArgs};
use anyhow::{Context, Result, anyhow, bail};
use fossa_fs::volkey;
use fossa_net::{DeviceKey, InviteCode, JoinResult, Members};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

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

fn call(ctx: &Ctx, req: &Request) -> Result<Value> {
    control::call(&ctx.paths.control_socket(), req)?.into_result()
}

/// `fossa invite [--expires D] [--addr A]…`: prints the code.
pub(crate) fn invite(ctx: &Ctx, expires: &str, addrs: Vec<String>, keeper: bool) -> Result<()> {
    let valid = parse_duration(expires)?;
    require_daemon(ctx)?;
    let req = Request::Invite {
        expires_secs: valid.as_secs(),
        addrs,
        keeper,
    };
    let v = call(ctx, &req)?;
    let code = v["code"]
        .as_str()
        .context("bad answer from the fossa daemon")?;
    println!("{code}");
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
    let v = call(ctx, &Request::Redundancy { path, level })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let from = match v["set_at"].as_str() {
        Some(p) => format!("set on /{p}"),
        None => "default".to_owned(),
    };
    println!("{}: level {} ({from})", abs.display(), v["level"]);
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
    let v = call(ctx, &Request::PathStatus { path })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let yes_no = |k: &str, y: &'static str, n: &'static str| {
        if v[k] == Value::Bool(true) { y } else { n }
    };
    println!(
        "{}: {}, {}\nversion: {}\nauthor:  {}",
        abs.display(),
        yes_no("local", "local", "remote-only (blocks not all here)"),
        yes_no("pending", "pending (changes not yet synced)", "in sync"),
        v["version"],
        v["author"].as_str().unwrap_or("?"),
    );
    Ok(())
}

/// `fossa devices [--json]`.
pub(crate) fn list(ctx: &Ctx, json: bool) -> Result<()> {
    require_volume(ctx)?;
    let rows = match VolumeLock::try_acquire(&ctx.paths)? {
        None => call(ctx, &Request::Devices)?,
        Some(_lock) => {
            let members = load_members(&ctx.paths, Config::load(&ctx.paths)?.volume_bytes()?)?;
            let me = own_key(ctx)?.map(|k| k.id());
            member_rows(&members, me, &[])
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in rows.as_array().into_iter().flatten() {
        println!("{}", human_row(r));
    }
    Ok(())
}

fn human_row(r: &Value) -> String {
    let flag = |k: &str, word: &str| {
        if r[k] == Value::Bool(true) {
            format!(" {word}")
        } else {
            String::new()
        }
    };
    let addrs: Vec<&str> = r["addrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "{}  {}{}{}{}{}",
        r["id"].as_str().unwrap_or("?"),
        r["name"].as_str().unwrap_or("?"),
        flag("this_device", "(this device)"),
        flag("revoked", "revoked"),
        flag("connected", "connected"),
        if addrs.is_empty() {
            String::new()
        } else {
            format!("  {}", addrs.join(" "))
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
        call(ctx, &Request::DevicesRemove { id: id.to_owned() })?;
        return Ok(());
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

/// `fossa join CODE DIR`: joins, creates the volume locally, mounts as a daemon.
pub(crate) fn join(ctx: &Ctx, args: &JoinArgs) -> Result<()> {
    mount::check_mountpoint(&args.dir)?;
    if ctx.paths.volume_exists() {
        bail!("a volume already exists in {}", ctx.paths.data.display());
    }
    let code = InviteCode::decode(&args.code).map_err(|_| anyhow!("bad invitation code"))?;
    if code.role != fossa_net::Role::Device {
        bail!("this is a storage-peer invitation: run `fossa keeper CODE` with it");
    }
    ctx.paths.create_dirs()?;
    let key = sync::load_key(&ctx.paths)?;
    let name = args.name.clone().unwrap_or_else(hostname);
    // The local secret first: a code is spent by the join, so nothing may fail after it that
    // the user could have avoided.
    let (secret, made) = unlock::for_new(ctx.key_file.as_deref(), &ctx.paths, false)?;
    let joined = run_join(&code, &key, &name)?;
    let k_wrap = joined.k_wrap.ok_or_else(|| {
        anyhow!("the inviter admitted this device as a storage peer, not a device")
    })?;
    let vs = volkey::unwrap_invite(&code.wrapped, &k_wrap, &code.volume)
        .context("opening the invitation's volume secret")?;
    save_joined_members(ctx, &code, &key, &joined)?;
    let id = volume::create_with(&ctx.paths, &secret, code.volume, &vs)?;
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

pub(crate) fn run_join(code: &InviteCode, key: &DeviceKey, name: &str) -> Result<JoinResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let r = rt.block_on(fossa_net::join(code, key, name, JOIN_TIMEOUT));
    r.with_context(|| format!("joining through {}", code.inviter))
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

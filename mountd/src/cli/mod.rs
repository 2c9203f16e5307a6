//! The verbs, one module per group. Each returns `anyhow::Result`; `main` prints errors as
//! `fossa: error: …`.
mod devices;
mod init;
mod keeper;
mod maint;
mod mount;
mod node;
mod progress;
mod snapshot;
mod status;

use crate::config::Paths;
use crate::control::{self, Call};
use crate::unlock;
use crate::volume::{Volume, VolumeLock};
use crate::{Cli, Command, DevicesCmd, NodeCmd, SnapshotCmd, SwarmCmd};
use anyhow::{Result, bail};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::process::ExitCode;

/// What every verb needs: where the volume is and how to unlock it.
pub(crate) struct Ctx {
    /// `--home`, made absolute.
    pub(crate) home: Option<PathBuf>,
    /// The volume's directories.
    pub(crate) paths: Paths,
    /// `--key-file`, made absolute.
    pub(crate) key_file: Option<PathBuf>,
}

/// Runs the command line.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let abs = |p: Option<PathBuf>| p.map(std::path::absolute).transpose();
    let home = abs(cli.home)?;
    let ctx = Ctx {
        paths: Paths::resolve(home.as_deref())?,
        home,
        key_file: abs(cli.key_file)?,
    };
    match cli.cmd {
        Command::Init { name } => init::init(&ctx, name.as_deref()),
        Command::Mount { args, nonempty } => mount::mount(&ctx, &args, nonempty),
        Command::Umount { dir } => mount::umount(&ctx, &dir),
        Command::Status { follow: true, .. } => progress::follow(&ctx),
        Command::Status {
            path: None, json, ..
        } => status::status(&ctx, json),
        Command::Status {
            path: Some(p),
            json,
            ..
        } => status::path_status(&ctx, &p, json),
        Command::Invite {
            expires,
            addr,
            keeper,
        } => devices::invite(&ctx, &expires, addr, keeper),
        Command::Redundancy { dir, level, json } => devices::redundancy(&ctx, &dir, level, json),
        Command::Keeper(args) => keeper::keeper(&ctx, &args),
        Command::Join(args) => devices::join(&ctx, &args),
        Command::Node {
            cmd: Some(NodeCmd::Init),
            ..
        } => node::init(&ctx),
        Command::Node {
            cmd: None,
            code,
            listen,
            bootstrap,
        } => node::node(&ctx, code.as_deref(), listen, &bootstrap),
        Command::Swarm {
            cmd: SwarmCmd::Create { open, days },
        } => node::create(&ctx, open, days),
        Command::Swarm {
            cmd:
                SwarmCmd::Invite {
                    node,
                    admit,
                    days,
                    addr,
                },
        } => node::invite(&ctx, node.as_deref(), admit, days, &addr),
        Command::Devices { json, cmd: None } => devices::list(&ctx, json),
        Command::Devices {
            cmd: Some(DevicesCmd::Remove { id }),
            ..
        } => devices::remove(&ctx, &id),
        Command::Fsck { repair, json } => return maint::fsck(&ctx, repair, json),
        Command::Gc { json } => maint::gc(&ctx, json),
        Command::Sync => maint::sync(&ctx),
        Command::Snapshot { cmd: None, name } => snapshot::create(&ctx, name),
        Command::Snapshot {
            cmd: Some(SnapshotCmd::List { json }),
            ..
        } => snapshot::list(&ctx, json),
        Command::Snapshot {
            cmd: Some(SnapshotCmd::Rm { name }),
            ..
        } => snapshot::remove(&ctx, name),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Fails unless a volume exists.
fn require_volume(ctx: &Ctx) -> Result<()> {
    if !ctx.paths.volume_exists() {
        bail!(
            "no volume in {} (create one with `fossa init`)",
            ctx.paths.data.display()
        );
    }
    Ok(())
}

/// Opens the volume in this process (it must not be open elsewhere).
fn open_local(ctx: &Ctx, lock: VolumeLock) -> Result<Volume> {
    let secret = unlock::for_existing(ctx.key_file.as_deref(), &ctx.paths)?;
    Volume::open(&ctx.paths, lock, &secret, false)
}

/// Opens the volume in this process for `fsck --repair` (`recovery::open_repairing`).
fn open_repairing(ctx: &Ctx, lock: VolumeLock) -> Result<(Volume, Vec<String>)> {
    let secret = unlock::for_existing(ctx.key_file.as_deref(), &ctx.paths)?;
    crate::recovery::open_repairing(&ctx.paths, lock, &secret)
}

/// Executes `req` and returns its result type `T` (docs/control.md): through the daemon's
/// control socket if a daemon holds the volume, otherwise by opening the volume here.
fn request<T: DeserializeOwned>(ctx: &Ctx, call: &Call<T>) -> Result<T> {
    require_volume(ctx)?;
    let Some(lock) = VolumeLock::try_acquire(&ctx.paths)? else {
        return control::call(&ctx.paths.control_socket(), call);
    };
    let vol = open_local(ctx, lock)?;
    let result = control::handle(&vol, None, &call.request).into_result()?;
    vol.fs.sync()?;
    Ok(result)
}

/// Prints `v` as the `--json` output: pretty JSON on stdout.
fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A flag that SIGINT and SIGTERM set; the long-running verbs (`keeper`, `node`) poll it.
fn stop_on_signal() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, stop.clone())?;
    signal_hook::flag::register(SIGTERM, stop.clone())?;
    Ok(stop)
}

/// A JSON state file under DATA (None: it does not exist).
fn read_json<T: DeserializeOwned>(p: &std::path::Path) -> Result<Option<T>> {
    use anyhow::Context;
    match std::fs::read(p) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("{}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}", p.display())),
    }
}

/// Writes a JSON state file atomically (a temporary file renamed over it).
fn write_json<T: serde::Serialize>(p: &std::path::Path, v: &T) -> Result<()> {
    use anyhow::Context;
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v)?)
        .and_then(|()| std::fs::rename(&tmp, p))
        .with_context(|| format!("writing {}", p.display()))
}

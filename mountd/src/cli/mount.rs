//! `fossa mount` (foreground or `--daemon`) and `fossa umount`.
use super::{Ctx, init};
use crate::MountArgs;
use crate::control::{self, Served};
use crate::fuse::{self, MountOpts, RemoteReads};
use crate::mountinfo;
use crate::sync::{NetOpts, StartArgs, SyncDaemon, parse_addr_list, parse_rate};
use crate::unlock::{self, PASSPHRASE_ENV, Secret};
use crate::volume::{self, Volume, VolumeLock};
use anyhow::{Context, Result, anyhow, bail};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `--daemon` waits for the mount to appear.
const DAEMON_READY: Duration = Duration::from_secs(15);
/// How long `umount` waits for the daemon to sync and release the volume.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// `fossa mount DIR [--daemon] [--read-only] [--allow-other] [--nonempty]`.
pub(crate) fn mount(ctx: &Ctx, args: &MountArgs, nonempty: bool) -> Result<()> {
    let dir = check_mountpoint(&args.dir)?;
    if !nonempty {
        check_empty(&args.dir, &dir)?;
    }
    let peers = parse_addr_list(&args.net.peer)?;
    let limits = (
        parse_rate(&args.net.max_send)?,
        parse_rate(&args.net.max_recv)?,
    );
    if !ctx.paths.volume_exists() {
        init::create(ctx, true, args.name.as_deref())?;
    }
    let secret = unlock::for_existing(ctx.key_file.as_deref(), &ctx.paths)?;
    if args.daemon {
        return spawn_existing(ctx, args, &secret);
    }
    let lock = VolumeLock::acquire(&ctx.paths)?;
    crate::logging::rotate_if_stderr_is(&ctx.paths.log());
    let opts = MountOpts {
        read_only: args.read_only,
        allow_other: args.allow_other,
        cached_writes: args.cached_writes,
    };
    let net = NetOpts {
        listen: args.net.listen,
        peers,
        limits,
        discovery: parse_discovery(&args.net.discovery)?,
    };
    serve(ctx, &dir, (opts, &net), lock, &secret)
}

/// `mount --daemon` of an existing volume with `secret`: checks DIR and the key here, so that
/// errors are reported directly, then starts the background process.
pub(crate) fn spawn_existing(ctx: &Ctx, args: &MountArgs, secret: &Secret) -> Result<()> {
    let dir = check_mountpoint(&args.dir)?;
    let lock = VolumeLock::acquire(&ctx.paths)?;
    volume::unseal(&ctx.paths, secret)?;
    // The child takes the lock.
    drop(lock);
    spawn_daemon(ctx, args, &dir, secret)
}

/// `--discovery`: a broadcast address, or `off`.
fn parse_discovery(s: &str) -> Result<Option<std::net::Ipv4Addr>> {
    match s {
        "off" => Ok(None),
        ip => ip.parse().map(Some).map_err(|_| {
            anyhow!("--discovery: {ip:?} is neither an IPv4 broadcast address nor off")
        }),
    }
}

/// Errors about DIR come first: missing, not a directory, already mounted.
pub(crate) fn check_mountpoint(dir: &Path) -> Result<PathBuf> {
    let missing = || anyhow!("{}: no such directory", dir.display());
    let resolved = mountinfo::resolve(dir).map_err(|_| missing())?;
    if mountinfo::mount_at(&resolved)?.is_some() {
        bail!("{} is already a mount point", dir.display());
    }
    match std::fs::metadata(&resolved) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing()),
        Err(e) => Err(anyhow!("{}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => bail!("{}: not a directory", dir.display()),
        Ok(_) => Ok(resolved),
    }
}

/// A mount would hide what DIR holds (`resolved` is DIR made absolute): refused unless
/// `--nonempty` is given.
fn check_empty(dir: &Path, resolved: &Path) -> Result<()> {
    let mut entries = std::fs::read_dir(resolved).with_context(|| format!("{}", dir.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} is not empty (a mount would hide its files; --nonempty mounts anyway)",
            dir.display()
        );
    }
    Ok(())
}

/// Serves the mount and the sync node in this process until it is unmounted (by `fossa
/// umount`, `fusermount3 -u`, SIGINT or SIGTERM), then stops the node and syncs.
fn serve(
    ctx: &Ctx,
    dir: &Path,
    (opts, net): (MountOpts, &NetOpts),
    lock: VolumeLock,
    secret: &Secret,
) -> Result<()> {
    let vol = Arc::new(Volume::open(&ctx.paths, lock, secret, opts.read_only)?);
    let sync = Arc::new(SyncDaemon::start(StartArgs {
        paths: &ctx.paths,
        fs: &vol.fs,
        store: &vol.store,
        parts: &vol.sync,
        opts: net,
    })?);
    let sock = ctx.paths.control_socket();
    let served = Arc::new(Served {
        mountpoint: dir.to_owned(),
        sync: sync.clone(),
    });
    // The socket is up before DIR shows as mounted: `mount --daemon` returns at that moment
    // and the next command may need the daemon at once.
    control::serve(&sock, vol.clone(), served)?;
    let remote = Arc::new(RemoteReads::new(vol.fs.clone(), vol.sync.source.clone()));
    let session = fuse::mount(vol.fs.clone(), remote.clone(), dir, opts).map_err(|e| {
        let _ = std::fs::remove_file(&sock);
        sync.shutdown();
        anyhow!("mounting at {}: {e}", dir.display())
    })?;
    sync.set_notifier(session.notifier());
    unmount_on_signal(dir.to_owned(), remote)?;
    tracing::info!(volume = %vol.config.volume_id, "mounted at {}", dir.display());
    let ended = session.run();
    let _ = std::fs::remove_file(&sock);
    sync.shutdown();
    vol.fs.sync()?;
    ended.context("FUSE session")?;
    tracing::info!("unmounted {}; all data synced", dir.display());
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP (terminal closed) unmount DIR; the session then ends and
/// `serve` syncs and returns. Reads waiting on peers are failed first (their readers then
/// close their files), and a busy mount is tried again for [`BUSY_WAIT`]. A repeated signal
/// unmounts lazily, for when files are still open.
fn unmount_on_signal(dir: PathBuf, remote: Arc<RemoteReads>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for (n, sig) in signals.forever().enumerate() {
                tracing::info!(sig, "signal: unmounting {}", dir.display());
                remote.stop();
                if let Err(e) = unmount_soon(&dir, n > 0) {
                    tracing::warn!("{e:#} (a second signal unmounts lazily)");
                }
            }
        })?;
    Ok(())
}

/// How long a signal keeps trying to unmount a busy mount: readers whose reads were just
/// failed need a moment to close their files.
const BUSY_WAIT: Duration = Duration::from_secs(3);

/// [`unmount_dir`], tried again every 50 ms for [`BUSY_WAIT`] while it fails.
fn unmount_soon(dir: &Path, lazy: bool) -> Result<()> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match unmount_dir(dir, lazy) {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            r => return r,
        }
    }
}

/// Unmounts with `fusermount3 -u` (`-uz` if `lazy`), falling back to `umount` (root without
/// the fuse3 tools).
fn unmount_dir(dir: &Path, lazy: bool) -> Result<()> {
    let (fusermount, umount): (&[&str], &[&str]) = match lazy {
        false => (&["-u"], &[]),
        true => (&["-uz"], &["-l"]),
    };
    let mut last = String::new();
    for (prog, args) in [("fusermount3", fusermount), ("umount", umount)] {
        match Command::new(prog)
            .args(args)
            .arg(dir)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => last = format!("{prog}: {e}"),
        }
    }
    bail!("cannot unmount {}: {last}", dir.display())
}

/// `fossa umount DIR`: unmounts, then waits for the daemon to sync and release the volume
/// so that the next command can open it.
pub(crate) fn umount(ctx: &Ctx, dir: &Path) -> Result<()> {
    let resolved = mountinfo::resolve(dir).with_context(|| format!("{}", dir.display()))?;
    match mountinfo::mount_at(&resolved)? {
        Some(m) if m.is_fossa() => {}
        _ => bail!("{} is not a fossa mount", dir.display()),
    }
    unmount_dir(&resolved, false)?;
    if !ctx.paths.data.is_dir() {
        return Ok(()); // Mounted from another home: nothing of ours to wait for.
    }
    let deadline = Instant::now() + RELEASE_WAIT;
    while VolumeLock::try_acquire(&ctx.paths)?.is_none() {
        if Instant::now() > deadline {
            bail!("unmounted, but the daemon has not released the volume yet");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Re-runs this program as a background `fossa mount` (new process group, stdin null,
/// output appended to `DATA/fossa.log`) and returns once DIR is mounted.
fn spawn_daemon(ctx: &Ctx, args: &MountArgs, dir: &Path, secret: &Secret) -> Result<()> {
    let log_path = ctx.paths.log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("{}", log_path.display()))?;
    let log_start = log.metadata()?.len();
    let mut cmd = Command::new(std::env::current_exe()?);
    if let Some(h) = &ctx.home {
        cmd.arg("--home").arg(h);
    }
    if let Some(k) = &ctx.key_file {
        cmd.arg("--key-file").arg(k);
    }
    // DIR was checked for emptiness (or `--nonempty` given) by the caller; `join` mounts its
    // fresh DIR as it is.
    cmd.arg("mount").arg(dir).arg("--nonempty");
    cmd.args(args.read_only.then_some("--read-only"));
    cmd.args(args.allow_other.then_some("--allow-other"));
    cmd.args(args.cached_writes.then_some("--cached-writes"));
    if let Some(l) = args.net.listen {
        cmd.arg("--listen").arg(l.to_string());
    }
    for p in &args.net.peer {
        cmd.arg("--peer").arg(p);
    }
    cmd.arg("--discovery").arg(&args.net.discovery);
    cmd.arg("--max-send").arg(&args.net.max_send);
    cmd.arg("--max-recv").arg(&args.net.max_recv);
    if let Secret::Passphrase(p) = secret {
        use std::os::unix::ffi::OsStrExt;
        cmd.env(PASSPHRASE_ENV, std::ffi::OsStr::from_bytes(p));
    }
    // cwd "/" so the daemon keeps no directory busy; its own process group so the
    // terminal's Ctrl-C does not reach it.
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn().context("starting the daemon")?;
    wait_ready(child, dir, &log_path, log_start)
}

fn wait_ready(mut child: Child, dir: &Path, log_path: &Path, log_start: u64) -> Result<()> {
    let deadline = Instant::now() + DAEMON_READY;
    loop {
        if mountinfo::mount_at(dir)?.is_some_and(|m| m.is_fossa()) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(match last_error(log_path, log_start) {
                Some(msg) => anyhow!(msg),
                None => anyhow!("the daemon exited ({status}); see {}", log_path.display()),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "the mount was not ready in time; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `fossa: error:` message the daemon logged since `start`.
fn last_error(log_path: &Path, start: u64) -> Option<String> {
    let mut f = std::fs::File::open(log_path).ok()?;
    // A log rotated meanwhile starts afresh.
    let start = if f.metadata().ok()?.len() < start {
        0
    } else {
        start
    };
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("fossa: error: "))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoint_errors_are_the_documented_ones() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let e = check_mountpoint(&missing).unwrap_err().to_string();
        assert_eq!(e, format!("{}: no such directory", missing.display()));
        let deeper = d.path().join("a/b");
        let e = check_mountpoint(&deeper).unwrap_err().to_string();
        assert_eq!(e, format!("{}: no such directory", deeper.display()));
        let file = d.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let e = check_mountpoint(&file).unwrap_err().to_string();
        assert_eq!(e, format!("{}: not a directory", file.display()));
        assert!(check_mountpoint(d.path()).is_ok());
        let e = check_mountpoint(Path::new("/")).unwrap_err().to_string();
        assert_eq!(e, "/ is already a mount point");
    }

    #[test]
    fn last_error_line_is_found_after_offset() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        std::fs::write(&log, "fossa: error: old\nINFO x\nfossa: error: new one\n").unwrap();
        assert_eq!(last_error(&log, 0).as_deref(), Some("new one"));
        std::fs::write(&log, "fossa: error: old\n").unwrap();
        assert_eq!(last_error(&log, 18), None);
    }
}

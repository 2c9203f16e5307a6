//! [`Volume`]: one fossa volume in a temporary directory, mounted by a foreground `fossa mount`
//! child process that the fixture owns.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::mounts::{TmpfsMount, fuse_mounted, lazy_unmount};
use crate::process::{
    COMMAND_TIMEOUT, Output, POLL, assert_success, fossa, run_timeout, tail, wait_until,
};

/// How long a mount may take to appear.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `fossa umount` plus the daemon's exit may take.
const UMOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for `FOSSA_E2E_TIMEOUT`: seconds one mount may live before the watchdog kills it.
const DEFAULT_WATCHDOG_SECS: u64 = 600;

/// A volume in its own temporary directory:
/// `ROOT/home` (`--home`), `ROOT/volume.keyfile` (`--key-file`), `ROOT/mnt` (mount point),
/// plus `ROOT/daemon-N.log` (stderr of the N-th mount) and any scratch space the test wants.
#[derive(Debug)]
pub struct Volume {
    daemon: Option<Daemon>,
    env: Vec<(String, String)>,
    mounts: usize,
    volume_id: String,
    _tmpfs: Option<TmpfsMount>,
    root: PathBuf,
    _dir: TempDir,
}

/// The foreground `fossa mount` process currently serving the mount.
#[derive(Debug)]
struct Daemon {
    child: Child,
    mnt: PathBuf,
    _watchdog: Sender<()>,
}

impl Volume {
    /// A fresh volume: `fossa --home H init --key-file K`, not mounted.
    pub fn new() -> Result<Self> {
        let mut vol = Self::uninitialised()?;
        vol.init()?;
        Ok(vol)
    }

    /// A fresh volume whose whole `home` is a tmpfs of `size` (e.g. `24m`): for full-disk tests.
    pub fn on_tmpfs(size: &str) -> Result<Self> {
        let mut vol = Self::uninitialised()?;
        vol._tmpfs = Some(TmpfsMount::new(
            &vol.home(),
            &format!("size={size},mode=0700"),
        )?);
        vol.init()?;
        Ok(vol)
    }

    /// The directories only: no `fossa init` has run.
    pub fn uninitialised() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("fossa-e2e-").tempdir()?;
        let root = dir.path().canonicalize()?;
        std::fs::create_dir(root.join("home"))?;
        std::fs::create_dir(root.join("mnt"))?;
        Ok(Self {
            daemon: None,
            env: Vec::new(),
            mounts: 0,
            volume_id: String::new(),
            _tmpfs: None,
            root,
            _dir: dir,
        })
    }

    fn init(&mut self) -> Result<()> {
        let key = self.key_file();
        let home = self.home();
        let out = run_timeout(
            fossa(&["--home"])?
                .arg(&home)
                .arg("init")
                .arg("--key-file")
                .arg(&key),
            COMMAND_TIMEOUT,
        )?;
        assert_success(&out, "fossa init")?;
        if !key.is_file() {
            bail!(
                "fossa init --key-file did not create {}: {}",
                key.display(),
                out.describe()
            );
        }
        self.volume_id = out.stdout.trim().to_owned();
        if self.volume_id.is_empty() {
            bail!("fossa init printed no volume id: {}", out.describe());
        }
        Ok(())
    }

    /// The temporary directory holding everything (outside the mount): use it for scratch
    /// files, journals and reference trees.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `--home`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// `HOME/data`: volume key, blocks, metadata.
    pub fn data_dir(&self) -> PathBuf {
        self.home().join("data")
    }

    /// `--key-file`.
    pub fn key_file(&self) -> PathBuf {
        self.root.join("volume.keyfile")
    }

    /// The mount point.
    pub fn mnt(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// `MNT/rel`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.mnt().join(rel)
    }

    /// What `fossa init` printed (the volume id).
    pub fn init_output(&self) -> &str {
        &self.volume_id
    }

    /// `fossa --home H --key-file K ARGS...` under the default deadline.
    pub fn fossa(&self, args: &[&str]) -> Result<Output> {
        run_timeout(&mut self.fossa_cmd(args)?, COMMAND_TIMEOUT)
    }

    /// Runs `fossa fsck --json` (volume unmounted) and fails unless it exits 0 and reports
    /// `"clean": true`; `when` names the moment in the failure message.
    pub fn fsck_json_clean(&self, when: &str) -> Result<()> {
        let out = self.fossa(&["fsck", "--json"])?;
        assert_success(&out, &format!("fossa fsck --json {when}"))?;
        let json: serde_json::Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("fsck --json is not JSON: {}", out.describe()))?;
        anyhow::ensure!(
            json["clean"] == serde_json::Value::Bool(true),
            "fsck --json {when}: {json}"
        );
        Ok(())
    }

    /// The command for `fossa --home H --key-file K ARGS...`.
    pub fn fossa_cmd(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = fossa(&["--home"])?;
        cmd.arg(self.home())
            .arg("--key-file")
            .arg(self.key_file())
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// Sets an environment variable for every later `fossa` command of this fixture (mounts
    /// included), e.g. a test knob of the daemon.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Whether our mount point has a FUSE mount.
    pub fn is_mounted(&self) -> Result<bool> {
        fuse_mounted(&self.mnt())
    }

    /// Mounts at `MNT` (see [`Volume::mount_with`]).
    pub fn mount(&mut self) -> Result<()> {
        self.mount_with(&[])
    }

    /// Spawns `fossa --home H --key-file K mount MNT EXTRA...` in the foreground, stderr to
    /// `ROOT/daemon-N.log`, and waits (bounded) until MNT is a FUSE mount. Fails early if the
    /// process exits first, and in every failure case leaves nothing mounted or running.
    pub fn mount_with(&mut self, extra: &[&str]) -> Result<()> {
        if self.daemon.is_some() {
            bail!("harness: volume is already mounted by this fixture");
        }
        self.mounts += 1;
        let log_path = self.root.join(format!("daemon-{}.log", self.mounts));
        let log = File::create(&log_path)?;
        let mnt = self.mnt();
        let mut cmd = self.fossa_cmd(&["mount"])?;
        cmd.arg(&mnt)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let watchdog = spawn_watchdog(child.id(), mnt.clone());
        let mut daemon = Daemon {
            child,
            mnt: mnt.clone(),
            _watchdog: watchdog,
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if fuse_mounted(&mnt)? {
                self.daemon = Some(daemon);
                return Ok(());
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "`fossa mount` exited with {status} before {} was mounted\n{}",
                    mnt.display(),
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                daemon.kill();
                bail!(
                    "{} was not a FUSE mount {MOUNT_TIMEOUT:?} after `fossa mount` started\n{}",
                    mnt.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs `fossa --home H --key-file KEY mount DIR EXTRA...` expecting it to fail: returns
    /// its output once it exits. If it is still running after the mount deadline (it mounted),
    /// it is killed, anything it mounted is detached, and this fails.
    pub fn mount_expecting_failure(
        &self,
        dir: &Path,
        key: &Path,
        extra: &[&str],
    ) -> Result<Output> {
        mount_expecting_failure(&self.home(), dir, key, extra)
    }

    /// `fossa --home H umount MNT`, then waits (bounded) until MNT is no longer mounted and the
    /// daemon has exited; fails unless both the command and the daemon exit 0.
    pub fn umount(&mut self) -> Result<()> {
        let status = self.umount_status()?;
        if !status.success() {
            bail!(
                "the daemon exited with {status} after umount\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Like [`Volume::umount`], but returns the daemon's exit status instead of requiring
    /// success (e.g. a final sync that cannot fit on a full disk).
    pub fn umount_status(&mut self) -> Result<ExitStatus> {
        let out = run_timeout(
            fossa(&["--home"])?
                .arg(self.home())
                .arg("umount")
                .arg(self.mnt()),
            UMOUNT_TIMEOUT,
        )?;
        assert_success(&out, "fossa umount")?;
        let status = self.wait_daemon_exit()?;
        let mnt = self.mnt();
        wait_until(
            UMOUNT_TIMEOUT,
            "the mount to disappear after umount",
            || Ok(!fuse_mounted(&mnt)?),
        )?;
        Ok(status)
    }

    /// Waits (bounded) for the mount daemon to exit on its own, e.g. after `fossa umount`.
    pub fn wait_daemon_exit(&mut self) -> Result<ExitStatus> {
        let mut daemon = self
            .daemon
            .take()
            .context("harness: volume is not mounted")?;
        let deadline = Instant::now() + UMOUNT_TIMEOUT;
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                daemon.kill();
                bail!(
                    "the daemon did not exit within {UMOUNT_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILLs the daemon (a crash) and reaps it. The mount stays behind, stale: syscalls on
    /// it fail with ENOTCONN until [`Volume::clear_stale_mount`].
    pub fn kill_daemon(&mut self) -> Result<()> {
        let mut daemon = self
            .daemon
            .take()
            .context("harness: volume is not mounted")?;
        daemon.child.kill()?;
        daemon.child.wait()?;
        Ok(())
    }

    /// `fusermount3 -uz MNT` (after [`Volume::kill_daemon`]), waiting until it is gone.
    pub fn clear_stale_mount(&self) -> Result<()> {
        lazy_unmount(&self.mnt())
    }

    /// The daemon's process id, while mounted.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|d| d.child.id())
    }

    /// Everything the daemons of this volume wrote to stderr, plus `DATA/fossa.log` if present.
    pub fn daemon_log(&self) -> String {
        let mut text = String::new();
        for n in 1..=self.mounts {
            let path = self.root.join(format!("daemon-{n}.log"));
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        text.push_str(
            &std::fs::read_to_string(self.data_dir().join("fossa.log")).unwrap_or_default(),
        );
        text
    }

    /// The last `lines` lines of [`Volume::daemon_log`], for failure messages.
    pub fn log_tail_lines(&self, lines: usize) -> String {
        tail(&self.daemon_log(), lines)
    }

    fn log_tail(&self) -> String {
        format!(
            "--- daemon log (tail) ---\n{}",
            tail(&self.daemon_log(), 40)
        )
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
        let _ = lazy_unmount(&self.mnt());
    }
}

impl Daemon {
    /// SIGKILL, reap, detach the mount; best effort (used on failure paths and in drop).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = lazy_unmount(&self.mnt);
    }
}

/// Runs `fossa --home HOME --key-file KEY mount DIR EXTRA...` expecting it to fail; see
/// [`Volume::mount_expecting_failure`].
pub fn mount_expecting_failure(
    home: &Path,
    dir: &Path,
    key: &Path,
    extra: &[&str],
) -> Result<Output> {
    let before = mount_count(dir)?;
    let mut cmd = fossa(&["--home"])?;
    cmd.arg(home)
        .arg("--key-file")
        .arg(key)
        .arg("mount")
        .arg(dir)
        .args(extra);
    let result = run_timeout(&mut cmd, MOUNT_TIMEOUT);
    if mount_count(dir)? > before {
        lazy_unmount(dir)?;
        bail!(
            "`fossa mount {}` mounted although it should have failed",
            dir.display()
        );
    }
    result
}

/// How many mounts are stacked at `dir`.
fn mount_count(dir: &Path) -> Result<usize> {
    let want = dir.to_string_lossy().replace(' ', "\\040");
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .count())
}

/// Kills daemon `pid` and detaches `mnt` if the mount outlives `FOSSA_E2E_TIMEOUT` seconds, so a
/// hung filesystem makes the test's syscalls fail instead of hanging it. Dropping the returned
/// sender cancels it.
fn spawn_watchdog(pid: u32, mnt: PathBuf) -> Sender<()> {
    let secs = std::env::var("FOSSA_E2E_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_WATCHDOG_SECS);
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(secs)) == Err(RecvTimeoutError::Timeout) {
            eprintln!(
                "fossa-e2e watchdog: mount {} outlived {secs}s, killing pid {pid}",
                mnt.display()
            );
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let _ = lazy_unmount(&mnt);
        }
    });
    tx
}

//! The daemon's edges: its log (a failed log write never stops it; `DATA/fossa.log` rotates),
//! ioctl probes, and the redundancy xattr's rules (docs/cli.md, docs/redundancy.md). Every wait
//! is bounded; every process and mount a test starts is ended by a guard, also on panic.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fossa_tests::{
    Volume, assert_success, fuse_mounted, lazy_unmount, require_tool, run, run_timeout, wait_until,
};

const WAIT: Duration = Duration::from_secs(30);
const DROPPED_NOTE: &str = "line(s) dropped while the log could not be written";

/// Kills the daemons serving `home` (ours: the home is a unique temporary directory) and
/// detaches `mnt`, on drop.
struct Cleanup {
    child: Option<Child>,
    home: PathBuf,
    mnt: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in pids_of(&self.home) {
            let _ = Command::new("kill").arg("-KILL").arg(pid).output();
        }
        let _ = lazy_unmount(&self.mnt);
    }
}

/// Pids of processes whose command line contains `home`.
fn pids_of(home: &Path) -> Vec<String> {
    let needle = home.as_os_str().as_encoded_bytes();
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let ours = cmd.windows(needle.len()).any(|w| w == needle);
            (ours && pid != me).then_some(pid)
        })
        .collect()
}

fn cleanup(vol: &Volume) -> Cleanup {
    Cleanup {
        child: None,
        home: vol.home(),
        mnt: vol.mnt(),
    }
}

/// `mount --daemon` (log in `DATA/fossa.log`), with fuser's per-request debug lines so that
/// every file operation writes to the log.
fn mount_daemon(vol: &mut Volume) -> Result<()> {
    vol.set_env("RUST_LOG", "info,fuser=debug");
    let mnt = vol.mnt();
    let m = mnt.to_str().context("utf-8")?;
    let out = vol.fossa(&["mount", m, "--daemon", "--listen", "127.0.0.1:0"])?;
    assert_success(&out, "fossa mount --daemon")
}

/// `n` stat calls in the mount (each a FUSE request and a log line), in a child process under
/// a deadline: a daemon that stops answering fails the test instead of hanging it.
fn stat_many(vol: &Volume, n: usize) -> Result<()> {
    let script =
        format!("for i in $(seq {n}); do stat -- \"$1/absent-$i\" 2>/dev/null; done; true");
    let out = run_timeout(
        Command::new("bash")
            .args(["-c", &script, "stat_many"])
            .arg(vol.mnt()),
        Duration::from_secs(60),
    )?;
    assert_success(&out, "stat in the mount")
}

/// The contents of `MNT/rel`, read by a child process under a deadline.
fn cat(vol: &Volume, rel: &str) -> Result<String> {
    let out = run_timeout(
        Command::new("cat").arg(vol.path(rel)),
        Duration::from_secs(30),
    )?;
    assert_success(&out, "cat in the mount")?;
    Ok(out.stdout)
}

#[test]
fn foreground_mount_with_stderr_on_dev_full_serves() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.set_env("RUST_LOG", "debug");
    let mnt = vol.mnt();
    let mut guard = cleanup(&vol);
    let full = OpenOptions::new().write(true).open("/dev/full")?;
    let child = vol
        .fossa_cmd(&["mount"])?
        .arg(&mnt)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(full.try_clone()?)
        .stderr(full)
        .spawn()?;
    let child = guard.child.insert(child);
    wait_until(WAIT, "the mount (stderr on /dev/full)", || {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("`fossa mount 2>/dev/full` exited with {status}");
        }
        fuse_mounted(&mnt)
    })?;
    for i in 0..50 {
        let p = vol.path(format!("f{i}"));
        std::fs::write(&p, format!("file {i}"))?;
        ensure!(std::fs::read_to_string(&p)? == format!("file {i}"));
    }
    ensure!(child.try_wait()?.is_none(), "the daemon died while serving");
    assert_success(
        &vol.fossa(&["umount", mnt.to_str().context("utf-8")?])?,
        "umount",
    )?;
    let mut child = guard.child.take().context("child")?;
    wait_until(WAIT, "the daemon's exit", || {
        Ok(child.try_wait()?.is_some())
    })?;
    let status = child.wait()?;
    ensure!(status.success(), "the daemon exited with {status}");
    Ok(())
}

#[test]
fn daemon_on_a_full_disk_keeps_serving_and_notes_the_log_gap() -> Result<()> {
    let mut vol = Volume::on_tmpfs("48m")?;
    let _guard = cleanup(&vol);
    mount_daemon(&mut vol)?;
    std::fs::write(vol.path("keep"), b"kept before the disk filled")?;
    fossa_tests::write_synced(&vol.path("synced"), b"synced")?;
    // Fill the tmpfs that holds DATA (and so DATA/fossa.log) from outside the mount.
    let mut filler = File::create(vol.home().join("filler"))?;
    let chunk = vec![0xa5u8; 1 << 20];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);
    stat_many(&vol, 300)?;
    for _ in 0..20 {
        ensure!(cat(&vol, "keep")? == "kept before the disk filled");
    }
    ensure!(cat(&vol, "synced")? == "synced");
    ensure!(
        vol.is_mounted()?,
        "the mount is gone: {}",
        vol.log_tail_lines(20)
    );
    std::fs::remove_file(vol.home().join("filler"))?;
    let log = vol.data_dir().join("fossa.log");
    wait_until(WAIT, "the note about dropped log lines", || {
        stat_many(&vol, 5)?;
        Ok(std::fs::read_to_string(&log)?.contains(DROPPED_NOTE))
    })
    .with_context(|| vol.log_tail_lines(20))?;
    assert_success(
        &vol.fossa(&["umount", vol.mnt().to_str().context("utf-8")?])?,
        "umount after the disk had room again",
    )
}

#[test]
fn daemon_log_rotates_by_size_and_keeps_three() -> Result<()> {
    const MAX: u64 = 32 << 10;
    let mut vol = Volume::new()?;
    let _guard = cleanup(&vol);
    vol.set_env("FOSSA_LOG_MAX_BYTES", &MAX.to_string());
    mount_daemon(&mut vol)?;
    let log = vol.data_dir().join("fossa.log");
    let nth = |n: u32| vol.data_dir().join(format!("fossa.log.{n}"));
    wait_until(Duration::from_secs(120), "fossa.log.3", || {
        stat_many(&vol, 50)?;
        Ok(nth(3).exists())
    })?;
    // One more full round, so the oldest file has been replaced at least once.
    let third = std::fs::read(nth(3))?;
    wait_until(Duration::from_secs(120), "a fourth rotation", || {
        stat_many(&vol, 50)?;
        Ok(std::fs::read(nth(3))? != third)
    })?;
    ensure!(!nth(4).exists(), "more than three rotated logs kept");
    for p in [log.clone(), nth(1), nth(2), nth(3)] {
        let len = std::fs::metadata(&p)?.len();
        // A file is rotated before a line would take it past MAX; the debug lines are short.
        ensure!(
            len <= MAX,
            "{} holds {len} bytes (limit {MAX})",
            p.display()
        );
    }
    assert_success(
        &vol.fossa(&["umount", vol.mnt().to_str().context("utf-8")?])?,
        "umount",
    )?;
    // The final lines went to the current file, not to a rotated one.
    let text = std::fs::read_to_string(&log)?;
    ensure!(
        text.contains("all data synced"),
        "fossa.log ends with: {text}"
    );
    Ok(())
}

#[test]
fn isatty_probes_are_answered_without_a_log_line_each() -> Result<()> {
    require_tool("python3")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    for i in 0..200 {
        std::fs::write(vol.path(format!("f{i}")), b"x")?;
    }
    let before = vol.daemon_log().lines().count();
    let script = "import os, sys\n\
                  n = 0\n\
                  for name in sorted(os.listdir(sys.argv[1])):\n\
                  \x20   with open(os.path.join(sys.argv[1], name), 'rb') as f:\n\
                  \x20       n += os.isatty(f.fileno())\n\
                  print(n)\n";
    let out = run(Command::new("python3").args(["-c", script]).arg(vol.mnt()))?;
    assert_success(&out, "python3 isatty probe")?;
    ensure!(
        out.stdout.trim() == "0",
        "isatty() was true: {}",
        out.stdout
    );
    let grown = vol.daemon_log().lines().count() - before;
    ensure!(
        grown < 10,
        "200 isatty probes grew the daemon log by {grown} lines:\n{}",
        vol.log_tail_lines(10)
    );
    vol.umount()
}

#[test]
fn redundancy_xattr_is_for_directories_and_stored_canonically() -> Result<()> {
    require_tool("setfattr")?;
    require_tool("getfattr")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::create_dir(vol.path("d"))?;
    std::fs::write(vol.path("f"), b"x")?;
    let (d, f) = (vol.path("d"), vol.path("f"));
    let set = |path: &Path, v: &str| {
        run(Command::new("setfattr")
            .args(["-n", "user.fossa.redundancy", "-v", v])
            .arg(path))
    };
    let out = set(&f, "2")?;
    ensure!(
        !out.success() && out.stderr.contains("Not a directory"),
        "setfattr on a file: {}",
        out.describe()
    );
    let cli = vol.fossa(&["redundancy", f.to_str().context("utf-8")?, "2"])?;
    fossa_tests::assert_exit(&cli, 1, "not a directory", "fossa redundancy FILE 2")?;
    for v in [" 2", "02", "2"] {
        assert_success(&set(&d, v)?, "setfattr on a directory")?;
        let got = run(Command::new("getfattr")
            .args(["--only-values", "-n", "user.fossa.redundancy"])
            .arg(&d))?;
        assert_success(&got, "getfattr")?;
        ensure!(got.stdout == "2", "{v:?} stored as {:?}", got.stdout);
    }
    let out = set(&d, "017")?;
    ensure!(!out.success(), "level 17 accepted: {}", out.describe());
    vol.umount()
}

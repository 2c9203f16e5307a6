//! Reads of blocks that only a peer holds never hold a FUSE session thread: with the only
//! peer frozen (SIGSTOP), the mount keeps answering everything else; a waiting read ends at
//! its deadline (ETIMEDOUT), when its reader is killed, or when the daemon gets SIGTERM.
//!
//! Two real devices on loopback; B runs with `FOSSA_SYNC_NO_PULL`, so what A writes stays
//! remote on B until a read asks for it. A QUIC connection to a frozen peer closes after its
//! 10 s idle timeout, so each test does its waiting well within that.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{Device, SYNC_TIMEOUT, assert_success, random_bytes, wait_until, write_synced};

/// Remote-only files read at once.
const READERS: usize = 16;
/// Size of each remote file (one chunk tree of a few blocks).
const REMOTE_LEN: usize = 256 << 10;

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// A and B joined and connected; B pulls nothing by itself and gives reads `deadline_ms`.
fn pair(port: u16, deadline_ms: &str) -> Result<(Device, Device)> {
    let (pa, pb) = (addr(1, port), addr(2, port + 1));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.vol.set_env("FOSSA_SYNC_NO_PULL", "1");
    b.vol.set_env("FOSSA_FETCH_TIMEOUT_MS", deadline_ms);
    b.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b])?;
    b.wait_connected(&[&a])?;
    Ok((a, b))
}

/// Writes `n` files on A and waits until B lists each with its full size (blocks not fetched).
fn remote_files(a: &Device, b: &Device, n: usize) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for i in 0..n {
        let rel = format!("remote-{i}.bin");
        let data = random_bytes(100 + i as u64, REMOTE_LEN);
        write_synced(&a.path(&rel), &data)?;
        files.push((b.path(&rel), data));
    }
    for (p, _) in &files {
        wait_until(SYNC_TIMEOUT, &format!("{} on B", p.display()), || {
            Ok(std::fs::metadata(p).is_ok_and(|m| m.len() == REMOTE_LEN as u64))
        })?;
    }
    let path = files[0].0.to_str().context("utf-8")?.to_owned();
    let out = b.fossa(&["status", &path, "--json"])?;
    assert_success(&out, "fossa status PATH")?;
    let st: serde_json::Value = serde_json::from_str(&out.stdout)?;
    ensure!(st["local"] == false, "{path} is local on B already: {st}");
    Ok(files)
}

/// A process stopped with SIGSTOP, continued when this is dropped (also on failure).
struct Frozen(String);

impl Frozen {
    fn new(pid: u32) -> Result<Self> {
        signal("-STOP", &pid.to_string())?;
        Ok(Frozen(pid.to_string()))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = signal("-CONT", &self.0);
    }
}

fn signal(sig: &str, pid: &str) -> Result<()> {
    let out = fossa_tests::run(Command::new("kill").args([sig, pid]))?;
    assert_success(&out, "kill")
}

/// Whether task `tid` (`/proc/PATH/syscall` under `proc_dir`) is blocked in read(2).
fn in_read(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(&libc::SYS_read.to_string()))
}

/// This thread's `/proc/self/task/TID`.
fn own_task_dir() -> PathBuf {
    let link = std::fs::read_link("/proc/thread-self").unwrap_or_default();
    Path::new("/proc").join(link)
}

type Reader = JoinHandle<(std::io::Result<Vec<u8>>, Duration)>;

/// Starts a thread reading `path` whole; returns it once it is blocked in read(2).
fn start_reader(path: PathBuf) -> Result<Reader> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(own_task_dir());
        let start = Instant::now();
        let r = std::fs::read(&path);
        (r, start.elapsed())
    });
    let task = rx.recv_timeout(SYNC_TIMEOUT)?;
    wait_until(SYNC_TIMEOUT, "a reader to block in read(2)", || {
        Ok(in_read(&task) || h.is_finished())
    })?;
    ensure!(
        !h.is_finished(),
        "a read of remote-only data returned at once"
    );
    Ok(h)
}

#[test]
fn a_frozen_peer_stalls_only_the_reads_that_need_it() -> Result<()> {
    let (a, b) = pair(26301, "6000")?;
    let files = remote_files(&a, &b, READERS)?;
    let local = random_bytes(7, 8 << 20);
    write_synced(&b.path("local.bin"), &local)?;
    let frozen = Frozen::new(a.vol.daemon_pid().context("A's daemon")?)?;

    let readers: Vec<Reader> = files
        .iter()
        .map(|(p, _)| start_reader(p.clone()))
        .collect::<Result<_>>()?;
    // While every remote read waits: a listing, stats and a read of local data (8 MiB, so
    // the kernel's read-ahead sends several background requests too).
    let start = Instant::now();
    let out = fossa_tests::run(Command::new("ls").arg("-la").arg(b.vol.mnt()))?;
    assert_success(&out, "ls -la")?;
    ensure!(
        out.stdout.contains("remote-15.bin"),
        "ls -la: {}",
        out.stdout
    );
    let ls = start.elapsed();
    for (p, _) in &files {
        ensure!(std::fs::metadata(p)?.len() == REMOTE_LEN as u64);
    }
    ensure!(std::fs::read(b.path("local.bin"))? == local, "local.bin");
    let all = start.elapsed();
    let waiting = readers.iter().filter(|r| !r.is_finished()).count();
    eprintln!("with {waiting} reads waiting: ls -la {ls:?}; ls, 16 stats and 8 MiB read {all:?}");
    ensure!(
        waiting == READERS,
        "only {waiting} of {READERS} remote reads were still waiting when the rest answered \
         (after {all:?}): the mount waited on the network"
    );

    for r in readers {
        let (got, took) = r.join().map_err(|_| anyhow::anyhow!("reader panicked"))?;
        match got {
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                eprintln!("remote read: ETIMEDOUT after {took:?}")
            }
            other => bail!(
                "a read from a frozen peer gave {:?}, not ETIMEDOUT",
                other.map(|d| d.len())
            ),
        }
    }
    drop(frozen);
    let (p, want) = &files[3];
    let rel = p.file_name().and_then(|n| n.to_str()).context("name")?;
    b.wait_content(rel, want)?;
    Ok(())
}

/// A child process, SIGKILLed and reaped when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dd iflag=direct` of `path`, once blocked in read(2). Direct I/O: the reader waits for the
/// reply itself, uninterruptibly once the request is with the daemon (a buffered reader would
/// wait for a page, killably, and die at once whatever the daemon does).
fn direct_reader(path: &Path) -> Result<Kid> {
    let child = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["of=/dev/null", "bs=64k", "iflag=direct"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut kid = Kid(child);
    let dir = PathBuf::from(format!("/proc/{}", kid.0.id()));
    wait_until(SYNC_TIMEOUT, "dd to block in read(2)", || {
        Ok(in_read(&dir) || kid.0.try_wait()?.is_some())
    })?;
    ensure!(
        kid.0.try_wait()?.is_none(),
        "dd of remote-only data ended at once"
    );
    Ok(kid)
}

#[test]
fn a_killed_reader_and_sigterm_end_waiting_reads() -> Result<()> {
    // A deadline far beyond every bound below: only a cancelled read can meet them.
    let (a, mut b) = pair(26401, "60000")?;
    let files = remote_files(&a, &b, 2)?;
    let frozen = Frozen::new(a.vol.daemon_pid().context("A's daemon")?)?;

    let mut killed = direct_reader(&files[0].0)?;
    let start = Instant::now();
    killed.0.kill()?;
    wait_until(
        Duration::from_secs(4),
        "the killed reader to be reaped",
        || Ok(killed.0.try_wait()?.is_some()),
    )?;
    eprintln!("killed reader reaped after {:?}", start.elapsed());

    let mut waiting = direct_reader(&files[1].0)?;
    let start = Instant::now();
    let pid = b.vol.daemon_pid().context("B's daemon")?;
    signal("-TERM", &pid.to_string())?;
    wait_until(
        Duration::from_secs(10),
        "B's daemon to exit after SIGTERM",
        || Ok(exited(pid)),
    )?;
    ensure!(!b.vol.is_mounted()?, "B's daemon exited and left its mount");
    let status = b.vol.wait_daemon_exit()?;
    eprintln!(
        "SIGTERM with a read waiting: daemon exited ({status}) after {:?}",
        start.elapsed()
    );
    ensure!(status.success(), "B's daemon exited with {status}");
    let dd = waiting.0.try_wait()?.context("dd still running")?;
    ensure!(!dd.success(), "dd of a frozen peer's data succeeded");
    let mut err = String::new();
    if let Some(mut e) = waiting.0.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err)?;
    }
    ensure!(err.contains("Input/output error"), "dd said: {err}");
    drop(frozen);
    Ok(())
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(e) => e.kind() == ErrorKind::NotFound,
    }
}

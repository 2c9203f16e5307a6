//! Crashes and corruption: what fsync acknowledged survives SIGKILL, and a flipped byte on disk
//! is reported (EIO, a log line naming the block, `fsck` exit 1), never served.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{Volume, assert_success, hash_hex, random_bytes, wait_until, write_synced};

/// fsyncs the writer must have completed before the daemon is killed.
const FSYNCS_BEFORE_KILL: usize = 25;

/// Writes files of random content into `dir`, fsyncing each, and appends `name hash` to the
/// journal (outside the mount, itself synced) once the file's fsync returned. Stops at the
/// first error (the daemon died) or when `stop` is set.
fn writer(
    dir: PathBuf,
    journal: PathBuf,
    synced: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let mut log = std::fs::File::create(journal)?;
    for i in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let len = 1 + (i as usize * 37_813) % (256 * 1024);
        let bytes = random_bytes(1_000 + i, len);
        let name = format!("w-{i:05}");
        if write_synced(&dir.join(&name), &bytes).is_err() {
            break;
        }
        writeln!(log, "{name} {}", hash_hex(&bytes))?;
        log.sync_data()?;
        synced.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

#[test]
fn fsynced_files_survive_sigkill() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let dir = vol.path("work");
    std::fs::create_dir(&dir)?;
    let journal = vol.root().join("journal");
    let synced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (dir, journal, synced, stop) =
            (dir.clone(), journal.clone(), synced.clone(), stop.clone());
        std::thread::spawn(move || writer(dir, journal, synced, stop))
    };
    let waited = wait_until(Duration::from_secs(60), "the writer's fsyncs", || {
        Ok(synced.load(Ordering::SeqCst) >= FSYNCS_BEFORE_KILL || handle.is_finished())
    });
    // Kill mid-workload: the writer is still running, so its next syscall meets a dead daemon.
    vol.kill_daemon()?;
    stop.store(true, Ordering::SeqCst);
    let written = handle
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))?;
    // Only now detach: before, a writer could have written into the bare mount point.
    vol.clear_stale_mount()?;
    waited?;
    written?;
    let entries = std::fs::read_to_string(&journal)?;
    let n = entries.lines().count();
    ensure!(
        n >= FSYNCS_BEFORE_KILL,
        "the writer stopped after {n} fsyncs, before the kill"
    );

    vol.mount()?;
    let mut bad = Vec::new();
    for line in entries.lines() {
        let (name, want) = line.split_once(' ').context("bad journal line")?;
        match std::fs::read(dir.join(name)) {
            Ok(bytes) if hash_hex(&bytes) == want => {}
            Ok(bytes) => bad.push(format!("{name}: content differs ({} bytes)", bytes.len())),
            Err(e) => bad.push(format!("{name}: {e}")),
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} of {n} fsynced files damaged after SIGKILL:\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }
    vol.umount()?;
    let out = vol.fossa(&["fsck"])?;
    assert_success(&out, "fossa fsck after the crash")?;
    ensure!(
        out.stdout.to_lowercase().contains("clean"),
        "fsck does not say clean: {}",
        out.describe()
    );
    vol.fsck_json_clean("after the crash")
}

/// The largest regular file under `dir`.
fn largest_file(dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let candidate = if ft.is_dir() {
            largest_file(&entry.path())?
        } else if ft.is_file() {
            Some((entry.metadata()?.len(), entry.path()))
        } else {
            None
        };
        if let Some(c) = candidate
            && best.as_ref().is_none_or(|b| c.0 > b.0)
        {
            best = Some(c);
        }
    }
    Ok(best)
}

/// Whether `line` contains a run of at least 16 hex digits (a block id).
fn names_block_id(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() >= 16)
}

#[test]
fn flipped_byte_is_reported_not_served() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let content = random_bytes(99, 4 << 20);
    write_synced(&vol.path("victim"), &content)?;
    vol.umount()?;
    let (len, data_file) = largest_file(&vol.data_dir().join("blocks/data"))?
        .context("no files under data/blocks/data")?;
    ensure!(
        len >= 64 * 1024,
        "largest block file {} has only {len} bytes",
        data_file.display()
    );
    let mut bytes = std::fs::read(&data_file)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data_file, &bytes)?;

    vol.mount()?;
    let log_before = vol.daemon_log().lines().count();
    match std::fs::read(vol.path("victim")) {
        Ok(read) if read == content => bail!("corrupted data was served as the original content"),
        Ok(_) => bail!("corrupted data was served (content differs, no error)"),
        Err(e) => ensure!(
            e.raw_os_error() == Some(libc::EIO),
            "reading the damaged file failed with {e}, want EIO"
        ),
    }
    let log = vol.daemon_log();
    let new_lines: Vec<&str> = log.lines().skip(log_before).collect();
    ensure!(
        new_lines.iter().any(|l| names_block_id(l)),
        "the daemon log has no line naming the damaged block:\n{}",
        new_lines.join("\n")
    );
    vol.umount()?;
    let out = vol.fossa(&["fsck"])?;
    ensure!(
        out.code() == Some(1),
        "fsck on a damaged volume: want exit 1, {}",
        out.describe()
    );
    ensure!(
        format!("{}{}", out.stdout, out.stderr)
            .lines()
            .any(names_block_id),
        "fsck does not name the damaged block: {}",
        out.describe()
    );
    let out = vol.fossa(&["fsck", "--json"])?;
    ensure!(
        out.code() == Some(1),
        "fsck --json on a damaged volume: want exit 1, {}",
        out.describe()
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("fsck --json is not JSON: {}", out.describe()))?;
    ensure!(
        json["clean"] == serde_json::Value::Bool(false),
        "fsck --json: {json}"
    );
    Ok(())
}

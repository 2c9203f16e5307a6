//! Redundancy requests of the control socket: a directory's level (`fossa redundancy`) and
//! the `redundancy` object of `status` (docs/redundancy.md, docs/cli.md).
use super::Served;
use super::devices::served_or_fail;
use crate::volume::Volume;
use anyhow::{Result, anyhow, bail};
use fossa_fs::{FileKind, FsError, REDUNDANCY_XATTR, XattrMode};
use serde_json::{Value, json};

/// The volume-relative path of `path`, absolute inside the mount.
pub(super) fn relative<'a>(served: &Served, path: &'a str) -> Result<&'a str> {
    std::path::Path::new(path)
        .strip_prefix(&served.mountpoint)
        .map_err(|_| {
            anyhow!(
                "{path} is not in the volume mounted at {}",
                served.mountpoint.display()
            )
        })?
        .to_str()
        .ok_or_else(|| anyhow!("{path}: not UTF-8"))
}

/// The inode of the directory at `rel`.
fn dir_ino(vol: &Volume, rel: &str, path: &str) -> Result<u64> {
    let mut ino = fossa_fs::ROOT_INO;
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        ino = vol
            .fs
            .lookup(ino, c.as_bytes())
            .map_err(|e| match e {
                FsError::NotFound => anyhow!("{path}: no such directory in the volume"),
                e => e.into(),
            })?
            .ino;
    }
    if vol.fs.getattr(ino)?.kind != FileKind::Dir {
        bail!("{path}: not a directory (levels are set on directories)");
    }
    Ok(ino)
}

/// `redundancy DIR [N]`: sets the level if `level` is given, then shows the level in effect
/// and where it is set.
pub(crate) fn level(
    vol: &Volume,
    served: Option<&Served>,
    path: &str,
    level: Option<u8>,
) -> Result<Value> {
    let served = served_or_fail(served)?;
    let rel = relative(served, path)?;
    let ino = dir_ino(vol, rel, path)?;
    if let Some(n) = level {
        let v = n.to_string();
        vol.fs
            .setxattr(ino, REDUNDANCY_XATTR, v.as_bytes(), XattrMode::Any)?;
        vol.fs.sync()?;
        tracing::info!(path = rel, level = n, "redundancy level set");
    }
    let r = vol.fs.redundancy(rel.as_bytes())?;
    let from = set_at(vol, rel)?;
    Ok(json!({
        "path": rel,
        "level": r.level,
        "set_here": r.set_here,
        "set_at": from,
    }))
}

/// The nearest directory at or above `rel` that sets a level (None: the default applies).
fn set_at(vol: &Volume, rel: &str) -> Result<Option<String>> {
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for n in (0..=parts.len()).rev() {
        let p = parts[..n].join("/");
        if vol.fs.redundancy(p.as_bytes())?.set_here.is_some() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The `redundancy` object of `status --json`.
pub(crate) fn status(vol: &Volume, served: Option<&Served>) -> Result<Value> {
    let state = served.map(|s| s.sync.repair_state()).unwrap_or_default();
    let me = vol.sync.identity.key.id();
    let runner = state.runner.map(|r| r.to_string());
    let is_runner = state.runner == Some(me);
    let live = served.map_or_else(Vec::new, |s| s.sync.node().connected());
    let count = |b: &blockstore::BlockId| {
        state
            .holders
            .get(b)
            .map_or(0, |hs: &Vec<fossa_net::DeviceId>| {
                hs.iter().filter(|h| **h == me || live.contains(h)).count()
            })
    };
    let mut dirs = Vec::new();
    for d in vol.fs.level_dirs()? {
        let counts: Vec<usize> = d.blocks.iter().map(count).collect();
        let under = counts.iter().filter(|c| **c < usize::from(d.level)).count();
        dirs.push(json!({
            "path": String::from_utf8_lossy(&d.path),
            "level": d.level,
            "blocks": d.blocks.len(),
            "copies_min": is_runner.then(|| counts.iter().min().copied().unwrap_or(0)),
            "blocks_under_level": is_runner.then_some(under),
        }));
    }
    let per_node: serde_json::Map<String, Value> = state
        .per_node
        .iter()
        .map(|(n, c)| (n.to_string(), json!(c)))
        .collect();
    Ok(json!({
        "runner": runner,
        "this_device_runs_repair": is_runner,
        "rounds": state.rounds,
        "below_level": state.below_level,
        "waiting": state.waiting,
        "unavailable": state.unavailable,
        "lost": state.lost,
        "repair_in_progress": state.copies_planned > 0,
        "copied": state.total.copied,
        "bytes_copied": state.total.bytes_copied,
        "dropped": state.total.dropped,
        "audits_passed": state.total.audits_passed,
        "audits_failed": state.total.audits_failed,
        "errors": state.total.errors,
        "local_checked": state.heal.checked,
        "local_corrupt": state.heal.corrupt,
        "local_healed": state.heal.healed,
        "blocks_per_node": per_node,
        "dirs": dirs,
    }))
}

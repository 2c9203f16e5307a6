//! Redundancy requests of the control socket: a directory's level (`fossa redundancy`) and
//! the `redundancy` object of `status` (docs/redundancy.md, docs/cli.md).
use super::api::{LevelDir, Redundancy, RedundancyStatus};
use super::served::{Served, served_or_fail};
use crate::sync::RepairState;
use crate::volume::Volume;
use anyhow::{Result, anyhow, bail};
use blockstore::BlockId;
use fossa_fs::{FileKind, FsError, REDUNDANCY_XATTR, XattrMode};
use fossa_net::DeviceId;

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
) -> Result<Redundancy> {
    let served = served_or_fail(served)?;
    let rel = served.relative(path)?;
    let ino = dir_ino(vol, rel, path)?;
    if let Some(n) = level {
        let v = n.to_string();
        vol.fs
            .setxattr(ino, REDUNDANCY_XATTR, v.as_bytes(), XattrMode::Any)?;
        vol.fs.sync()?;
        tracing::info!(path = rel, level = n, "redundancy level set");
    }
    let r = vol.fs.redundancy(rel.as_bytes())?;
    Ok(Redundancy {
        path: rel.to_owned(),
        level: r.level,
        set_here: r.set_here,
        set_at: set_at(vol, rel)?,
    })
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
pub(crate) fn status(vol: &Volume, served: Option<&Served>) -> Result<RedundancyStatus> {
    let state = served.map(|s| s.sync.repair_state()).unwrap_or_default();
    let me = vol.sync.identity.key.id();
    let is_runner = state.runner == Some(me);
    let live = served.map_or_else(Vec::new, |s| s.sync.node().connected());
    let mut dirs = Vec::new();
    for d in vol.fs.level_dirs()? {
        let counts: Vec<u64> = d
            .blocks
            .iter()
            .map(|b| copies(&state, b, me, &live))
            .collect();
        let under = counts.iter().filter(|c| **c < u64::from(d.level)).count();
        dirs.push(LevelDir {
            path: String::from_utf8_lossy(&d.path).into_owned(),
            level: d.level,
            blocks: d.blocks.len() as u64,
            copies_min: is_runner.then(|| counts.iter().min().copied().unwrap_or(0)),
            blocks_under_level: is_runner.then_some(under as u64),
        });
    }
    let t = &state.total;
    Ok(RedundancyStatus {
        runner: state.runner.map(|r| r.to_string()),
        this_device_runs_repair: is_runner,
        rounds: state.rounds,
        below_level: state.below_level as u64,
        waiting: state.waiting as u64,
        unavailable: state.unavailable as u64,
        lost: state.lost as u64,
        repair_in_progress: state.copies_planned > 0,
        copied: t.copied as u64,
        bytes_copied: t.bytes_copied,
        dropped: t.dropped as u64,
        audits_passed: t.audits_passed as u64,
        audits_failed: t.audits_failed as u64,
        errors: t.errors as u64,
        local_checked: state.heal.checked,
        local_corrupt: state.heal.corrupt,
        local_healed: state.heal.healed,
        blocks_per_node: state
            .per_node
            .iter()
            .map(|(n, c)| (n.to_string(), *c as u64))
            .collect(),
        dirs,
    })
}

/// Live, trusted copies of `b`: holders that are this device or connected now.
fn copies(state: &RepairState, b: &BlockId, me: DeviceId, live: &[DeviceId]) -> u64 {
    state.holders.get(b).map_or(0, |hs| {
        hs.iter().filter(|h| **h == me || live.contains(h)).count() as u64
    })
}

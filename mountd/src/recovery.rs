//! Damaged databases: the open `fossa fsck --repair` does (docs/cli.md, "Recovery"). The hint
//! a failed plain open gives lives with that open, in `volume`.
use crate::config::Paths;
use crate::sync::{NetSource, load_members};
use crate::timefmt::rfc3339;
use crate::unlock::Secret;
use crate::volume::{Volume, VolumeLock, open_fs, owner, unseal};
use anyhow::Result;
use blockstore::{BlockSource, BlockStore, StoreError, StoreOptions};
use fossa_fs::{FsError, FsOptions, RecoverFrom, Recovered, Recovery, recover_meta};
use fossa_net::Role;
use std::sync::Arc;

/// Opens the volume for `fsck --repair`: a damaged or missing block index is replaced by an
/// empty one (the repair that follows rebuilds it from the data files), a damaged metadata
/// database is recovered. Returns the volume and one line per thing recovered.
pub(crate) fn open_repairing(
    paths: &Paths,
    lock: VolumeLock,
    secret: &Secret,
) -> Result<(Volume, Vec<String>)> {
    let (config, vs) = unseal(paths, secret)?;
    let mut notes = Vec::new();
    let store = Arc::new(open_store(paths, &mut notes)?);
    let net_source = Arc::new(NetSource::new(store.clone()));
    let opts = FsOptions::default();
    let fs = match open_fs(paths, &store, &net_source, &vs, opts.clone()) {
        Ok(fs) => fs,
        Err(e @ FsError::MetaDamaged { .. }) => {
            tracing::warn!(error = %e, "recovering the metadata database");
            notes.push(e.to_string());
            let from = match other_devices(paths, config.volume_bytes()?)? {
                0 => RecoverFrom::LatestSnapshot,
                _ => RecoverFrom::Peers,
            };
            let source: Arc<dyn BlockSource> = net_source.clone();
            let r = recover_meta(store.clone(), source, &paths.meta(), &vs, owner(), from)?;
            notes.extend(describe(&r));
            open_fs(paths, &store, &net_source, &vs, opts)?
        }
        Err(e) => return Err(e.into()),
    };
    let vol = Volume::assemble(paths, lock, (config, vs), (store, net_source), fs)?;
    Ok((vol, notes))
}

fn open_store(paths: &Paths, notes: &mut Vec<String>) -> Result<BlockStore> {
    let dir = paths.blocks();
    match BlockStore::open(&dir, StoreOptions::default()) {
        Ok(s) => Ok(s),
        Err(e @ StoreError::IndexDamaged { .. }) => {
            let (s, moved) = BlockStore::open_rebuilding_index(&dir, StoreOptions::default())?;
            let kept = moved
                .map(|p| format!(" (the damaged file is kept as {})", p.display()))
                .unwrap_or_default();
            notes.push(format!("{e}: rebuilt from the data files{kept}"));
            Ok(s)
        }
        Err(e) => Err(e.into()),
    }
}

/// Member devices other than this one (keepers hold blocks, not indexes).
fn other_devices(paths: &Paths, volume: [u8; 16]) -> Result<usize> {
    let devices = load_members(paths, volume)?
        .list()
        .into_iter()
        .filter(|m| m.role == Role::Device && !m.revoked)
        .count();
    Ok(devices.saturating_sub(1))
}

/// What a recovery brought back and what it lost, for the fsck report.
fn describe(r: &Recovery) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &r.damaged {
        out.push(format!("the damaged database is kept as {}", p.display()));
    }
    out.push(format!(
        "{} snapshot(s) restored from the snapshot anchor",
        r.snapshots
    ));
    match &r.source {
        Recovered::Snapshot {
            name,
            time,
            files,
            dirs,
            unreadable,
        } => {
            out.push(format!(
                "recovered from snapshot {name} of {}: {files} files, {dirs} directories; \
                 changes after it, extended attributes and redundancy levels are lost",
                rfc3339(*time)
            ));
            out.extend(unreadable.iter().map(|id| {
                format!("snapshot directory block {id} unreadable: its subtree is lost")
            }));
        }
        Recovered::Peers => out.push(
            "recovered from the sync index of the other devices: the tree comes back from them \
             at the next mount; changes not yet sent to a device are lost"
                .into(),
        ),
        Recovered::Nothing => out.push(
            "no snapshot and no other device to recover from: the volume restarts empty \
             (its blocks stay in the store until the next `fossa gc`)"
                .into(),
        ),
    }
    out
}

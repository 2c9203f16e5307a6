//! The sync requests of the control socket: invitations, the member list, revocation, and the
//! sync parts of `status`.
use super::api::{Device, Invitation, PathStatus, SyncStatus};
use super::served::{Served, served_or_fail};
use crate::sync::{find_member, parse_addr_list, save_members, wrap_code};
use crate::volume::Volume;
use anyhow::{Result, anyhow, bail};
use fossa_net::{DeviceId, Members};
use std::time::Duration;

/// Cap on the missing blocks `status` counts.
const MISSING_CAP: usize = 100_000;

/// A new invitation code valid for `secs` seconds.
pub(crate) fn invite(
    vol: &Volume,
    served: Option<&Served>,
    secs: u64,
    addrs: &[String],
    keeper: bool,
) -> Result<Invitation> {
    let served = served_or_fail(served)?;
    let node = served.sync.node();
    let valid = Duration::from_secs(secs.max(1));
    if keeper {
        let addrs = parse_addr_list(addrs)?;
        let code = served
            .sync
            .add_keeper_invite(vol.sync.volume, addrs, valid)?;
        tracing::info!("storage-peer invitation made, valid for {secs} s");
        return Ok(Invitation { code });
    }
    let inv = wrap_code(
        &vol.sync.vs,
        vol.sync.volume,
        vol.sync.identity.key.id(),
        node.local_addr(),
        parse_addr_list(addrs)?,
        valid,
    )?;
    served.sync.add_invite(inv.secret, inv.k_wrap, valid);
    tracing::info!("invitation made, valid for {secs} s");
    Ok(Invitation { code: inv.code })
}

/// `status PATH`: `path` is absolute, inside the mount.
pub(crate) fn path_status(vol: &Volume, served: Option<&Served>, path: &str) -> Result<PathStatus> {
    let served = served_or_fail(served)?;
    let rel = served.relative(path)?;
    let st = vol
        .fs
        .sync_handle()
        .status(rel.as_bytes())
        .map_err(|e| match e {
            fossa_fs::FsError::NotFound => anyhow!("{path}: no such file in the volume"),
            e => e.into(),
        })?;
    Ok(PathStatus {
        path: rel.to_owned(),
        local: st.local,
        pending: st.pending,
        version: st.version,
        author: DeviceId(st.author).to_string(),
    })
}

fn connected(served: Option<&Served>) -> Vec<DeviceId> {
    served.map_or_else(Vec::new, |s| s.sync.node().connected())
}

/// `devices --json`.
pub(crate) fn list(vol: &Volume, served: Option<&Served>) -> Vec<Device> {
    let ident = &vol.sync.identity;
    member_rows(&ident.members, Some(ident.key.id()), &connected(served))
}

/// The `devices --json` array: `me` is this device, `live` the connected ones.
pub(crate) fn member_rows(
    members: &Members,
    me: Option<DeviceId>,
    live: &[DeviceId],
) -> Vec<Device> {
    members
        .list()
        .into_iter()
        .map(|r| Device {
            id: r.device.to_string(),
            this_device: Some(r.device) == me,
            connected: live.contains(&r.device),
            addrs: r.addrs.iter().map(ToString::to_string).collect(),
            name: r.name,
            revoked: r.revoked,
        })
        .collect()
}

/// `devices remove ID`: revokes for good and saves the list; a running node drops the device.
pub(crate) fn remove(vol: &Volume, id: &str) -> Result<()> {
    let ident = &vol.sync.identity;
    let device = find_member(&ident.members, id)?;
    if device == ident.key.id() {
        bail!("{device} is this device: remove it from another member");
    }
    ident.members.revoke(&ident.key, &device)?;
    // A running node watches the list: it closes the device's session (REVOKED) and pinning
    // refuses it from now on.
    save_members(&vol.paths, &ident.members)?;
    tracing::info!(%device, "device revoked");
    Ok(())
}

/// The `sync` object of `status --json`.
pub(crate) fn sync_status(vol: &Volume, served: Option<&Served>) -> Result<SyncStatus> {
    let missing = vol.fs.sync_handle().missing(MISSING_CAP)?.len();
    let node = served.map(|s| s.sync.node());
    let stats = served.map(|s| s.sync.wire_stats()).unwrap_or_default();
    Ok(SyncStatus {
        device_id: vol.sync.identity.key.id().to_string(),
        device_name: vol.sync.identity.name(),
        listen: node.map(|n| n.local_addr().to_string()),
        connected: connected(served).iter().map(ToString::to_string).collect(),
        local_seq: vol.fs.sync_handle().seq(),
        blocks_missing: missing as u64,
        bytes_sent: stats.0,
        bytes_received: stats.1,
        connections: stats.2 as u64,
    })
}

//! The sync requests of the control socket: invitations, the member list, revocation, and the
//! sync parts of `status`.
use super::Served;
use crate::sync::{find_member, parse_addr_list, save_members, wrap_code};
use crate::volume::Volume;
use anyhow::{Result, anyhow, bail};
use fossa_net::{DeviceId, Members};
use serde_json::{Value, json};
use std::time::Duration;

/// Cap on the missing blocks `status` counts.
const MISSING_CAP: usize = 100_000;

/// The message for requests that need the daemon (docs/cli.md).
pub(crate) const NOT_MOUNTED: &str = "not mounted: run `fossa mount` first";

pub(crate) fn served_or_fail(served: Option<&Served>) -> Result<&Served> {
    served.ok_or_else(|| anyhow!(NOT_MOUNTED))
}

/// A new invitation code valid for `secs` seconds.
pub(crate) fn invite(
    vol: &Volume,
    served: Option<&Served>,
    secs: u64,
    addrs: &[String],
    keeper: bool,
) -> Result<Value> {
    let served = served_or_fail(served)?;
    let node = served.sync.node();
    let valid = Duration::from_secs(secs.max(1));
    if keeper {
        let addrs = parse_addr_list(addrs)?;
        let code = served
            .sync
            .add_keeper_invite(vol.sync.volume, addrs, valid)?;
        tracing::info!("storage-peer invitation made, valid for {secs} s");
        return Ok(json!({ "code": code }));
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
    Ok(json!({ "code": inv.code }))
}

/// `status PATH`: `path` is absolute, inside the mount.
pub(crate) fn path_status(vol: &Volume, served: Option<&Served>, path: &str) -> Result<Value> {
    let served = served_or_fail(served)?;
    let rel = super::redundancy::relative(served, path)?;
    let st = vol
        .fs
        .sync_handle()
        .status(rel.as_bytes())
        .map_err(|e| match e {
            fossa_fs::FsError::NotFound => anyhow!("{path}: no such file in the volume"),
            e => e.into(),
        })?;
    Ok(json!({
        "path": rel,
        "local": st.local,
        "pending": st.pending,
        "version": st.version,
        "author": DeviceId(st.author).to_string(),
    }))
}

fn connected(served: Option<&Served>) -> Vec<DeviceId> {
    served.map_or_else(Vec::new, |s| s.sync.node().connected())
}

/// `devices --json`.
pub(crate) fn list(vol: &Volume, served: Option<&Served>) -> Value {
    let ident = &vol.sync.identity;
    member_rows(&ident.members, Some(ident.key.id()), &connected(served))
}

/// The `devices --json` array: `me` is this device, `live` the connected ones.
pub(crate) fn member_rows(members: &Members, me: Option<DeviceId>, live: &[DeviceId]) -> Value {
    let rows: Vec<Value> = members
        .list()
        .into_iter()
        .map(|r| {
            json!({
                "id": r.device.to_string(),
                "name": r.name,
                "revoked": r.revoked,
                "connected": live.contains(&r.device),
                "addrs": r.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "this_device": Some(r.device) == me,
            })
        })
        .collect();
    Value::Array(rows)
}

/// `devices remove ID`: revokes for good and saves the list; a running node drops the device.
pub(crate) fn remove(vol: &Volume, id: &str) -> Result<Value> {
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
    Ok(Value::Null)
}

/// The `sync` object of `status --json`.
pub(crate) fn sync_status(vol: &Volume, served: Option<&Served>) -> Result<Value> {
    let missing = vol.fs.sync_handle().missing(MISSING_CAP)?.len();
    let node = served.map(|s| s.sync.node());
    let stats = served.map(|s| s.sync.wire_stats()).unwrap_or_default();
    Ok(json!({
        "device_id": vol.sync.identity.key.id().to_string(),
        "device_name": vol.sync.identity.name(),
        "listen": node.map(|n| n.local_addr().to_string()),
        "connected": connected(served).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "local_seq": vol.fs.sync_handle().seq(),
        "blocks_missing": missing,
        "bytes_sent": stats.0,
        "bytes_received": stats.1,
        "connections": stats.2,
    }))
}

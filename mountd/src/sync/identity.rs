//! This device's identity on disk: `DATA/device.key` and the member list `DATA/members`
//! (crypto.md, "Device identity" and "Membership records").
use crate::config::Paths;
use anyhow::{Context, Result, anyhow, bail};
use fossa_net::{DeviceId, DeviceKey, MemberRecord, Members};
use std::sync::Arc;

/// The device key and the member list of an open volume.
pub(crate) struct Identity {
    /// This device's key.
    pub(crate) key: Arc<DeviceKey>,
    /// The volume's members (this device included).
    pub(crate) members: Arc<Members>,
}

impl Identity {
    /// Loads the device key and the member list, creating the key and adding this device as
    /// the first member (named `name`, default [`default_name`]) if the list is empty.
    pub(crate) fn load_or_create(
        paths: &Paths,
        volume: [u8; 16],
        name: Option<&str>,
    ) -> Result<Self> {
        let key = Arc::new(load_key(paths)?);
        let members = Arc::new(load_members(paths, volume)?);
        if members.list().is_empty() {
            add_self(&members, &key, name)?;
            save_members(paths, &members)?;
        }
        Ok(Identity { key, members })
    }

    /// This device's name in the member list.
    pub(crate) fn name(&self) -> String {
        let me = self.key.id();
        self.members
            .list()
            .into_iter()
            .find(|r| r.device == me)
            .map(|r| r.name)
            .unwrap_or_else(|| default_name(&me))
    }
}

/// Loads `DATA/device.key`, creating it (mode 0600) if absent.
pub(crate) fn load_key(paths: &Paths) -> Result<DeviceKey> {
    let p = paths.device_key();
    DeviceKey::load_or_create(&p).with_context(|| format!("{}", p.display()))
}

/// Loads `DATA/members` (empty if absent).
pub(crate) fn load_members(paths: &Paths, volume: [u8; 16]) -> Result<Members> {
    let p = paths.members();
    Members::load(volume, &p).with_context(|| format!("{}", p.display()))
}

/// Serialises saves within the process: `Members::save` writes through one temporary file
/// name, so two concurrent saves (a revocation and the saver thread) would race on it.
static SAVING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Saves `DATA/members` atomically.
pub(crate) fn save_members(paths: &Paths, members: &Members) -> Result<()> {
    let _one_at_a_time = SAVING.lock();
    let p = paths.members();
    members
        .save(&p)
        .with_context(|| format!("saving {}", p.display()))
}

/// Adds this device as the volume's first member, signed by itself.
fn add_self(members: &Members, key: &DeviceKey, name: Option<&str>) -> Result<()> {
    let record = MemberRecord {
        device: key.id(),
        public_key: key.public_key(),
        name: name.map_or_else(|| default_name(&key.id()), str::to_owned),
        added_by: key.id(),
        revoked: false,
        addrs: Vec::new(),
        role: fossa_net::Role::Device,
    };
    members
        .add_own(key, record)
        .context("adding this device to the member list")
}

/// The default device name: the host name and the first group of the device id
/// (`laptop-5XQG2TA`), so that devices on hosts of the same name differ (docs/cli.md).
pub(crate) fn default_name(id: &DeviceId) -> String {
    format!("{}-{}", hostname(), short_id(id))
}

/// The first group of a device id's display form.
pub(crate) fn short_id(id: &DeviceId) -> String {
    id.to_string()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The machine's host name, or "fossa" if it cannot be read.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "fossa".to_owned())
}

/// The member whose display id is `id` or starts with it (dashes and case ignored).
pub(crate) fn find_member(members: &Members, id: &str) -> Result<DeviceId> {
    let want = normalise(id);
    if want.is_empty() {
        bail!("no device {id}");
    }
    let hits: Vec<DeviceId> = members
        .list()
        .iter()
        .map(|r| r.device)
        .filter(|d| normalise(&d.to_string()).starts_with(&want))
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(anyhow!("no device {id}")),
        _ => Err(anyhow!(
            "{id} matches {} devices: give more of it",
            hits.len()
        )),
    }
}

fn normalise(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_without_dashes_or_case() {
        assert_eq!(normalise("ab2-cd3 "), "AB2CD3");
        assert!(!hostname().is_empty());
        let a = DeviceId([1; 32]);
        let b = DeviceId([2; 32]);
        assert_ne!(default_name(&a), default_name(&b));
        assert!(default_name(&a).starts_with(&format!("{}-", hostname())));
        assert_eq!(short_id(&a).len(), 7);
        assert!(a.to_string().starts_with(&short_id(&a)));
    }
}

//! The volume's member list (crypto.md, "Membership records"): signed records, revocation final.
//!
//! Merge rules: a record is accepted if its DeviceId is BLAKE3 of its public key and it is
//! signed by a current member, or, only while the list is empty, if it is the self-signed
//! record of the volume's first device. Only a device (role [`Role::Device`]) signs records: a
//! keeper's signature adds or revokes nobody. A revoked device never becomes a member again; a
//! record of a known device with another public key is ignored. Address hints are not signed.
use crate::error::LocalError;
use crate::identity::sync_parent;
use crate::identity::{DeviceId, DeviceKey, verify_signature};
use crate::proto::{RecordWire, RoleWire, SignedMemberWire};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use tokio::sync::watch;

/// Domain-separation prefix of member record signatures.
const SIG_CONTEXT: &[u8] = b"fossa member v2";
/// First bytes of the member list file (then a postcard `Vec<SignedMemberWire>`).
const FILE_MAGIC: &[u8; 16] = b"fossa members v2";

/// What a member may do (crypto.md, "Membership records").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// A member device: holds the volume secret, syncs the index, signs member records.
    #[default]
    Device,
    /// A storage-only peer (`fossa keeper`): stores and serves ciphertext blocks for devices,
    /// never receives the volume secret, index updates or names.
    Keeper,
}

impl Role {
    fn to_wire(self) -> RoleWire {
        match self {
            Role::Device => RoleWire::Device,
            Role::Keeper => RoleWire::Keeper,
        }
    }
    fn from_wire(w: RoleWire) -> Self {
        match w {
            RoleWire::Device => Role::Device,
            RoleWire::Keeper => Role::Keeper,
        }
    }
}

/// One device of the volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The device.
    pub device: DeviceId,
    /// Its Ed25519 public key (DeviceId = BLAKE3 of it).
    pub public_key: [u8; 32],
    /// A human name ("laptop").
    pub name: String,
    /// The member that added it (itself for the volume's first device).
    pub added_by: DeviceId,
    /// Revoked for good.
    pub revoked: bool,
    /// Device or keeper (signed).
    pub role: Role,
    /// Where it was last reached (a hint, not signed).
    pub addrs: Vec<SocketAddr>,
}

/// A record with its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMember {
    /// The record.
    pub record: MemberRecord,
    /// Who signed it (must be a member).
    pub signer: DeviceId,
    /// Ed25519 over "fossa member v2" ‖ volume id ‖ record encoding.
    pub sig: [u8; 64],
}

impl MemberRecord {
    fn to_wire(&self) -> RecordWire {
        RecordWire {
            device: self.device.0,
            public_key: self.public_key,
            name: self.name.clone(),
            added_by: self.added_by.0,
            revoked: self.revoked,
            role: self.role.to_wire(),
        }
    }
}

impl SignedMember {
    pub(crate) fn to_wire(&self) -> SignedMemberWire {
        SignedMemberWire {
            record: self.record.to_wire(),
            signer: self.signer.0,
            sig: self.sig.to_vec(),
            addrs: self.record.addrs.clone(),
        }
    }
    /// None if the signature has the wrong length.
    pub(crate) fn from_wire(w: SignedMemberWire) -> Option<Self> {
        let sig: [u8; 64] = w.sig.try_into().ok()?;
        Some(SignedMember {
            record: MemberRecord {
                device: DeviceId(w.record.device),
                public_key: w.record.public_key,
                name: w.record.name,
                added_by: DeviceId(w.record.added_by),
                revoked: w.record.revoked,
                role: Role::from_wire(w.record.role),
                addrs: w.addrs,
            },
            signer: DeviceId(w.signer),
            sig,
        })
    }
}

/// The bytes a member record signature covers.
fn signed_message(volume: &[u8; 16], record: &MemberRecord) -> Vec<u8> {
    let mut msg = Vec::with_capacity(128);
    msg.extend_from_slice(SIG_CONTEXT);
    msg.extend_from_slice(volume);
    // Encoding into a Vec cannot fail for this struct.
    let body = postcard::to_allocvec(&record.to_wire()).unwrap_or_default();
    msg.extend_from_slice(&body);
    msg
}

/// The member list shared by the TLS verifiers, sessions and the CLI; internally locked.
///
/// Every change (merge, add, revoke; not address hints) bumps a counter observable with
/// [`Members::subscribe`]: the daemon saves the list when it changes, sessions re-send it.
pub struct Members {
    volume: [u8; 16],
    records: RwLock<BTreeMap<DeviceId, SignedMember>>,
    changes: watch::Sender<u64>,
}

impl Members {
    /// An empty list for volume `volume`.
    pub fn new(volume: [u8; 16]) -> Self {
        Members {
            volume,
            records: RwLock::new(BTreeMap::new()),
            changes: watch::Sender::new(0),
        }
    }
    /// The volume this list belongs to.
    pub fn volume(&self) -> [u8; 16] {
        self.volume
    }
    /// Loads the list saved at `path` (an empty list if the file does not exist). Records
    /// whose signature does not verify against their signer's key in the file are dropped.
    pub fn load(volume: [u8; 16], path: &Path) -> Result<Self, LocalError> {
        match std::fs::read(path) {
            Ok(b) => Self::from_bytes(volume, &b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Members::new(volume)),
            Err(e) => Err(e.into()),
        }
    }
    /// The list in the bytes of a members file (see [`Members::load`]).
    #[doc(hidden)]
    pub fn from_bytes(volume: [u8; 16], bytes: &[u8]) -> Result<Self, LocalError> {
        let m = Members::new(volume);
        let body = bytes
            .strip_prefix(FILE_MAGIC.as_slice())
            .ok_or(LocalError::BadMembersFile)?;
        let wires: Vec<SignedMemberWire> =
            postcard::from_bytes(body).map_err(|_| LocalError::BadMembersFile)?;
        let all: Vec<SignedMember> = wires
            .into_iter()
            .filter_map(SignedMember::from_wire)
            .collect();
        let keys: BTreeMap<DeviceId, [u8; 32]> = all
            .iter()
            .map(|s| (s.record.device, s.record.public_key))
            .collect();
        let mut recs = m.records.write();
        for s in all {
            let ok = keys.get(&s.signer).is_some_and(|pk| {
                well_formed(&s.record)
                    && verify_signature(pk, &signed_message(&volume, &s.record), &s.sig)
            });
            if ok {
                recs.insert(s.record.device, s);
            }
        }
        drop(recs);
        Ok(m)
    }
    /// The bytes of the members file [`Members::save`] writes.
    #[doc(hidden)]
    pub fn to_bytes(&self) -> Result<Vec<u8>, LocalError> {
        let wires: Vec<SignedMemberWire> = self
            .records
            .read()
            .values()
            .map(SignedMember::to_wire)
            .collect();
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend_from_slice(
            &postcard::to_allocvec(&wires).map_err(|_| LocalError::BadMembersFile)?,
        );
        Ok(bytes)
    }
    /// Saves the list to `path` atomically (write + fsync + rename).
    pub fn save(&self, path: &Path) -> Result<(), LocalError> {
        let bytes = self.to_bytes()?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    }
    /// Signs `record` with `key` and adds it (the first device adds itself this way; a member
    /// adds a joiner this way). Refused if `key` is not a current member, unless the list is
    /// empty and the record is `key`'s own.
    pub fn add_own(&self, key: &DeviceKey, record: MemberRecord) -> Result<(), LocalError> {
        let signed = self.sign(key, record);
        let device = signed.record.device;
        if self.merge(std::slice::from_ref(&signed)) || self.get(&device) == Some(signed) {
            Ok(())
        } else {
            Err(LocalError::BadSignature(device))
        }
    }
    fn sign(&self, key: &DeviceKey, record: MemberRecord) -> SignedMember {
        let sig = key.sign(&signed_message(&self.volume, &record));
        SignedMember {
            record,
            signer: key.id(),
            sig,
        }
    }
    fn get(&self, device: &DeviceId) -> Option<SignedMember> {
        self.records.read().get(device).cloned()
    }
    /// Merges records received from a peer; returns true if anything changed. Records are
    /// taken in any order (repeated until nothing more is accepted); revocations last.
    pub fn merge(&self, records: &[SignedMember]) -> bool {
        let mut pending: Vec<&SignedMember> = records.iter().collect();
        // Additions before revocations, so records signed by a device revoked in this same
        // batch are judged as of before its revocation.
        pending.sort_by_key(|s| s.record.revoked);
        let mut changed = false;
        {
            let mut recs = self.records.write();
            loop {
                let before = pending.len();
                pending.retain(|s| match self.judge(&recs, s) {
                    Verdict::Accept => {
                        merge_addrs(&mut recs, s);
                        recs.insert(s.record.device, (*s).clone());
                        changed = true;
                        false
                    }
                    Verdict::Ignore => {
                        merge_addrs(&mut recs, s);
                        false
                    }
                    Verdict::NotYet => true,
                });
                if pending.is_empty() || pending.len() == before {
                    break;
                }
            }
        }
        if changed {
            self.changes.send_modify(|v| *v += 1);
        }
        changed
    }
    fn judge(&self, recs: &BTreeMap<DeviceId, SignedMember>, s: &SignedMember) -> Verdict {
        let r = &s.record;
        if !well_formed(r) {
            return Verdict::Ignore;
        }
        let signer_key = match recs.get(&s.signer) {
            Some(m) if !m.record.revoked && m.record.role == Role::Device => m.record.public_key,
            Some(_) => return Verdict::Ignore,
            None if recs.is_empty()
                && s.signer == r.device
                && r.added_by == r.device
                && r.role == Role::Device =>
            {
                r.public_key
            }
            None => return Verdict::NotYet,
        };
        if !verify_signature(&signer_key, &signed_message(&self.volume, r), &s.sig) {
            return Verdict::Ignore;
        }
        match recs.get(&r.device) {
            None => Verdict::Accept,
            Some(old) if old.record.revoked => Verdict::Ignore,
            Some(old) if old.record.public_key != r.public_key => Verdict::Ignore,
            Some(_) if r.revoked => Verdict::Accept,
            Some(_) => Verdict::Ignore,
        }
    }
    /// Marks `device` revoked (signed by `key`).
    pub fn revoke(&self, key: &DeviceKey, device: &DeviceId) -> Result<(), LocalError> {
        let old = self.get(device).ok_or(LocalError::NotMember(*device))?;
        if old.record.revoked {
            return Ok(());
        }
        let mut record = old.record;
        record.revoked = true;
        let signed = self.sign(key, record);
        if self.merge(&[signed]) {
            Ok(())
        } else {
            Err(LocalError::NotMember(key.id()))
        }
    }
    /// Records where `device` was reached (not signed, not synced as authoritative).
    pub fn set_addrs(&self, device: &DeviceId, addrs: Vec<SocketAddr>) {
        if let Some(m) = self.records.write().get_mut(device) {
            m.record.addrs = addrs;
        }
    }
    /// Adds an address where `device` was seen (LAN discovery) in front of the known ones,
    /// keeping at most four: a wrong guess never pushes out an address that works.
    pub fn add_addr(&self, device: &DeviceId, addr: SocketAddr) {
        if let Some(m) = self.records.write().get_mut(device) {
            let addrs = &mut m.record.addrs;
            addrs.retain(|a| *a != addr);
            addrs.insert(0, addr);
            addrs.truncate(4);
        }
    }
    /// True if `device` is a current (not revoked) member.
    pub fn is_member(&self, device: &DeviceId) -> bool {
        self.records
            .read()
            .get(device)
            .is_some_and(|m| !m.record.revoked)
    }
    /// The public key of a current member.
    pub fn public_key(&self, device: &DeviceId) -> Option<[u8; 32]> {
        self.records
            .read()
            .get(device)
            .filter(|m| !m.record.revoked)
            .map(|m| m.record.public_key)
    }
    /// The role of a current member.
    pub fn role(&self, device: &DeviceId) -> Option<Role> {
        self.records
            .read()
            .get(device)
            .filter(|m| !m.record.revoked)
            .map(|m| m.record.role)
    }
    /// Current keepers (storage-only peers), in id order.
    pub fn keepers(&self) -> Vec<DeviceId> {
        self.current(Role::Keeper)
    }
    /// Current member devices, in id order.
    pub fn devices(&self) -> Vec<DeviceId> {
        self.current(Role::Device)
    }
    fn current(&self, role: Role) -> Vec<DeviceId> {
        self.records
            .read()
            .values()
            .filter(|m| !m.record.revoked && m.record.role == role)
            .map(|m| m.record.device)
            .collect()
    }
    /// All records, members and revoked.
    pub fn list(&self) -> Vec<MemberRecord> {
        self.records
            .read()
            .values()
            .map(|m| m.record.clone())
            .collect()
    }
    /// All signed records (what `Members` messages carry).
    pub fn signed(&self) -> Vec<SignedMember> {
        self.records.read().values().cloned().collect()
    }
    /// True if no record is held (a volume whose first device has not added itself yet).
    pub fn is_empty(&self) -> bool {
        self.records.read().is_empty()
    }
    /// A receiver whose value changes whenever the signed list changes (not on address
    /// hints). The daemon awaits it to save the list (e.g. after a device joined).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

enum Verdict {
    Accept,
    Ignore,
    /// The signer is not known yet; retried after other records of the batch.
    NotYet,
}

/// A record's id matches its key.
fn well_formed(r: &MemberRecord) -> bool {
    DeviceId::of_public_key(&r.public_key) == r.device
}

/// Adopts an address hint for a device that has none.
fn merge_addrs(recs: &mut BTreeMap<DeviceId, SignedMember>, s: &SignedMember) {
    if let Some(m) = recs.get_mut(&s.record.device)
        && m.record.addrs.is_empty()
    {
        m.record.addrs.clone_from(&s.record.addrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOL: [u8; 16] = [7; 16];

    fn record(key: &DeviceKey, added_by: DeviceId, name: &str) -> MemberRecord {
        MemberRecord {
            device: key.id(),
            public_key: key.public_key(),
            name: name.into(),
            added_by,
            revoked: false,
            role: Role::Device,
            addrs: vec![],
        }
    }

    #[test]
    fn keepers_are_listed_and_cannot_sign() {
        let a = DeviceKey::generate().unwrap();
        let k = DeviceKey::generate().unwrap();
        let c = DeviceKey::generate().unwrap();
        let m = Members::new(VOL);
        m.add_own(&a, record(&a, a.id(), "a")).unwrap();
        let mut kr = record(&k, a.id(), "k");
        kr.role = Role::Keeper;
        m.add_own(&a, kr).unwrap();
        assert_eq!(m.keepers(), vec![k.id()]);
        assert_eq!(m.devices(), vec![a.id()]);
        assert_eq!(m.role(&k.id()), Some(Role::Keeper));
        // A keeper adds nobody and revokes nobody.
        assert!(m.add_own(&k, record(&c, k.id(), "c")).is_err());
        assert!(m.revoke(&k, &a.id()).is_err());
        assert!(m.is_member(&a.id()));
        // The role is signed: flipping it breaks the signature.
        let mut forged = m
            .signed()
            .into_iter()
            .find(|s| s.record.device == k.id())
            .unwrap();
        forged.record.role = Role::Device;
        let other = Members::new(VOL);
        other.merge(&m.signed()[..0]);
        let mut recs: Vec<SignedMember> = m
            .signed()
            .into_iter()
            .filter(|s| s.record.device != k.id())
            .collect();
        recs.push(forged);
        other.merge(&recs);
        assert!(!other.is_member(&k.id()));
        // A keeper cannot found a volume.
        let mut kself = record(&k, k.id(), "k");
        kself.role = Role::Keeper;
        assert!(Members::new(VOL).add_own(&k, kself).is_err());
    }

    #[test]
    fn first_device_then_joiner() {
        let a = DeviceKey::generate().unwrap();
        let b = DeviceKey::generate().unwrap();
        let m = Members::new(VOL);
        // b cannot add itself to a non-empty list, nor a to an empty one on b's signature.
        assert!(m.add_own(&b, record(&a, b.id(), "a")).is_err());
        m.add_own(&a, record(&a, a.id(), "a")).unwrap();
        assert!(m.is_member(&a.id()));
        assert!(m.add_own(&b, record(&b, b.id(), "b")).is_err());
        m.add_own(&a, record(&b, a.id(), "b")).unwrap();
        assert!(m.is_member(&b.id()));

        // Another device learns both, in any order.
        let other = Members::new(VOL);
        let mut recs = m.signed();
        recs.reverse();
        assert!(other.merge(&recs));
        assert!(other.is_member(&a.id()) && other.is_member(&b.id()));
        assert!(!other.merge(&recs));
    }

    #[test]
    fn unsigned_or_foreign_signer_ignored() {
        let a = DeviceKey::generate().unwrap();
        let c = DeviceKey::generate().unwrap();
        let x = DeviceKey::generate().unwrap();
        let m = Members::new(VOL);
        m.add_own(&a, record(&a, a.id(), "a")).unwrap();
        // Signed by a non-member.
        let foreign = SignedMember {
            record: record(&c, x.id(), "c"),
            signer: x.id(),
            sig: x.sign(&signed_message(&VOL, &record(&c, x.id(), "c"))),
        };
        assert!(!m.merge(&[foreign]));
        // Claims a member signed it, signature garbage.
        let forged = SignedMember {
            record: record(&c, a.id(), "c"),
            signer: a.id(),
            sig: [0; 64],
        };
        assert!(!m.merge(&[forged]));
        // Self-signed when the list is not empty.
        let selfsigned = SignedMember {
            record: record(&c, c.id(), "c"),
            signer: c.id(),
            sig: c.sign(&signed_message(&VOL, &record(&c, c.id(), "c"))),
        };
        assert!(!m.merge(&[selfsigned]));
        // Signed for another volume.
        let other_vol = SignedMember {
            record: record(&c, a.id(), "c"),
            signer: a.id(),
            sig: a.sign(&signed_message(&[9; 16], &record(&c, a.id(), "c"))),
        };
        assert!(!m.merge(&[other_vol]));
        // Id not matching the key.
        let mut bad = record(&c, a.id(), "c");
        bad.device = x.id();
        let mismatched = SignedMember {
            sig: a.sign(&signed_message(&VOL, &bad)),
            record: bad,
            signer: a.id(),
        };
        assert!(!m.merge(&[mismatched]));
        assert!(!m.is_member(&c.id()) && !m.is_member(&x.id()));
        assert_eq!(m.list().len(), 1);
    }

    #[test]
    fn revocation_is_final() {
        let a = DeviceKey::generate().unwrap();
        let b = DeviceKey::generate().unwrap();
        let m = Members::new(VOL);
        m.add_own(&a, record(&a, a.id(), "a")).unwrap();
        m.add_own(&a, record(&b, a.id(), "b")).unwrap();
        let before = m.signed();
        m.revoke(&a, &b.id()).unwrap();
        assert!(!m.is_member(&b.id()));
        assert!(m.public_key(&b.id()).is_none());
        // Re-adding, or merging the old record, does not bring it back.
        assert!(!m.merge(&before));
        assert!(m.add_own(&a, record(&b, a.id(), "b")).is_err());
        assert!(!m.is_member(&b.id()));
        // A revoked device's signatures are no longer accepted.
        let c = DeviceKey::generate().unwrap();
        assert!(m.add_own(&b, record(&c, b.id(), "c")).is_err());
        // The revocation propagates.
        let other = Members::new(VOL);
        other.merge(&before);
        assert!(other.is_member(&b.id()));
        assert!(other.merge(&m.signed()));
        assert!(!other.is_member(&b.id()));
    }

    #[test]
    fn save_load_round_trip_and_notifies() {
        let a = DeviceKey::generate().unwrap();
        let b = DeviceKey::generate().unwrap();
        let m = Members::new(VOL);
        let rx = m.subscribe();
        m.add_own(&a, record(&a, a.id(), "a")).unwrap();
        m.add_own(&a, record(&b, a.id(), "b")).unwrap();
        m.set_addrs(&b.id(), vec!["127.0.0.1:9".parse().unwrap()]);
        assert!(rx.has_changed().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("members");
        assert!(Members::load(VOL, &p).unwrap().is_empty());
        m.save(&p).unwrap();
        let l = Members::load(VOL, &p).unwrap();
        assert_eq!(l.signed(), m.signed());
        std::fs::write(&p, b"nonsense").unwrap();
        assert!(matches!(
            Members::load(VOL, &p),
            Err(LocalError::BadMembersFile)
        ));
    }
}

//! Device identity (crypto.md, "Device identity"): an Ed25519 key pair and its DeviceId.
use data_encoding::BASE32_NOPAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// BLAKE3 of a device's Ed25519 public key. `Display` is the grouped base32 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

/// Characters per group in the display form.
const GROUP: usize = 7;

impl DeviceId {
    /// The id of a public key.
    pub fn of_public_key(pk: &[u8; 32]) -> Self {
        DeviceId(*blake3::hash(pk).as_bytes())
    }
    /// First 8 bytes as u64 LE: the key of this device in version vectors.
    pub fn short(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = BASE32_NOPAD.encode(&self.0);
        for (i, group) in s.as_bytes().chunks(GROUP).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            // base32 output is ASCII.
            f.write_str(std::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl std::str::FromStr for DeviceId {
    type Err = KeyError;
    /// Accepts the display form, case-insensitive, dashes optional.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let clean: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = BASE32_NOPAD
            .decode(clean.as_bytes())
            .map_err(|_| KeyError::BadDeviceId)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadDeviceId)?;
        Ok(DeviceId(arr))
    }
}

/// The device key file or a device id is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("device key file: {0}")]
    Io(#[from] std::io::Error),
    /// The device key file is not a PKCS#8 v2 Ed25519 document.
    #[error("device key file is not a valid Ed25519 PKCS#8 document")]
    BadKey,
    /// A device id that is not 52 base32 characters (32 bytes).
    #[error("malformed device id")]
    BadDeviceId,
}

/// A device's Ed25519 key pair.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
    /// The PKCS#8 v2 document (the certificate's private key).
    pkcs8: zeroize::Zeroizing<Vec<u8>>,
}

impl DeviceKey {
    /// A fresh key pair from OS randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::BadKey)?;
        Self::from_pkcs8(doc.as_ref())
    }
    /// A key from a PKCS#8 v2 document.
    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(doc).map_err(|_| KeyError::BadKey)?;
        Ok(DeviceKey {
            pair,
            pkcs8: zeroize::Zeroizing::new(doc.to_vec()),
        })
    }
    /// Loads `path` (PKCS#8), or creates it (mode 0600) with a fresh key. Creation is atomic
    /// (temporary file, fsync, hard link that never replaces an existing file); parent
    /// directories are not created.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read(path) {
            Ok(doc) => return Self::from_pkcs8(&doc),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let key = Self::generate()?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&key.pkcs8)?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                sync_parent(path);
                Ok(key)
            }
            // Someone else created it first: theirs wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_pkcs8(&std::fs::read(path)?)
            }
            Err(e) => Err(e.into()),
        }
    }
    /// This device's id.
    pub fn id(&self) -> DeviceId {
        DeviceId::of_public_key(&self.public_key())
    }
    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        pk
    }
    /// Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(msg).as_ref());
        sig
    }
    /// The PKCS#8 document (for the TLS certificate).
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

/// Fsyncs the directory holding `path` so a rename or link into it is durable (best effort).
pub(crate) fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Checks an Ed25519 signature.
pub fn verify_signature(public_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(msg, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let key = DeviceKey::generate().unwrap();
        let id = key.id();
        let s = id.to_string();
        assert_eq!(s.len(), 52 + 7);
        assert_eq!(s.split('-').count(), 8);
        assert!(s.split('-').take(7).all(|g| g.len() == 7));
        assert_eq!(s, s.to_uppercase());
        assert_eq!(s.parse::<DeviceId>().unwrap(), id);
        assert_eq!(s.to_lowercase().parse::<DeviceId>().unwrap(), id);
        assert_eq!(s.replace('-', "").parse::<DeviceId>().unwrap(), id);
        assert!("ABC".parse::<DeviceId>().is_err());
        assert!(s[..50].parse::<DeviceId>().is_err());
        assert!("1".repeat(52).parse::<DeviceId>().is_err());
    }

    #[test]
    fn sign_verify() {
        let key = DeviceKey::generate().unwrap();
        let sig = key.sign(b"msg");
        assert!(verify_signature(&key.public_key(), b"msg", &sig));
        assert!(!verify_signature(&key.public_key(), b"msh", &sig));
    }

    #[test]
    fn load_or_create_persists_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("device.key");
        let a = DeviceKey::load_or_create(&p).unwrap();
        let b = DeviceKey::load_or_create(&p).unwrap();
        assert_eq!(a.id(), b.id());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&p, b"garbage").unwrap();
        assert!(matches!(
            DeviceKey::load_or_create(&p),
            Err(KeyError::BadKey)
        ));
        assert!(DeviceKey::load_or_create(&dir.path().join("no/such/dir/key")).is_err());
    }
}

//! Device identity (crypto.md, "Device identity"): an Ed25519 key pair and its DeviceId.
use crate::NetError;
use std::fmt;
use std::path::Path;

/// BLAKE3 of a device's Ed25519 public key. `Display` is the grouped base32 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

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
        write!(f, "{}", hex_placeholder(&self.0))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl std::str::FromStr for DeviceId {
    type Err = NetError;
    fn from_str(_s: &str) -> Result<Self, NetError> {
        Err(NetError::Unimplemented)
    }
}

fn hex_placeholder(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A device's Ed25519 key pair.
pub struct DeviceKey {
    _private: (),
}

impl DeviceKey {
    /// A fresh key pair from OS randomness.
    pub fn generate() -> Result<Self, NetError> {
        Err(NetError::Unimplemented)
    }
    /// Loads `path` (PKCS#8), or creates it (mode 0600) with a fresh key.
    pub fn load_or_create(_path: &Path) -> Result<Self, NetError> {
        Err(NetError::Unimplemented)
    }
    /// This device's id.
    pub fn id(&self) -> DeviceId {
        DeviceId([0; 32])
    }
    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        [0; 32]
    }
    /// Ed25519 signature of `msg`.
    pub fn sign(&self, _msg: &[u8]) -> [u8; 64] {
        [0; 64]
    }
}

/// Checks an Ed25519 signature.
pub fn verify_signature(_public_key: &[u8; 32], _msg: &[u8], _sig: &[u8; 64]) -> bool {
    false
}

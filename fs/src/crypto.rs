//! The constructions of `docs/crypto.md`, and nothing else: key derivation, convergent block
//! encryption, sealed metadata records, name tags and the sealed volume secret.
use crate::FsError;
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use blockstore::BlockId;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const CTX_CONV: &str = "fossa 2026-11-23 chunk convergence key v1";
const CTX_META: &str = "fossa 2026-11-23 metadata record key v1";
const CTX_NAME: &str = "fossa 2026-11-23 name tag key v1";
/// Crypto version byte that starts every sealed block and record.
pub const CRYPTO_VERSION: u8 = 0x01;
const ZERO_NONCE: [u8; 12] = [0; 12];
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;

/// The 32-byte volume secret (VS). Zeroed on drop, never logged.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VolumeSecret(pub [u8; 32]);

impl VolumeSecret {
    /// A fresh secret from the OS RNG.
    pub fn generate() -> Result<Self, FsError> {
        Ok(VolumeSecret(random_array()?))
    }
}

/// Keys derived from the volume secret (docs/crypto.md, "Key hierarchy").
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct VolumeKeys {
    conv: [u8; 32],
    meta: [u8; 32],
    name: [u8; 32],
}

/// A reference to an encrypted block: its id in the store and its decryption key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockRef {
    /// BLAKE3 of the stored (encrypted) bytes.
    pub id: BlockId,
    /// The convergent block key.
    pub key: [u8; 32],
}

/// Encoded size of a [`BlockRef`].
pub const BLOCK_REF_LEN: usize = 64;

impl BlockRef {
    /// Appends the 64-byte encoding (id ‖ key).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.key);
    }

    /// Decodes 64 bytes written by [`BlockRef::encode`].
    pub fn decode(b: &[u8]) -> Result<Self, FsError> {
        let b: &[u8; BLOCK_REF_LEN] = b
            .get(..BLOCK_REF_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(FsError::BadRecord("block reference"))?;
        let mut id = [0u8; 32];
        let mut key = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        key.copy_from_slice(&b[32..]);
        Ok(BlockRef {
            id: BlockId(id),
            key,
        })
    }
}

impl VolumeKeys {
    /// Derives the subkeys with BLAKE3's KDF mode.
    pub fn derive(vs: &VolumeSecret) -> Self {
        VolumeKeys {
            conv: blake3::derive_key(CTX_CONV, &vs.0),
            meta: blake3::derive_key(CTX_META, &vs.0),
            name: blake3::derive_key(CTX_NAME, &vs.0),
        }
    }

    /// Convergently encrypts `plaintext` (block type byte first). Returns the block key and
    /// the bytes to store; the store computes the id.
    pub fn seal_block(&self, plaintext: &[u8]) -> Result<([u8; 32], Vec<u8>), FsError> {
        let h = blake3::hash(plaintext);
        let key = *blake3::keyed_hash(&self.conv, h.as_bytes()).as_bytes();
        let mut out = Vec::with_capacity(1 + plaintext.len() + TAG_LEN);
        out.push(CRYPTO_VERSION);
        out.extend_from_slice(plaintext);
        let tag = cipher(&key)
            .encrypt_in_place_detached(
                Nonce::from_slice(&ZERO_NONCE),
                &[CRYPTO_VERSION],
                &mut out[1..],
            )
            .map_err(|_| FsError::Crypto("block encryption failed"))?;
        out.extend_from_slice(&tag);
        Ok((key, out))
    }

    /// Decrypts a block fetched (and id-verified) from the store.
    pub fn open_block(&self, r: &BlockRef, stored: &[u8]) -> Result<Vec<u8>, FsError> {
        let bad = || FsError::BadBlock(r.id);
        if stored.len() < 1 + TAG_LEN || stored[0] != CRYPTO_VERSION {
            return Err(bad());
        }
        let (body, tag) = stored[1..].split_at(stored.len() - 1 - TAG_LEN);
        let mut p = body.to_vec();
        cipher(&r.key)
            .decrypt_in_place_detached(
                Nonce::from_slice(&ZERO_NONCE),
                &[CRYPTO_VERSION],
                &mut p,
                aes_gcm::Tag::from_slice(tag),
            )
            .map_err(|_| bad())?;
        let h = blake3::hash(&p);
        if blake3::keyed_hash(&self.conv, h.as_bytes()).as_bytes() != &r.key {
            return Err(bad());
        }
        Ok(p)
    }

    /// Seals a metadata record bound to its table and database key.
    pub fn seal_record(
        &self,
        table: u8,
        db_key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, FsError> {
        let salt: [u8; SALT_LEN] = random_array()?;
        let k = Zeroizing::new(*blake3::keyed_hash(&self.meta, &salt).as_bytes());
        let aad = record_aad(table, db_key);
        let ct = cipher(&k)
            .encrypt(
                Nonce::from_slice(&ZERO_NONCE),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| FsError::Crypto("record encryption failed"))?;
        let mut out = Vec::with_capacity(1 + SALT_LEN + ct.len());
        out.push(CRYPTO_VERSION);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a record sealed by [`VolumeKeys::seal_record`] under the same table and key.
    pub fn open_record(&self, table: u8, db_key: &[u8], record: &[u8]) -> Result<Vec<u8>, FsError> {
        if record.len() < 1 + SALT_LEN + TAG_LEN || record[0] != CRYPTO_VERSION {
            return Err(FsError::BadRecord("sealed record header"));
        }
        let salt = &record[1..1 + SALT_LEN];
        let k = Zeroizing::new(*blake3::keyed_hash(&self.meta, salt).as_bytes());
        let aad = record_aad(table, db_key);
        cipher(&k)
            .decrypt(
                Nonce::from_slice(&ZERO_NONCE),
                Payload {
                    msg: &record[1 + SALT_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| FsError::BadRecord("sealed record does not authenticate"))
    }

    /// The tag under which a name is indexed in directory `ino` (or xattr of inode `ino`).
    pub fn name_tag(&self, ino: u64, name: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.name);
        h.update(&ino.to_le_bytes());
        h.update(name);
        *h.finalize().as_bytes()
    }
}

fn record_aad(table: u8, db_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + db_key.len());
    aad.push(table);
    aad.extend_from_slice(db_key);
    aad
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Random bytes from the OS.
pub fn random_array<const N: usize>() -> Result<[u8; N], FsError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| FsError::Crypto("OS random number generator failed"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> VolumeKeys {
        VolumeKeys::derive(&VolumeSecret([7; 32]))
    }

    #[test]
    fn block_round_trip_and_convergence() {
        let k = keys();
        let (key1, b1) = k.seal_block(b"\x00hello world").unwrap();
        let (key2, b2) = k.seal_block(b"\x00hello world").unwrap();
        assert_eq!((key1, &b1), (key2, &b2));
        let r = BlockRef {
            id: BlockId::of(&b1),
            key: key1,
        };
        assert_eq!(k.open_block(&r, &b1).unwrap(), b"\x00hello world");
        assert!(!b1.windows(5).any(|w| w == b"hello"));
        let other = VolumeKeys::derive(&VolumeSecret([8; 32]));
        assert_ne!(other.seal_block(b"\x00hello world").unwrap().1, b1);
    }

    #[test]
    fn tampered_block_rejected() {
        let k = keys();
        let (key, mut b) = k.seal_block(b"\x00data").unwrap();
        let r = BlockRef {
            id: BlockId::of(&b),
            key,
        };
        b[3] ^= 1;
        assert!(k.open_block(&r, &b).is_err());
    }

    #[test]
    fn record_bound_to_key() {
        let k = keys();
        let rec = k.seal_record(1, b"key1", b"secret").unwrap();
        assert_eq!(k.open_record(1, b"key1", &rec).unwrap(), b"secret");
        assert!(k.open_record(1, b"key2", &rec).is_err());
        assert!(k.open_record(2, b"key1", &rec).is_err());
        assert_ne!(rec, k.seal_record(1, b"key1", b"secret").unwrap());
    }

    #[test]
    fn name_tags_depend_on_dir() {
        let k = keys();
        assert_eq!(k.name_tag(1, b"a"), k.name_tag(1, b"a"));
        assert_ne!(k.name_tag(1, b"a"), k.name_tag(2, b"a"));
    }
}

//! The framing of sealed bytes (docs/crypto.md): where the version byte, the salt, the
//! AES-256-GCM ciphertext and its tag sit, and the block reference that names a sealed block.
//! Pure layout; the constructions themselves are in `crypto.rs`.
//!
//! ```text
//! sealed block:            version ‖ ciphertext ‖ tag
//! sealed record / update:  version ‖ salt ‖ ciphertext ‖ tag
//! block reference:         id ‖ key
//! ```
use crate::FsError;
use blockstore::BlockId;

/// The version byte every sealed block, record and update starts with.
pub const CRYPTO_VERSION: u8 = 0x01;
/// Offset of the version byte.
pub(crate) const VERSION_AT: usize = 0;
/// Offset of a sealed block's ciphertext.
pub(crate) const BLOCK_BODY_AT: usize = VERSION_AT + 1;
/// Offset and length of a sealed record's salt.
pub(crate) const SALT_AT: usize = VERSION_AT + 1;
pub(crate) const SALT_LEN: usize = 16;
/// Offset of a sealed record's ciphertext.
pub(crate) const SALTED_BODY_AT: usize = SALT_AT + SALT_LEN;
/// Length of the GCM tag after the ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Offsets in an encoded [`BlockRef`].
const REF_ID_AT: usize = 0;
const REF_KEY_AT: usize = 32;

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
        id.copy_from_slice(&b[REF_ID_AT..REF_KEY_AT]);
        key.copy_from_slice(&b[REF_KEY_AT..]);
        Ok(BlockRef {
            id: BlockId(id),
            key,
        })
    }
}

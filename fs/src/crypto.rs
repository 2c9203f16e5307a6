//! The constructions of `docs/crypto.md`, and nothing else: key derivation, convergent block
//! encryption, sealed metadata records, name tags and the sealed volume secret.
use crate::FsError;
use crate::format::sealed::{
    BLOCK_BODY_AT, SALT_AT, SALT_LEN, SALTED_BODY_AT, TAG_LEN, VERSION_AT,
};
pub use crate::format::sealed::{BLOCK_REF_LEN, BlockRef, CRYPTO_VERSION};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const CTX_CONV: &str = "fossa 2026-11-23 chunk convergence key v1";
const CTX_META: &str = "fossa 2026-11-23 metadata record key v1";
const CTX_NAME: &str = "fossa 2026-11-23 name tag key v1";
const CTX_SYNC: &str = "fossa 2026-11-23 sync update key v1";
/// AAD of a sealed index update (docs/crypto.md, "Index updates").
const UPDATE_AAD: &[u8] = b"fossa update v1";
const ZERO_NONCE: [u8; 12] = [0; 12];

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
    sync: [u8; 32],
}

impl VolumeKeys {
    /// Derives the subkeys with BLAKE3's KDF mode.
    pub fn derive(vs: &VolumeSecret) -> Self {
        VolumeKeys {
            conv: blake3::derive_key(CTX_CONV, &vs.0),
            meta: blake3::derive_key(CTX_META, &vs.0),
            name: blake3::derive_key(CTX_NAME, &vs.0),
            sync: blake3::derive_key(CTX_SYNC, &vs.0),
        }
    }

    /// Convergently encrypts `plaintext` (block type byte first). Returns the block key and
    /// the bytes to store; the store computes the id.
    pub fn seal_block(&self, plaintext: &[u8]) -> Result<([u8; 32], Vec<u8>), FsError> {
        match plaintext.split_first() {
            Some((kind, payload)) => self.seal_typed_block(*kind, payload),
            None => self.seal_parts(&[], &[]),
        }
    }

    /// [`Self::seal_block`] of `kind ‖ payload`, without first copying them into one buffer.
    pub fn seal_typed_block(
        &self,
        kind: u8,
        payload: &[u8],
    ) -> Result<([u8; 32], Vec<u8>), FsError> {
        self.seal_parts(&[kind], payload)
    }

    /// Seals the plaintext `head ‖ body`.
    fn seal_parts(&self, head: &[u8], body: &[u8]) -> Result<([u8; 32], Vec<u8>), FsError> {
        // One allocation: version ‖ plaintext (encrypted in place) ‖ tag. The plaintext is
        // hashed there, in one piece: BLAKE3 hashes whole 1 KiB chunks in parallel lanes, so
        // a split input would push a chunk through the slower serial path.
        let mut out = Vec::with_capacity(1 + head.len() + body.len() + TAG_LEN);
        out.push(CRYPTO_VERSION);
        out.extend_from_slice(head);
        out.extend_from_slice(body);
        let h = blake3::hash(&out[BLOCK_BODY_AT..]);
        let key = *blake3::keyed_hash(&self.conv, h.as_bytes()).as_bytes();
        let tag = aead_key(&key)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(ZERO_NONCE),
                Aad::from(&[CRYPTO_VERSION]),
                &mut out[BLOCK_BODY_AT..],
            )
            .map_err(|_| FsError::Crypto("block encryption failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok((key, out))
    }

    /// Decrypts a block fetched (and id-verified) from the store.
    pub fn open_block(&self, r: &BlockRef, stored: &[u8]) -> Result<Vec<u8>, FsError> {
        self.open_block_owned(r, stored.to_vec())
    }

    /// [`Self::open_block`] on a buffer it may reuse: decrypts in place, shifting the
    /// plaintext over the version byte in the same pass (no second buffer, no copy).
    pub fn open_block_owned(&self, r: &BlockRef, mut stored: Vec<u8>) -> Result<Vec<u8>, FsError> {
        let bad = || FsError::BadBlock(r.id);
        if stored.len() < BLOCK_BODY_AT + TAG_LEN || stored[VERSION_AT] != CRYPTO_VERSION {
            return Err(bad());
        }
        // No re-derivation of the key from the plaintext: the id (checked by the store) pins
        // the ciphertext and the GCM tag pins the plaintext to the key (crypto.md).
        let n = aead_key(&r.key)
            .map_err(|_| bad())?
            .open_within(
                Nonce::assume_unique_for_key(ZERO_NONCE),
                Aad::from(&[CRYPTO_VERSION]),
                &mut stored,
                BLOCK_BODY_AT..,
            )
            .map_err(|_| bad())?
            .len();
        stored.truncate(n);
        Ok(stored)
    }

    /// Seals a metadata record bound to its table and database key.
    pub fn seal_record(
        &self,
        table: u8,
        db_key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, FsError> {
        let salt: [u8; SALT_LEN] = random_array()?;
        self.seal_record_salted(table, db_key, plaintext, &salt)
    }

    /// [`VolumeKeys::seal_record`] with the salt given (the known-answer tests fix it).
    fn seal_record_salted(
        &self,
        table: u8,
        db_key: &[u8],
        plaintext: &[u8],
        salt: &[u8; SALT_LEN],
    ) -> Result<Vec<u8>, FsError> {
        seal_salted(&self.meta, &record_aad(table, db_key), plaintext, salt)
    }

    /// Opens a record sealed by [`VolumeKeys::seal_record`] under the same table and key.
    pub fn open_record(&self, table: u8, db_key: &[u8], record: &[u8]) -> Result<Vec<u8>, FsError> {
        open_salted(&self.meta, &record_aad(table, db_key), record)
    }

    /// Seals an index update for the wire under K_sync (docs/crypto.md, "Index updates").
    pub fn seal_update(&self, entry: &[u8]) -> Result<Vec<u8>, FsError> {
        let salt: [u8; SALT_LEN] = random_array()?;
        seal_salted(&self.sync, UPDATE_AAD, entry, &salt)
    }

    /// Opens an update sealed by [`VolumeKeys::seal_update`].
    pub fn open_update(&self, sealed: &[u8]) -> Result<Vec<u8>, FsError> {
        open_salted(&self.sync, UPDATE_AAD, sealed)
    }

    /// The tag under which a name is indexed in directory `ino` (or xattr of inode `ino`).
    pub fn name_tag(&self, ino: u64, name: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.name);
        h.update(&ino.to_le_bytes());
        h.update(name);
        *h.finalize().as_bytes()
    }
}

/// `0x01 ‖ salt ‖ AES-256-GCM(keyed_hash(base, salt), zero nonce, aad, plaintext)`.
fn seal_salted(
    base: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, FsError> {
    let k = Zeroizing::new(*blake3::keyed_hash(base, salt).as_bytes());
    // One allocation: version ‖ salt ‖ plaintext (encrypted in place) ‖ tag.
    let mut out = Vec::with_capacity(SALTED_BODY_AT + plaintext.len() + TAG_LEN);
    out.push(CRYPTO_VERSION);
    out.extend_from_slice(salt);
    out.extend_from_slice(plaintext);
    let tag = aead_key(&k)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(ZERO_NONCE),
            Aad::from(aad),
            &mut out[SALTED_BODY_AT..],
        )
        .map_err(|_| FsError::Crypto("record encryption failed"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what [`seal_salted`] made under the same base key and AAD.
fn open_salted(base: &[u8; 32], aad: &[u8], record: &[u8]) -> Result<Vec<u8>, FsError> {
    if record.len() < SALTED_BODY_AT + TAG_LEN || record[VERSION_AT] != CRYPTO_VERSION {
        return Err(FsError::BadRecord("sealed record header"));
    }
    let salt = &record[SALT_AT..SALTED_BODY_AT];
    let k = Zeroizing::new(*blake3::keyed_hash(base, salt).as_bytes());
    let bad = || FsError::BadRecord("sealed record does not authenticate");
    let mut p = record[SALTED_BODY_AT..].to_vec();
    let n = aead_key(&k)
        .map_err(|_| bad())?
        .open_in_place(
            Nonce::assume_unique_for_key(ZERO_NONCE),
            Aad::from(aad),
            &mut p,
        )
        .map_err(|_| bad())?
        .len();
    p.truncate(n);
    Ok(p)
}

fn record_aad(table: u8, db_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + db_key.len());
    aad.push(table);
    aad.extend_from_slice(db_key);
    aad
}

/// An AES-256-GCM key (ring, BoringSSL's implementation) for a 32-byte key.
pub(crate) fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, FsError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| FsError::Crypto("AES-256-GCM key setup failed"))
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
    use blockstore::BlockId;

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
    fn typed_seal_is_seal_of_the_concatenation() {
        let k = keys();
        for n in [0usize, 1, 1023, 1024, 1025, 70_000] {
            let payload = pattern(n);
            let mut whole = vec![BLOCK_DATA_TYPE];
            whole.extend_from_slice(&payload);
            let a = k.seal_block(&whole).unwrap();
            let b = k.seal_typed_block(BLOCK_DATA_TYPE, &payload).unwrap();
            assert_eq!(a.0, b.0, "key, {n} bytes");
            assert_eq!(a.1, b.1, "stored bytes, {n} bytes");
            let plain = blake3::hash(&whole);
            assert_eq!(
                a.0,
                *blake3::keyed_hash(&k.conv, plain.as_bytes()).as_bytes()
            );
        }
    }

    const BLOCK_DATA_TYPE: u8 = 0;

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

    // Known answers computed by the pre-`ring` implementation (RustCrypto `aes-gcm` 0.10.3):
    // volumes written before the switch must keep opening, byte for byte.
    const KAT_BLOCK_PT: &[u8] = b"\x00fossa known-answer block plaintext";
    const KAT_BLOCK_KEY: &str = "df3961e607fc8897120b4ef29d2a57762ff521791dd5d3f8866b9cd2dff9f345";
    const KAT_BLOCK: &str = "017796e72936242dbbd9992a4c1b131e5716b179bbe418276b2ae03c0fc287356292da3fddba46f00d2c17f7884c9e8587fd60d9";
    const KAT_RECORD_PT: &[u8] = b"fossa known-answer record";
    const KAT_RECORD: &str = "018cca7ce6cd966d8380aa92ce477d57f9711dbf37c927c4edde5f55a2e8a03886c4855e74d4fd7ad6fb1755906c9491aff32c93c0b238ca981c";

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn block_known_answer() {
        let k = keys();
        let (key, b) = k.seal_block(KAT_BLOCK_PT).unwrap();
        assert_eq!(hex::encode(key), KAT_BLOCK_KEY);
        assert_eq!(hex::encode(&b), KAT_BLOCK);
        let r = BlockRef {
            id: BlockId::of(&b),
            key,
        };
        assert_eq!(k.open_block(&r, &unhex(KAT_BLOCK)).unwrap(), KAT_BLOCK_PT);
    }

    #[test]
    fn record_known_answer() {
        let k = keys();
        let rec = unhex(KAT_RECORD);
        assert_eq!(
            k.open_record(3, b"kat-db-key", &rec).unwrap(),
            KAT_RECORD_PT
        );
        let salt: [u8; SALT_LEN] = rec[1..1 + SALT_LEN].try_into().unwrap();
        let again = k
            .seal_record_salted(3, b"kat-db-key", KAT_RECORD_PT, &salt)
            .unwrap();
        assert_eq!(again, rec);
    }

    /// The RustCrypto `aes-gcm` crate (dev-dependency only), as an independent reference.
    fn reference(key: &[u8; 32]) -> aes_gcm::Aes256Gcm {
        use aes_gcm::KeyInit;
        aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(key))
    }

    fn ref_encrypt(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, Payload};
        reference(key)
            .encrypt(
                aes_gcm::Nonce::from_slice(&ZERO_NONCE),
                Payload { msg, aad },
            )
            .unwrap()
    }

    fn ref_decrypt(key: &[u8; 32], aad: &[u8], ct: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, Payload};
        reference(key)
            .decrypt(
                aes_gcm::Nonce::from_slice(&ZERO_NONCE),
                Payload { msg: ct, aad },
            )
            .unwrap()
    }

    const SIZES: &[usize] = &[
        1,
        2,
        15,
        16,
        17,
        63,
        64,
        65,
        255,
        256,
        4097,
        65536,
        65536 + 33,
    ];

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + n) as u8).collect()
    }

    #[test]
    fn blocks_cross_check_with_aes_gcm_crate() {
        let k = keys();
        for &n in SIZES {
            let p = pattern(n);
            // ring seals, the reference opens.
            let (key, b) = k.seal_block(&p).unwrap();
            assert_eq!(b[0], CRYPTO_VERSION);
            assert_eq!(b.len(), 1 + n + TAG_LEN);
            assert_eq!(ref_decrypt(&key, &[CRYPTO_VERSION], &b[1..]), p, "size {n}");
            // The reference seals (as the old code did), ring opens; both agree byte for byte.
            let mut old = vec![CRYPTO_VERSION];
            old.extend_from_slice(&ref_encrypt(&key, &[CRYPTO_VERSION], &p));
            assert_eq!(old, b, "size {n}");
            let r = BlockRef {
                id: BlockId::of(&old),
                key,
            };
            assert_eq!(k.open_block(&r, &old).unwrap(), p, "size {n}");
        }
    }

    #[test]
    fn records_cross_check_with_aes_gcm_crate() {
        let k = keys();
        for &n in [0].iter().chain(SIZES) {
            let p = pattern(n);
            let db_key = pattern(n % 40 + 1);
            let aad = record_aad(7, &db_key);
            // ring seals, the reference opens.
            let rec = k.seal_record(7, &db_key, &p).unwrap();
            let salt: [u8; SALT_LEN] = rec[1..1 + SALT_LEN].try_into().unwrap();
            let kr = *blake3::keyed_hash(&k.meta, &salt).as_bytes();
            assert_eq!(ref_decrypt(&kr, &aad, &rec[1 + SALT_LEN..]), p, "size {n}");
            // The reference seals under the same salt, ring opens; both agree byte for byte.
            let mut old = vec![CRYPTO_VERSION];
            old.extend_from_slice(&salt);
            old.extend_from_slice(&ref_encrypt(&kr, &aad, &p));
            assert_eq!(old, rec, "size {n}");
            assert_eq!(k.open_record(7, &db_key, &old).unwrap(), p, "size {n}");
        }
    }

    #[test]
    fn short_or_bad_inputs_rejected() {
        let k = keys();
        let (key, b) = k.seal_block(b"\x00x").unwrap();
        let r = BlockRef {
            id: BlockId::of(&b),
            key,
        };
        assert!(k.open_block(&r, &b[..TAG_LEN]).is_err());
        assert!(k.open_block(&r, &b[..b.len() - 1]).is_err());
        let rec = k.seal_record(1, b"k", b"").unwrap();
        assert_eq!(k.open_record(1, b"k", &rec).unwrap(), b"");
        assert!(k.open_record(1, b"k", &rec[..rec.len() - 1]).is_err());
    }
}

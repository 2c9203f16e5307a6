//! The sealed volume secret (`volume.key`): docs/crypto.md "Sealing the volume secret",
//! byte layout in docs/formats/volume-key.md.
use crate::FsError;
use crate::crypto::{VolumeSecret, aead_key, random_array};
use ring::aead::{Aad, Nonce};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"FOSSAKEY";
const VERSION: u32 = 1;
const AAD_PREFIX: &[u8] = b"fossa volume key v1";
/// Encoded length of a sealed key file.
pub const SEALED_LEN: usize = 8 + 4 + 1 + 16 + 16 + 12 + 12 + 48;
const KIND_PASSPHRASE: u8 = 1;
const KIND_KEYFILE: u8 = 2;

/// Argon2id cost used for new volumes (docs/crypto.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_kib: 65536,
            t: 3,
            p: 1,
        }
    }
}

/// Most Argon2id cost a key file may ask for (4 GiB, 64 passes, 16 lanes): unlocking
/// allocates `m_kib` KiB and works in proportion to `m_kib * t`, so without a bound a damaged
/// or planted `volume.key` could make an unlock ask for terabytes. Files outside are refused.
pub const KDF_MAX: KdfParams = KdfParams {
    m_kib: 4 << 20,
    t: 64,
    p: 16,
};

/// Whether `k` is within [`KDF_MAX`] (and nothing is zero).
pub fn kdf_affordable(k: &KdfParams) -> bool {
    (1..=KDF_MAX.m_kib).contains(&k.m_kib)
        && (1..=KDF_MAX.t).contains(&k.t)
        && (1..=KDF_MAX.p).contains(&k.p)
}

/// The KDF parameters a sealed key file asks for.
pub fn kdf_params(sealed: &[u8]) -> Result<KdfParams, FsError> {
    Ok(parse(sealed)?.kdf)
}

/// What unlocks the volume secret.
pub enum Unlock<'a> {
    /// A passphrase stretched with Argon2id.
    Passphrase(&'a [u8]),
    /// 32 random bytes read from a key file.
    KeyFile(&'a [u8; 32]),
}

/// Seals `vs` for volume `volume_id`; returns the bytes of `volume.key`.
pub fn seal(
    vs: &VolumeSecret,
    volume_id: &[u8; 16],
    how: &Unlock<'_>,
    kdf: KdfParams,
) -> Result<Vec<u8>, FsError> {
    let salt: [u8; 16] = random_array()?;
    let nonce: [u8; 12] = random_array()?;
    seal_with(vs, volume_id, how, kdf, &salt, nonce)
}

/// [`seal`] with the salt and nonce given (the known-answer test fixes them).
fn seal_with(
    vs: &VolumeSecret,
    volume_id: &[u8; 16],
    how: &Unlock<'_>,
    kdf: KdfParams,
    salt: &[u8; 16],
    nonce: [u8; 12],
) -> Result<Vec<u8>, FsError> {
    let (kind, kek) = derive_kek(how, salt, kdf)?;
    let mut ct = Zeroizing::new(vs.0);
    let tag = aead_key(&kek)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad(volume_id)[..]),
            &mut ct[..],
        )
        .map_err(|_| FsError::Crypto("sealing the volume secret failed"))?;
    let mut out = Vec::with_capacity(SEALED_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(volume_id);
    out.extend_from_slice(salt);
    for v in [kdf.m_kib, kdf.t, kdf.p] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct[..]);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Reads the volume id of a sealed key file without unsealing it.
pub fn volume_id(sealed: &[u8]) -> Result<[u8; 16], FsError> {
    Ok(parse(sealed)?.volume_id)
}

/// Unseals `volume.key`. A wrong passphrase or key file is [`FsError::WrongKey`].
pub fn unseal(sealed: &[u8], how: &Unlock<'_>) -> Result<VolumeSecret, FsError> {
    let s = parse(sealed)?;
    let (kind, kek) = derive_kek(how, &s.salt, s.kdf)?;
    if kind != s.kind {
        return Err(FsError::WrongKey);
    }
    let mut buf = Zeroizing::new(s.ct.to_vec());
    let pt = aead_key(&kek)?
        .open_in_place(
            Nonce::assume_unique_for_key(s.nonce),
            Aad::from(&aad(&s.volume_id)[..]),
            &mut buf[..],
        )
        .map_err(|_| FsError::WrongKey)?;
    let pt: &[u8; 32] = (&*pt)
        .try_into()
        .map_err(|_| FsError::BadRecord("volume.key"))?;
    Ok(VolumeSecret(*pt))
}

struct Parsed<'a> {
    kind: u8,
    volume_id: [u8; 16],
    salt: [u8; 16],
    kdf: KdfParams,
    nonce: [u8; 12],
    ct: &'a [u8],
}

fn parse(b: &[u8]) -> Result<Parsed<'_>, FsError> {
    let bad = FsError::BadRecord("volume.key");
    if b.len() != SEALED_LEN || &b[..8] != MAGIC {
        return Err(bad);
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    if u32_at(8) != VERSION {
        return Err(FsError::BadRecord("volume.key version"));
    }
    let arr16 = |o: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[o..o + 16]);
        a
    };
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&b[57..69]);
    let kdf = KdfParams {
        m_kib: u32_at(45),
        t: u32_at(49),
        p: u32_at(53),
    };
    if !kdf_affordable(&kdf) {
        return Err(FsError::BadRecord("volume.key KDF parameters"));
    }
    Ok(Parsed {
        kind: b[12],
        volume_id: arr16(13),
        salt: arr16(29),
        kdf,
        nonce,
        ct: &b[69..],
    })
}

fn derive_kek(
    how: &Unlock<'_>,
    salt: &[u8; 16],
    kdf: KdfParams,
) -> Result<(u8, Zeroizing<[u8; 32]>), FsError> {
    let mut kek = Zeroizing::new([0u8; 32]);
    match how {
        Unlock::KeyFile(k) => {
            kek.copy_from_slice(&k[..]);
            Ok((KIND_KEYFILE, kek))
        }
        Unlock::Passphrase(p) => {
            let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
                .map_err(|_| FsError::BadRecord("volume.key KDF parameters"))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(p, salt, &mut kek[..])
                .map_err(|_| FsError::Crypto("Argon2id failed"))?;
            Ok((KIND_PASSPHRASE, kek))
        }
    }
}

fn aad(volume_id: &[u8; 16]) -> Vec<u8> {
    [AAD_PREFIX, &volume_id[..]].concat()
}

/// Version byte of a wrapped volume secret (crypto.md, "Invitations").
const WRAP_VERSION: u8 = 0x01;
/// Length of a wrapped volume secret: version, nonce, ciphertext, tag.
pub const WRAPPED_LEN: usize = 1 + 12 + 32 + 16;

/// Wraps `vs` for an invitation (crypto.md, "Invitations"):
/// `W = 0x01 ‖ nonce (12 random) ‖ AES-256-GCM(K_wrap, nonce, aad = VolumeId, VS)`.
pub fn wrap_for_invite(
    vs: &VolumeSecret,
    k_wrap: &[u8; 32],
    volume_id: &[u8; 16],
) -> Result<Vec<u8>, FsError> {
    wrap_with(vs, k_wrap, volume_id, random_array()?)
}

/// [`wrap_for_invite`] with the nonce given.
fn wrap_with(
    vs: &VolumeSecret,
    k_wrap: &[u8; 32],
    volume_id: &[u8; 16],
    nonce: [u8; 12],
) -> Result<Vec<u8>, FsError> {
    let mut ct = Zeroizing::new(vs.0);
    let tag = aead_key(k_wrap)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&volume_id[..]),
            &mut ct[..],
        )
        .map_err(|_| FsError::Crypto("wrapping the volume secret failed"))?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAP_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct[..]);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a secret wrapped by [`wrap_for_invite`]. A wrong key or volume id is
/// [`FsError::WrongKey`]; a malformed `wrapped` is [`FsError::BadRecord`].
pub fn unwrap_invite(
    wrapped: &[u8],
    k_wrap: &[u8; 32],
    volume_id: &[u8; 16],
) -> Result<VolumeSecret, FsError> {
    if wrapped.len() != WRAPPED_LEN || wrapped[0] != WRAP_VERSION {
        return Err(FsError::BadRecord("wrapped volume secret"));
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&wrapped[1..13]);
    let mut buf = Zeroizing::new(wrapped[13..].to_vec());
    let pt = aead_key(k_wrap)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&volume_id[..]),
            &mut buf[..],
        )
        .map_err(|_| FsError::WrongKey)?;
    let pt: &[u8; 32] = (&*pt)
        .try_into()
        .map_err(|_| FsError::BadRecord("wrapped volume secret"))?;
    Ok(VolumeSecret(*pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let vs = VolumeSecret([9; 32]);
        let sealed = seal(&vs, &[1; 16], &Unlock::Passphrase(b"hunter2"), FAST).unwrap();
        assert_eq!(sealed.len(), SEALED_LEN);
        assert_eq!(volume_id(&sealed).unwrap(), [1; 16]);
        assert_eq!(
            unseal(&sealed, &Unlock::Passphrase(b"hunter2")).unwrap().0,
            [9; 32]
        );
        assert!(matches!(
            unseal(&sealed, &Unlock::Passphrase(b"hunter3")),
            Err(FsError::WrongKey)
        ));
        assert!(matches!(
            unseal(&sealed, &Unlock::KeyFile(&[0; 32])),
            Err(FsError::WrongKey)
        ));
    }

    #[test]
    fn keyfile_round_trip() {
        let vs = VolumeSecret([3; 32]);
        let sealed = seal(&vs, &[2; 16], &Unlock::KeyFile(&[5; 32]), FAST).unwrap();
        assert_eq!(
            unseal(&sealed, &Unlock::KeyFile(&[5; 32])).unwrap().0,
            [3; 32]
        );
        assert!(matches!(
            unseal(&sealed, &Unlock::KeyFile(&[6; 32])),
            Err(FsError::WrongKey)
        ));
        let mut bad = sealed.clone();
        bad[0] = b'X';
        assert!(matches!(
            unseal(&bad, &Unlock::KeyFile(&[5; 32])),
            Err(FsError::BadRecord(_))
        ));
    }

    /// Sealed by the pre-`ring` implementation (RustCrypto `aes-gcm` 0.10.3): VS = [9; 32],
    /// volume id [4; 16], key file [5; 32].
    const KAT_SEALED: &str = "464f5353414b455901000000020404040404040404040404040404040408a9c7c63a5e7f35078c935d1db064fb000100000100000001000000ecc29cafa9abffe2b095e360d04e6de8e88e43b57d55fa30ed9568d597d94a630baec333f6c549db796ed6abdecb2f9be1a3099c7dd047a62ab9dd39";

    #[test]
    fn keyfile_known_answer() {
        let sealed = hex::decode(KAT_SEALED).unwrap();
        assert_eq!(
            unseal(&sealed, &Unlock::KeyFile(&[5; 32])).unwrap().0,
            [9; 32]
        );
        let s = parse(&sealed).unwrap();
        let again = seal_with(
            &VolumeSecret([9; 32]),
            &[4; 16],
            &Unlock::KeyFile(&[5; 32]),
            s.kdf,
            &s.salt,
            s.nonce,
        )
        .unwrap();
        assert_eq!(again, sealed);
    }

    #[test]
    fn cross_check_with_aes_gcm_crate() {
        use aes_gcm::aead::{Aead, Payload};
        use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
        let reference = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[5; 32]));
        // ring seals, the reference opens.
        let sealed = seal(
            &VolumeSecret([3; 32]),
            &[2; 16],
            &Unlock::KeyFile(&[5; 32]),
            FAST,
        )
        .unwrap();
        let s = parse(&sealed).unwrap();
        let pt = reference
            .decrypt(
                Nonce::from_slice(&s.nonce),
                Payload {
                    msg: s.ct,
                    aad: &aad(&[2; 16]),
                },
            )
            .unwrap();
        assert_eq!(pt, [3; 32]);
        // The reference seals (as the old code did), ring opens.
        let ct = reference
            .encrypt(
                Nonce::from_slice(&s.nonce),
                Payload {
                    msg: &[8; 32],
                    aad: &aad(&[2; 16]),
                },
            )
            .unwrap();
        let mut old = sealed.clone();
        old[69..].copy_from_slice(&ct);
        assert_eq!(unseal(&old, &Unlock::KeyFile(&[5; 32])).unwrap().0, [8; 32]);
    }

    #[test]
    fn invite_wrap_round_trip_and_refusals() {
        let vs = VolumeSecret([7; 32]);
        let (k, vol) = ([4u8; 32], [6u8; 16]);
        let w = wrap_for_invite(&vs, &k, &vol).unwrap();
        assert_eq!(w.len(), WRAPPED_LEN);
        assert_eq!(w[0], 0x01);
        assert_eq!(unwrap_invite(&w, &k, &vol).unwrap().0, [7; 32]);
        // Fresh nonce every time.
        assert_ne!(w, wrap_for_invite(&vs, &k, &vol).unwrap());
        assert!(matches!(
            unwrap_invite(&w, &[5; 32], &vol),
            Err(FsError::WrongKey)
        ));
        assert!(matches!(
            unwrap_invite(&w, &k, &[0; 16]),
            Err(FsError::WrongKey)
        ));
        let mut bad = w.clone();
        bad[20] ^= 1;
        assert!(matches!(
            unwrap_invite(&bad, &k, &vol),
            Err(FsError::WrongKey)
        ));
        assert!(matches!(
            unwrap_invite(&w[..40], &k, &vol),
            Err(FsError::BadRecord(_))
        ));
        // Layout: version ‖ nonce ‖ AES-256-GCM(K_wrap, nonce, aad = VolumeId, VS).
        let fixed = wrap_with(&vs, &k, &vol, [9; 12]).unwrap();
        assert_eq!(&fixed[1..13], &[9; 12]);
        let mut ct = vs.0.to_vec();
        let tag = aead_key(&k)
            .unwrap()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([9; 12]),
                Aad::from(&vol[..]),
                &mut ct,
            )
            .unwrap();
        assert_eq!(&fixed[13..45], &ct[..]);
        assert_eq!(&fixed[45..], tag.as_ref());
    }
}

//! Index entries and their signed, sealed wire form (docs/crypto.md, "Index updates").
use super::SyncConfig;
use crate::FsError;
use crate::crypto::VolumeKeys;
use crate::format::sync::{Entry, decode_entry, encode_entry};

/// Signature context of an update.
const SIG_CONTEXT: &[u8] = b"fossa update signature v1";
/// Smallest sealed part: version byte, salt, GCM tag.
const SEALED_MIN: usize = 1 + 16 + 16;

/// The message an author signs: context ‖ volume ‖ device ‖ sealed.
fn sig_msg(volume: &[u8; 16], device: &[u8; 32], sealed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIG_CONTEXT.len() + 48 + sealed.len());
    m.extend_from_slice(SIG_CONTEXT);
    m.extend_from_slice(volume);
    m.extend_from_slice(device);
    m.extend_from_slice(sealed);
    m
}

/// Seals `e` and signs it as this device: DeviceId ‖ sealed ‖ signature.
pub(crate) fn sign(keys: &VolumeKeys, cfg: &SyncConfig, e: &Entry) -> Result<Vec<u8>, FsError> {
    let device = cfg.signer.device();
    let sealed = keys.seal_update(&encode_entry(e))?;
    let sig = cfg.signer.sign(&sig_msg(&cfg.volume, &device, &sealed));
    let mut out = Vec::with_capacity(32 + sealed.len() + 64);
    out.extend_from_slice(&device);
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Splits a signed blob into (device, sealed, signature).
fn split(blob: &[u8]) -> Option<([u8; 32], &[u8], [u8; 64])> {
    if blob.len() < 32 + SEALED_MIN + 64 {
        return None;
    }
    let (dev, rest) = blob.split_at(32);
    let (sealed, sig) = rest.split_at(rest.len() - 64);
    Some((dev.try_into().ok()?, sealed, sig.try_into().ok()?))
}

/// Opens a signed blob without checking the signature (records of the local database, which
/// is authenticated by its own seal).
pub(crate) fn open_trusted(keys: &VolumeKeys, blob: &[u8]) -> Result<Entry, FsError> {
    let (_, sealed, _) = split(blob).ok_or(FsError::BadRecord("signed update"))?;
    decode_entry(&keys.open_update(sealed)?)
}

/// Checks the signature of a peer's blob, opens it and checks that its author signed it.
pub(crate) fn open_verified(
    keys: &VolumeKeys,
    cfg: &SyncConfig,
    blob: &[u8],
) -> Result<Entry, &'static str> {
    let (dev, sealed, sig) = split(blob).ok_or("truncated update")?;
    if !cfg
        .verifier
        .verify(&dev, &sig_msg(&cfg.volume, &dev, sealed), &sig)
    {
        return Err("bad signature or not a member");
    }
    let plain = keys.open_update(sealed).map_err(|_| "seal does not open")?;
    let e = decode_entry(&plain).map_err(|_| "entry does not decode")?;
    if e.author != dev {
        return Err("author is not the signer");
    }
    Ok(e)
}

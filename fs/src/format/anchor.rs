//! The snapshot anchor file (`meta.snapshots`, docs/formats/fs.md): a copy of the sealed
//! snapshot records outside the metadata database, from which a damaged database is recovered.
use super::Records;
use super::{put_long, put_short};
use crate::FsError;

/// First bytes of an anchor file.
pub(crate) const ANCHOR_MAGIC: &[u8; 8] = b"FOSSASNP";
const ANCHOR_VERSION: u8 = 1;
const WHAT: &str = "snapshot anchor";

/// Encodes (table key, sealed record) pairs.
pub(crate) fn encode_anchor(recs: &Records) -> Vec<u8> {
    let mut o = ANCHOR_MAGIC.to_vec();
    o.push(ANCHOR_VERSION);
    let n = u32::try_from(recs.len()).unwrap_or(u32::MAX);
    o.extend_from_slice(&n.to_le_bytes());
    for (k, v) in recs.iter().take(n as usize) {
        put_short(&mut o, k);
        put_long(&mut o, v);
    }
    o
}

/// Decodes an anchor file; any damage (short, trailing bytes, bad magic) is `BadRecord`.
pub(crate) fn decode_anchor(b: &[u8]) -> Result<Records, FsError> {
    let body = b
        .strip_prefix(ANCHOR_MAGIC.as_slice())
        .ok_or(FsError::BadRecord(WHAT))?;
    let mut r = super::Rd {
        b: body,
        what: WHAT,
    };
    if r.u8()? != ANCHOR_VERSION {
        return Err(FsError::BadRecord(WHAT));
    }
    let n = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let k = r.short_bytes()?.to_vec();
        let v = r.long_bytes()?.to_vec();
        out.push((k, v));
    }
    r.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let recs = vec![(vec![1u8; 32], vec![2u8; 90]), (vec![3u8; 32], vec![])];
        let b = encode_anchor(&recs);
        assert_eq!(decode_anchor(&b).unwrap(), recs);
        assert!(decode_anchor(&b[..b.len() - 1]).is_err());
        let mut long = b.clone();
        long.push(0);
        assert!(decode_anchor(&long).is_err());
        assert!(decode_anchor(b"FOSSASNQ").is_err());
        assert_eq!(
            decode_anchor(&encode_anchor(&Vec::new())).unwrap(),
            Vec::new()
        );
    }
}

//! The content reference in inode records and sync entries (docs/formats/fs.md), and the
//! type byte that starts every block plaintext (docs/formats/fs-content.md).
//!
//! [`FileContent`] layout ([`FILE_CONTENT_LEN`] bytes): size u64 at [`SIZE_AT`], root flag u8
//! at [`FLAG_AT`], depth u8 at [`DEPTH_AT`], root block reference at [`ROOT_AT`].
use super::sealed::{BLOCK_REF_LEN, BlockRef};
use crate::FsError;

/// Offset of the size.
const SIZE_AT: usize = 0;
/// Offset of the root flag (0: no root, 1: root).
const FLAG_AT: usize = 8;
/// Offset of the tree depth.
const DEPTH_AT: usize = 9;
/// Offset of the root block reference.
const ROOT_AT: usize = 10;

/// Type byte that starts every block plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BlockKind {
    /// A chunk of file data.
    Data = 0,
    /// A pointer block of a file's Merkle tree.
    Pointer = 1,
    /// A directory block of a snapshot.
    Dir = 2,
    /// A snapshot root record.
    SnapshotRoot = 3,
}

impl BlockKind {
    /// The kind of type byte `b`.
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => BlockKind::Data,
            1 => BlockKind::Pointer,
            2 => BlockKind::Dir,
            3 => BlockKind::SnapshotRoot,
            _ => return None,
        })
    }
}

/// Root of a file's tree: where its content starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeRoot {
    /// The root block.
    pub block: BlockRef,
    /// 0: the root is a data chunk; n: n levels of pointer blocks above the chunks.
    pub depth: u8,
}

/// A file's content as stored in its inode record: length plus tree root (`None` = all zeros
/// / empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileContent {
    /// Length in bytes.
    pub size: u64,
    /// Root of the Merkle tree; `None` when the file is empty or one hole.
    pub root: Option<TreeRoot>,
}

/// Encoded length of a [`FileContent`].
pub const FILE_CONTENT_LEN: usize = ROOT_AT + BLOCK_REF_LEN;

impl FileContent {
    /// Appends the fixed-size encoding (docs/formats/fs.md).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.size.to_le_bytes());
        match &self.root {
            None => out.extend_from_slice(&[0u8; FILE_CONTENT_LEN - FLAG_AT]),
            Some(r) => {
                out.push(1);
                out.push(r.depth);
                r.block.encode(out);
            }
        }
    }

    /// Decodes [`FILE_CONTENT_LEN`] bytes.
    pub fn decode(b: &[u8]) -> Result<Self, FsError> {
        if b.len() < FILE_CONTENT_LEN {
            return Err(FsError::BadRecord("file content reference"));
        }
        let mut sz = [0u8; 8];
        sz.copy_from_slice(&b[SIZE_AT..FLAG_AT]);
        let size = u64::from_le_bytes(sz);
        let root = match b[FLAG_AT] {
            // One encoding per value: no root means all-zero root bytes.
            0 if b[DEPTH_AT..FILE_CONTENT_LEN].iter().all(|x| *x == 0) => None,
            1 => Some(TreeRoot {
                depth: b[DEPTH_AT],
                block: BlockRef::decode(&b[ROOT_AT..])?,
            }),
            _ => return Err(FsError::BadRecord("file content flag")),
        };
        Ok(FileContent { size, root })
    }
}

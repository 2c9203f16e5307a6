//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: each takes
//! arbitrary bytes, runs one decoder of the store's on-disk formats, and panics only when a
//! property fails (a decoded value that does not encode back, a limit not kept). Errors are
//! the expected answer to bad bytes. Not an API.
use crate::format::{self, ENTRY_LEN, FILE_HEADER_LEN, MAX_BLOCK_LEN, RECORD_HEADER_LEN};

/// A fuzz target: the name of its corpus directory under `fuzz/corpus/`, and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[("store_format", store_format)];

/// Byte 0 picks the decoder: data-file header, record header, index entry, data file name.
pub fn store_format(data: &[u8]) {
    let Some((&which, b)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => file_header(b),
        1 => record_header(b),
        2 => index_entry(b),
        _ => file_name(b),
    }
}

fn file_header(b: &[u8]) {
    let Some(h) = b.first_chunk::<{ FILE_HEADER_LEN as usize }>() else {
        return;
    };
    if let Ok(n) = format::decode_file_header(h) {
        assert_eq!(
            format::decode_file_header(&format::encode_file_header(n)),
            Ok(n)
        );
    }
}

fn record_header(b: &[u8]) {
    let Some(h) = b.first_chunk::<{ RECORD_HEADER_LEN as usize }>() else {
        return;
    };
    if let Ok(r) = format::decode_record_header(h) {
        assert!(r.len as usize <= MAX_BLOCK_LEN);
        let again = format::encode_record_header(r.len, &r.id);
        assert_eq!(format::decode_record_header(&again), Ok(r));
    }
}

fn index_entry(b: &[u8]) {
    let Some(e) = b.first_chunk::<ENTRY_LEN>() else {
        return;
    };
    if let Ok(d) = format::decode_entry(e) {
        assert_eq!(format::decode_entry(&format::encode_entry(&d)), Ok(d));
        // Readers compute these without checks: a decoded entry must keep them in range.
        let _ = (d.data_offset(), d.offset + d.record_len());
    }
}

fn file_name(b: &[u8]) {
    let Ok(name) = std::str::from_utf8(b) else {
        return;
    };
    if let Some(n) = format::parse_data_file_name(name) {
        assert_eq!(format::data_file_name(n), name);
    }
}

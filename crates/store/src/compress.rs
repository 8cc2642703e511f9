//! Decompression by magic bytes: plain tar, gzip or zstd; xz and bzip2 are recognised and
//! refused with a clear message.
use std::io::{BufReader, Read};

use crate::error::StoreError;

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const BZIP2: &[u8] = b"BZh";

/// Wraps `reader` in the decompressor its first bytes call for.
pub(crate) fn decompressed<'a>(reader: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, StoreError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    // Read until the longest magic is visible (a stream may deliver a byte at a time), then
    // put those bytes back in front.
    let mut head = Vec::with_capacity(XZ.len());
    while head.len() < XZ.len() {
        let mut b = [0u8; 8];
        let want = XZ.len() - head.len();
        let n = match buffered.read(&mut b[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(StoreError::Io {
                    what: "reading the archive".into(),
                    source: e,
                })
            }
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&b[..n]);
    }
    if head.is_empty() {
        return Err(StoreError::EmptyArchive);
    }
    let stream: Box<dyn Read + 'a> = Box::new(std::io::Cursor::new(head.clone()).chain(buffered));
    Ok(if head.starts_with(GZIP) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(stream)))
    } else if head.starts_with(ZSTD) {
        Box::new(zstd::stream::read::Decoder::new(stream).map_err(StoreError::io("starting zstd"))?)
    } else if head.starts_with(XZ) {
        return Err(StoreError::UnsupportedCompression { format: "xz" });
    } else if head.starts_with(BZIP2) {
        return Err(StoreError::UnsupportedCompression { format: "bzip2" });
    } else {
        stream
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers one byte per read.
    struct Trickle(std::io::Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn sniffs_formats() {
        let plain = b"hello world, plain".to_vec();
        let mut out = String::new();
        decompressed(&mut Trickle(std::io::Cursor::new(plain.clone())))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), plain);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        out.clear();
        decompressed(&mut Trickle(std::io::Cursor::new(gz)))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), plain);

        let zs = zstd::encode_all(&plain[..], 1).unwrap();
        out.clear();
        decompressed(&mut std::io::Cursor::new(zs))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), plain);

        assert!(matches!(
            decompressed(&mut std::io::empty()),
            Err(StoreError::EmptyArchive)
        ));
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2];
        assert!(matches!(
            decompressed(&mut &xz[..]),
            Err(StoreError::UnsupportedCompression { format: "xz" })
        ));
    }
}

//! Docker's json-file log, written by the shim: one `{"log","stream","time"}` object per
//! line, byte-for-byte as moby's `jsonlog.JSONLogs.MarshalJSONBuf` writes it (HTML-safe
//! escaping, invalid UTF-8 as U+FFFD, Go `RFC3339Nano` timestamps). Lines longer than
//! 16 KiB are split into partial entries (no trailing newline) as Docker's log copier does.
//! The file rotates by size and count: `<log>.1` is the newest rotated file.
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// Docker's log copier buffer: a line longer than this is logged in pieces.
const MAX_LINE: usize = 16 * 1024;

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
    /// Unterminated output per stream (index 0 = stdout, 1 = stderr).
    partial: [Vec<u8>; 2],
}

/// Go's `time.RFC3339Nano` in UTC: fractional seconds without trailing zeros.
pub fn go_rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// moby's `ffjsonWriteJSONBytesAsString`.
fn write_json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'<' | b'>' | b'&' | 0..=0x1f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        // A multi-byte sequence: copy it when valid, else U+FFFD for one byte.
        let len = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        match s.get(i..i + len).map(std::str::from_utf8) {
            Some(Ok(ch)) if len > 0 => {
                if ch == "\u{2028}" || ch == "\u{2029}" {
                    out.extend_from_slice(b"\\u202");
                    out.push(if ch == "\u{2028}" { b'8' } else { b'9' });
                } else {
                    out.extend_from_slice(ch.as_bytes());
                }
                i += len;
            }
            _ => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
            }
        }
    }
    out.push(b'"');
}

/// One json-file entry, newline-terminated.
pub fn encode_entry(stream: u8, line: &[u8], time: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 64);
    out.extend_from_slice(b"{\"log\":");
    write_json_string(&mut out, line);
    out.extend_from_slice(if stream == 2 {
        b",\"stream\":\"stderr\",\"time\":\""
    } else {
        b",\"stream\":\"stdout\",\"time\":\""
    });
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

impl JsonLog {
    pub fn open(path: PathBuf, max_size: u64, max_file: u32) -> std::io::Result<JsonLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path,
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Appends output of `stream` (1 = stdout, 2 = stderr); complete lines are written at
    /// once, an unterminated rest waits for its newline (or 16 KiB, or [`Self::flush_partial`]).
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let idx = usize::from(stream == 2);
        let mut pending = std::mem::take(&mut self.partial[idx]);
        let mut rest = data;
        while !rest.is_empty() {
            let room = MAX_LINE - pending.len();
            let window = &rest[..rest.len().min(room)];
            match window.iter().position(|b| *b == b'\n') {
                Some(pos) => {
                    let line = &window[..=pos];
                    if pending.is_empty() {
                        self.entry(stream, line);
                    } else {
                        pending.extend_from_slice(line);
                        self.entry(stream, &pending);
                        pending.clear();
                    }
                    rest = &rest[pos + 1..];
                }
                None => {
                    pending.extend_from_slice(window);
                    rest = &rest[window.len()..];
                    if pending.len() == MAX_LINE {
                        self.entry(stream, &pending);
                        pending.clear();
                    }
                }
            }
        }
        self.partial[idx] = pending;
    }

    /// Writes out unterminated output (at exit).
    pub fn flush_partial(&mut self) {
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let p = std::mem::take(&mut self.partial[idx]);
            if !p.is_empty() {
                self.entry(stream, &p);
            }
        }
    }

    fn entry(&mut self, stream: u8, line: &[u8]) {
        let out = encode_entry(stream, line, &go_rfc3339_nano(chrono::Utc::now()));
        if self.max_size > 0 && self.size > 0 && self.size + out.len() as u64 > self.max_size {
            self.rotate();
        }
        if self.file.write_all(&out).is_ok() {
            self.size += out.len() as u64;
        }
    }

    fn rotate(&mut self) {
        if self.max_file <= 1 {
            // A single file: start it over.
            let _ = self.file.set_len(0);
            self.size = 0;
            return;
        }
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(name(self.max_file - 1));
        for n in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        let _ = std::fs::rename(&self.path, name(1));
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            self.file = f;
            self.size = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partials_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut l = JsonLog::open(p.clone(), 300, 3).unwrap();
        l.write(1, b"hel");
        l.write(1, b"lo\nwor");
        l.write(2, b"err\n");
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(
            s.starts_with("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"20"),
            "{s}"
        );
        assert!(s.contains("{\"log\":\"err\\n\",\"stream\":\"stderr\",\"time\":\""));
        l.flush_partial();
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains("\"log\":\"wor\""));
        for i in 0..50 {
            l.write(1, format!("line {i}\n").as_bytes());
        }
        assert!(d.path().join("c-json.log.1").exists());
        assert!(d.path().join("c-json.log.2").exists());
        assert!(!d.path().join("c-json.log.3").exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.contains("line 49\\n"));
        let newest_rotated = std::fs::read_to_string(d.path().join("c-json.log.1")).unwrap();
        let n1: u32 = newest_rotated
            .rsplit("line ")
            .next()
            .unwrap()
            .split('\\')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let n2: u32 = std::fs::read_to_string(d.path().join("c-json.log.2"))
            .unwrap()
            .rsplit("line ")
            .next()
            .unwrap()
            .split('\\')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n1 > n2, ".1 is the newer file");
    }

    #[test]
    fn long_lines_are_split_like_docker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.log");
        let mut l = JsonLog::open(p.clone(), 0, 1).unwrap();
        let mut data = vec![b'a'; MAX_LINE + 10];
        data.push(b'\n');
        l.write(1, &data[..100]);
        l.write(1, &data[100..]);
        let entries: Vec<serde_json::Value> = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(|x| serde_json::from_str(x).unwrap())
            .collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["log"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(
            entries[1]["log"].as_str().unwrap(),
            format!("{}\n", "a".repeat(10))
        );
    }

    #[test]
    fn escaping_matches_moby() {
        let e = encode_entry(1, "<a&b>\t\"q\"\\ é\u{2028}\r\n".as_bytes(), "T");
        assert_eq!(String::from_utf8(e).unwrap(), "{\"log\":\"\\u003ca\\u0026b\\u003e\\u0009\\\"q\\\"\\\\ é\\u2028\\r\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
        let e = encode_entry(2, b"\xff\xc3(x", "T");
        assert_eq!(
            String::from_utf8(e).unwrap(),
            "{\"log\":\"\\ufffd\\ufffd(x\",\"stream\":\"stderr\",\"time\":\"T\"}\n"
        );
    }

    #[test]
    fn go_time_format() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap();
        assert_eq!(go_rfc3339_nano(t), "2026-11-22T10:00:00Z");
        let t = t + chrono::Duration::nanoseconds(123_450_000);
        assert_eq!(go_rfc3339_nano(t), "2026-11-22T10:00:00.12345Z");
    }
}

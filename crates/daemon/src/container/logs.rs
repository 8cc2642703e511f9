//! `logs`: reads the json-file log the shim writes (`<id>-json.log` plus rotated
//! `.1` (newest) … `.N`), with tail / since / until / timestamps, and follows it.
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::{ApiError, BoxStream, LogChunk, LogsOptions};
use bytes::Bytes;
use serde::Deserialize;

use super::Containers;

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// One decoded log line.
struct Line {
    stream: u8,
    nanos: i64,
    time: String,
    data: String,
}

fn decode(raw: &str) -> Option<Line> {
    let e: Entry = serde_json::from_str(raw).ok()?;
    let nanos = chrono::DateTime::parse_from_rfc3339(&e.time)
        .ok()?
        .timestamp_nanos_opt()?;
    Some(Line {
        stream: if e.stream == "stderr" { 2 } else { 1 },
        nanos,
        time: e.time,
        data: e.log,
    })
}

/// Docker prints log timestamps with a fixed nine-digit fraction.
fn fixed_time(nanos: i64, fallback: &str) -> String {
    chrono::DateTime::from_timestamp(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
    .unwrap_or_else(|| fallback.to_owned())
}

struct Filter {
    opts: LogsOptions,
}

impl Filter {
    fn chunk(&self, l: Line) -> Option<LogChunk> {
        if (l.stream == 1 && !self.opts.stdout) || (l.stream == 2 && !self.opts.stderr) {
            return None;
        }
        if self.opts.since > 0 && l.nanos < self.opts.since {
            return None;
        }
        if self.opts.until > 0 && l.nanos > self.opts.until {
            return None;
        }
        let data = if self.opts.timestamps {
            format!("{} {}", fixed_time(l.nanos, &l.time), l.data)
        } else {
            l.data
        };
        Some(LogChunk {
            stream: l.stream,
            data: Bytes::from(data),
        })
    }
}

/// Log files oldest first.
fn log_files(base: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (base.parent(), base.file_name().and_then(|n| n.to_str())) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let fname = e.file_name();
                let Some(f) = fname.to_str() else { continue };
                if let Some(n) = f
                    .strip_prefix(name)
                    .and_then(|s| s.strip_prefix('.'))
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(base.to_owned());
    out
}

/// Reads all complete lines; returns them and, for the current file, the offset and inode
/// where following should continue.
fn read_existing(base: &Path, filter: &Filter) -> (Vec<LogChunk>, u64, u64) {
    let mut chunks = Vec::new();
    let mut offset = 0;
    let mut ino = 0;
    for path in log_files(base) {
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let is_current = path == base;
        if is_current {
            ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
        }
        let mut r = BufReader::new(f);
        let mut line = String::new();
        let mut pos = 0u64;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !line.ends_with('\n') {
                        break;
                    }
                    pos += n as u64;
                    if let Some(c) = decode(line.trim_end()).and_then(|l| filter.chunk(l)) {
                        chunks.push(c);
                    }
                }
            }
        }
        if is_current {
            offset = pos;
        }
    }
    if let Some(n) = filter.opts.tail {
        let skip = chunks.len().saturating_sub(n);
        chunks.drain(..skip);
    }
    (chunks, offset, ino)
}

impl Containers {
    pub async fn container_logs(
        &self,
        key: &str,
        opts: LogsOptions,
    ) -> Result<(bool, BoxStream<LogChunk>), ApiError> {
        let c = self.get(key)?;
        let rec = c.snapshot();
        let tty = rec.config.tty.unwrap_or(false);
        let driver = rec
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.clone())
            .unwrap_or_default();
        if driver == "none" {
            return Err(ApiError::invalid(
                "configured logging driver does not support reading",
            ));
        }
        let base = super::options::log_file(&self.paths.container_dir(&rec.id), &rec.id, &driver)
            .unwrap_or_else(|| self.paths.log_path(&rec.id));
        let follow = opts.follow;
        let filter = Filter { opts };
        let (tx, rx) = tokio::sync::mpsc::channel::<LogChunk>(256);
        let mut exits = c.exits.subscribe();
        let running = rec.state.status.is_running();
        tokio::task::spawn_blocking(move || {
            let (chunks, mut offset, mut ino) = read_existing(&base, &filter);
            for ch in chunks {
                if tx.blocking_send(ch).is_err() {
                    return;
                }
            }
            if !follow || !running {
                return;
            }
            let start_seq = exits.borrow_and_update().seq;
            let mut partial = String::new();
            let mut last_round = false;
            loop {
                // Pick up rotation: a new inode at the base path means we finish the old
                // file (now .1) is already read up to offset; continue at 0 in the new one.
                if let Ok(m) = std::fs::metadata(&base) {
                    if m.ino() != ino {
                        ino = m.ino();
                        offset = 0;
                        partial.clear();
                    } else if m.len() < offset {
                        offset = 0;
                        partial.clear();
                    }
                }
                if let Ok(mut f) = std::fs::File::open(&base) {
                    if f.seek(SeekFrom::Start(offset)).is_ok() {
                        let mut r = BufReader::new(f);
                        let mut line = String::new();
                        loop {
                            line.clear();
                            match r.read_line(&mut line) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    offset += n as u64;
                                    partial.push_str(&line);
                                    if partial.ends_with('\n') {
                                        if let Some(ch) =
                                            decode(partial.trim_end()).and_then(|l| filter.chunk(l))
                                        {
                                            if tx.blocking_send(ch).is_err() {
                                                return;
                                            }
                                        }
                                        partial.clear();
                                    }
                                }
                            }
                        }
                    }
                }
                if last_round {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
                let exited = {
                    let ev = exits.borrow();
                    ev.seq > start_seq || ev.removed
                };
                if exited {
                    // One more pass to pick up the shim's final flush.
                    last_round = true;
                    continue;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let stream = tokio_stream_from(rx);
        Ok((tty, stream))
    }
}

/// An mpsc receiver as the body stream of a response.
pub(crate) fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> BoxStream<T> {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rotated_in_order_with_tail() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("x-json.log");
        let line = |s: &str, stream: &str| {
            format!("{{\"log\":\"{s}\\n\",\"stream\":\"{stream}\",\"time\":\"2026-01-01T00:00:00.5Z\"}}\n")
        };
        std::fs::write(d.path().join("x-json.log.2"), line("a", "stdout")).unwrap();
        std::fs::write(d.path().join("x-json.log.1"), line("b", "stderr")).unwrap();
        std::fs::write(
            &base,
            format!("{}{}", line("c", "stdout"), "{\"log\":\"partial"),
        )
        .unwrap();
        let all = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (chunks, _, _) = read_existing(&base, &Filter { opts: all.clone() });
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.stream, String::from_utf8_lossy(&c.data).into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![(1, "a\n".into()), (2, "b\n".into()), (1, "c\n".into())]
        );
        let (chunks, _, _) = read_existing(
            &base,
            &Filter {
                opts: LogsOptions {
                    tail: Some(1),
                    ..all.clone()
                },
            },
        );
        assert_eq!(chunks.len(), 1);
        let (chunks, _, _) = read_existing(
            &base,
            &Filter {
                opts: LogsOptions {
                    stderr: false,
                    timestamps: true,
                    ..all
                },
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&chunks[0].data),
            "2026-01-01T00:00:00.500000000Z a\n"
        );
    }
}

//! `docker save` (`GET /images/get`, `GET /images/{name}/get`) and `docker load`
//! (`POST /images/load`): berth-store writes and reads the docker-archive; this streams it
//! over HTTP in 256 KiB chunks, publishes `save`/`load` events and shapes `load`'s JSON
//! messages as dockerd's.
use std::io::Write;
use std::sync::Arc;

use berth_api::{ApiResult, BoxStream};
use berth_store::LoadMessage;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use super::{join_err, stream_from, Storage};
use crate::container::store_err;
use crate::events::Events;

/// A `Write` that hands chunks to an async body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The docker-archive of `names`; unknown names fail before anything is sent.
pub async fn save_stream(
    store: &Arc<berth_store::Store>,
    events: &Arc<Events>,
    names: Vec<String>,
) -> ApiResult<BoxStream<std::io::Result<Bytes>>> {
    let s = store.clone();
    let plan = tokio::task::spawn_blocking(move || s.save_plan(&names))
        .await
        .map_err(join_err)?
        .map_err(store_err)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let store = store.clone();
    let events = events.clone();
    let ids = plan.image_ids();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let res = store
            .save(&plan, &mut w)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|_| w.flush());
        match res {
            Ok(()) => {
                for id in &ids {
                    events.publish(
                        "image",
                        "save",
                        id,
                        [("name".to_owned(), id.clone())].into(),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "save");
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    Ok(stream_from(rx))
}

fn stream_msg(s: String) -> serde_json::Value {
    json!({ "stream": s })
}

impl Storage {
    pub(crate) async fn load_images(
        &self,
        body: BoxStream<std::io::Result<Bytes>>,
        quiet: bool,
    ) -> ApiResult<BoxStream<serde_json::Value>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<serde_json::Value>(64);
        let store = self.store.clone();
        let events = self.events.clone();
        let reader =
            tokio_util::io::StreamReader::new(body.map(|r| r.map_err(std::io::Error::other)));
        tokio::task::spawn_blocking(move || {
            let mut sync = tokio_util::io::SyncIoBridge::new(reader);
            let ptx = tx.clone();
            let mut progress = |name: &str, size: u64| {
                if !quiet {
                    let id: String = name
                        .split('/')
                        .find(|p| p.len() >= 12 && p.bytes().all(|b| b.is_ascii_hexdigit()))
                        .map(|p| p[..12].to_owned())
                        .unwrap_or_else(|| name.to_owned());
                    let _ = ptx.blocking_send(json!({
                        "status": "Loading layer",
                        "progressDetail": {"current": size, "total": size},
                        "id": id,
                    }));
                }
            };
            let res = store.load(&mut sync, &mut progress);
            // Drain what the client still sends, so it sees our answer, not a reset.
            let _ = std::io::copy(&mut sync, &mut std::io::sink());
            match res {
                Ok(msgs) => {
                    let mut seen = std::collections::HashSet::new();
                    for m in msgs {
                        let (id, line) = match m {
                            LoadMessage::Tagged { tag, id, replaced } => {
                                if let Some(old) = replaced {
                                    let _ = tx.blocking_send(stream_msg(format!(
                                        "The image {tag} already exists, renaming the old one with ID {old} to empty string\n"
                                    )));
                                }
                                (id, format!("Loaded image: {tag}\n"))
                            }
                            LoadMessage::Untagged { id } => {
                                let l = format!("Loaded image ID: {id}\n");
                                (id, l)
                            }
                        };
                        if seen.insert(id.clone()) {
                            events.publish(
                                "image",
                                "load",
                                &id,
                                [("name".to_owned(), id.clone())].into(),
                            );
                        }
                        let _ = tx.blocking_send(stream_msg(line));
                    }
                }
                Err(e) => {
                    let msg = error_text(&e);
                    tracing::warn!(error = %msg, "load");
                    let _ = tx.blocking_send(json!({
                        "errorDetail": {"message": msg},
                        "error": msg,
                    }));
                }
            }
        });
        Ok(stream_from(rx))
    }
}

fn error_text(e: &berth_store::StoreError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

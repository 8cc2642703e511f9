//! `docker history`: the config's history entries, newest first, with layer sizes.
use berth_oci::digest::Digest;

use crate::error::StoreError;
use crate::snapshot::chain_ids;
use crate::store::Store;

/// One row of `docker history` (`GET /images/{name}/history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image ID for the top row (and each parent image's row), else `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    /// Familiar `name:tag`s of the image in `id`.
    pub tags: Vec<String>,
}

fn unix(ts: Option<&str>) -> i64 {
    ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp())
}

impl Store {
    /// The image's history as moby's `ImageHistory` builds it: one row per history entry,
    /// newest first; non-empty entries take the next layer's size; IDs and tags are filled
    /// in for the image and its parents.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryItem>, StoreError> {
        let st = self.lock();
        let id = self.resolve(&st, name_or_id)?;
        let entry = &st.images[&id];
        let chains = chain_ids(&entry.diff_ids());
        let mut layer = 0;
        let mut items = Vec::with_capacity(entry.config.history.len());
        for h in &entry.config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chains
                    .get(layer)
                    .and_then(|c| st.sizes.get(c))
                    .copied()
                    .unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: unix(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
            });
        }
        items.reverse();
        let mut current = Some(id);
        for item in items.iter_mut() {
            let Some(cur) = current.take() else { break };
            let mut tags: Vec<String> = st
                .refs_of(&cur)
                .iter()
                .filter(|r| r.digest().is_none())
                .map(|r| r.familiar())
                .collect();
            tags.sort();
            item.id = cur.to_string();
            item.tags = tags;
            current = st
                .images
                .get(&cur)
                .and_then(|e| Digest::parse(&e.record.parent).ok())
                .filter(|p| st.images.contains_key(p));
        }
        Ok(items)
    }
}

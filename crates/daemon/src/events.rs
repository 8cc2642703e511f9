//! The events bus: every service reports what happened to its objects here; `GET /events`
//! replays the bounded history (`since`) and streams new events until `until`.
//!
//! Interface for other services (images, volumes, networks):
//!
//! ```ignore
//! events.publish("image", "tag", &image_id, [("name".into(), "busybox:latest".into())].into());
//! ```
//!
//! `typ` is Docker's event type (`container`, `image`, `volume`, `network`, `daemon`, ...),
//! `action` Docker's action (`create`, `die`, `tag`, `exec_start: sh`, ...), `id` the
//! object's ID and `attributes` the Actor attributes (Docker puts `name`, `image` and the
//! labels of a container there; `exitCode` on `die`, `signal` on `kill`).
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use berth_api::{ApiResult, BoxStream, EventsBackend, Filters};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// How many past events `since` can reach (dockerd keeps 256).
const HISTORY: usize = 1024;

/// One event, as recorded.
#[derive(Debug, Clone)]
pub struct Event {
    pub typ: String,
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub time_nano: i64,
}

impl Event {
    /// Docker's `events.Message` JSON, with the legacy `status`/`id`/`from` fields Docker
    /// still sends for container and image events.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.typ,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if self.typ == "container" || self.typ == "image" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if self.typ == "container" {
                if let Some(img) = self.attributes.get("image") {
                    v["from"] = json!(img);
                }
            }
        }
        v
    }

    /// Docker's event filter (moby `daemon/events/filter.go`): every filter key present must
    /// match one of its values.
    pub fn matches(&self, f: &Filters) -> bool {
        let exact = |key: &str, val: &str| f.get(key).is_none_or(|vs| vs.iter().any(|v| v == val));
        let fuzzy = |key: &str, val: &str| {
            f.get(key).is_none_or(|vs| {
                vs.iter()
                    .any(|v| v == val || (!v.is_empty() && val.starts_with(v.as_str())))
            })
        };
        let name = self
            .attributes
            .get("name")
            .map(String::as_str)
            .unwrap_or("");
        let by_name = |key: &str| {
            f.get(key).is_none_or(|vs| {
                vs.iter().any(|v| {
                    v == &self.id || v == name || (!v.is_empty() && self.id.starts_with(v.as_str()))
                })
            })
        };
        let event_ok = match f.get("event") {
            // moby #25798: health_status, exec_create and exec_start carry a suffix
            // ("exec_start: sh"), so they match by prefix.
            Some(vs)
                if vs.iter().any(|v| {
                    matches!(
                        v.as_str(),
                        "health_status" | "exec_create" | "exec_start" | "exec_die"
                    )
                }) =>
            {
                fuzzy("event", &self.action)
            }
            _ => exact("event", &self.action),
        };
        let typed = |t: &str| self.typ != t || by_name(t);
        let labels_ok = f.get("label").is_none_or(|vs| {
            vs.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => self.attributes.get(k).is_some_and(|a| a == v),
                None => self.attributes.contains_key(l),
            })
        });
        let image_ok = f.get("image").is_none_or(|vs| {
            let img = if self.typ == "image" {
                self.attributes
                    .get("name")
                    .map(String::as_str)
                    .unwrap_or(&self.id)
            } else {
                self.attributes
                    .get("image")
                    .map(String::as_str)
                    .unwrap_or("")
            };
            let bare = img.split(['@']).next().unwrap_or(img);
            vs.iter().any(|v| {
                v == img || v == bare || v == &self.id || bare.strip_suffix(":latest") == Some(v)
            })
        });
        event_ok
            && exact("type", &self.typ)
            && exact("scope", "local")
            && (f.get("container").is_none() || self.typ == "container" && by_name("container"))
            && typed("volume")
            && typed("network")
            && typed("daemon")
            && typed("plugin")
            && (f.get("volume").is_none() || self.typ == "volume")
            && (f.get("network").is_none() || self.typ == "network")
            && image_ok
            && labels_ok
    }
}

/// The bus: a broadcast channel for live subscribers and a bounded history.
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<VecDeque<Arc<Event>>>,
}

impl Events {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        Arc::new(Self {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        })
    }

    /// Records an event and sends it to every subscriber. Never blocks.
    pub fn publish(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let time_nano = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let ev = Arc::new(Event {
            typ: typ.to_owned(),
            action: action.to_owned(),
            id: id.to_owned(),
            attributes,
            time_nano,
        });
        // History and broadcast under one lock so a subscriber never misses or duplicates
        // an event between its replay and its live part.
        let mut h = self.history.lock().expect("events lock");
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// The history matching `since..=until` (nanoseconds, 0 = unbounded) and a receiver for
    /// what follows.
    pub fn subscribe(
        &self,
        since: i64,
        until: i64,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let h = self.history.lock().expect("events lock");
        let rx = self.tx.subscribe();
        let past = if since == 0 && until == 0 {
            Vec::new()
        } else {
            h.iter()
                .filter(|e| e.time_nano >= since && (until == 0 || e.time_nano <= until))
                .cloned()
                .collect()
        };
        (past, rx)
    }
}

/// The API face of [`Events`].
pub struct EventsApi(pub Arc<Events>);

#[async_trait::async_trait]
impl EventsBackend for EventsApi {
    async fn events(
        &self,
        since: i64,
        until: i64,
        filters: Filters,
    ) -> ApiResult<BoxStream<Value>> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if since > 0 && until > 0 && until < since {
            return Err(berth_api::ApiError::invalid(
                "`since` time is after `until` time".to_owned(),
            ));
        }
        let (past, rx) = self.0.subscribe(since, until);
        let f1 = filters.clone();
        let past = futures_util::stream::iter(past)
            .filter(move |e| std::future::ready(e.matches(&f1)))
            .map(|e| e.to_json());
        if until > 0 && until <= now {
            return Ok(past.boxed());
        }
        let live = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |e| std::future::ready(e.matches(&filters)))
        .map(|e| e.to_json());
        let live: BoxStream<Value> = if until > 0 {
            let deadline = tokio::time::Instant::now()
                + std::time::Duration::from_nanos((until - now).max(0) as u64);
            live.take_until(tokio::time::sleep_until(deadline)).boxed()
        } else {
            live.boxed()
        };
        Ok(past.chain(live).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(typ: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            typ: typ.into(),
            action: action.into(),
            id: id.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time_nano: 1_700_000_000_123_456_789,
        }
    }

    fn f(pairs: &[(&str, &str)]) -> Filters {
        let mut m = Filters::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        m
    }

    #[test]
    fn json_shape() {
        let v = ev(
            "container",
            "die",
            "abc",
            &[("image", "busybox"), ("exitCode", "3")],
        )
        .to_json();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["status"], "die");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["time"], 1_700_000_000);
        assert_eq!(v["timeNano"], 1_700_000_000_123_456_789i64);
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        let n = ev("network", "create", "n1", &[]).to_json();
        assert!(n.get("status").is_none());
    }

    #[test]
    fn filters() {
        let e = ev(
            "container",
            "exec_start: sh -c x",
            "abcdef",
            &[("name", "web"), ("image", "busybox"), ("k", "v")],
        );
        assert!(e.matches(&f(&[])));
        assert!(e.matches(&f(&[("container", "web")])));
        assert!(e.matches(&f(&[("container", "abc")])));
        assert!(!e.matches(&f(&[("container", "other")])));
        assert!(e.matches(&f(&[("event", "exec_start")])));
        assert!(!e.matches(&f(&[("event", "start")])));
        assert!(e.matches(&f(&[("type", "container"), ("type", "image")])));
        assert!(!e.matches(&f(&[("type", "image")])));
        assert!(e.matches(&f(&[("label", "k=v")])));
        assert!(e.matches(&f(&[("label", "k")])));
        assert!(!e.matches(&f(&[("label", "k=w")])));
        assert!(e.matches(&f(&[("image", "busybox")])));
        assert!(!e.matches(&f(&[("volume", "x")])));
    }

    #[test]
    fn history_is_bounded_and_replayed() {
        let bus = Events::new();
        for i in 0..HISTORY + 10 {
            bus.publish("container", "create", &format!("{i}"), BTreeMap::new());
        }
        let (past, _) = bus.subscribe(1, 0);
        assert_eq!(past.len(), HISTORY);
        assert_eq!(past[0].id, "10");
    }
}

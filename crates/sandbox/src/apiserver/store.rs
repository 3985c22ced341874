//! The in-memory object store: objects by resource, namespace and name, one
//! global resourceVersion counter bumped on every write, and a bounded
//! history of watch events to replay from a resourceVersion. No I/O.
//!
//! Objects are shared (`Arc`): the store, the history entry that wrote a
//! version and the next entry's `prev` hold the same allocation, so the
//! history costs little more than the versions it still references.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

/// Events kept for watches that resume from a resourceVersion.
pub const HISTORY: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    /// Store key of the resource (`pods`, `deployments.apps`).
    pub resource: String,
    pub namespace: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// The version before this change (MODIFIED), for selector transitions.
    pub prev: Option<Arc<Value>>,
}

type Objects = BTreeMap<(String, String), Arc<Value>>;

#[derive(Debug, Default)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<String, Objects>,
    history: VecDeque<Arc<Event>>,
    /// resourceVersion of the newest event dropped from the history.
    evicted: u64,
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// The current (latest written) resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource, in (namespace, name) order; `namespace` none =
    /// all namespaces; `after` = resume after this (namespace, name).
    pub fn list<'a>(
        &'a self,
        resource: &str,
        namespace: Option<&'a str>,
        after: Option<(String, String)>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let start = match after {
            Some(k) => Bound::Excluded(k),
            None => match namespace {
                Some(ns) => Bound::Included((ns.to_string(), String::new())),
                None => Bound::Unbounded,
            },
        };
        self.objects
            .get(resource)
            .into_iter()
            .flat_map(move |m| m.range((start.clone(), Bound::Unbounded)))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v)
    }

    /// Namespaces holding objects of any resource (for namespace deletion).
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (res, objs) in &self.objects {
            for (ns, name) in objs.keys() {
                if ns == namespace {
                    out.push((res.clone(), name.clone()));
                }
            }
        }
        out
    }

    fn record(&mut self, event: Event) {
        self.history.push_back(Arc::new(event));
        while self.history.len() > HISTORY {
            if let Some(e) = self.history.pop_front() {
                self.evicted = e.rv;
            }
        }
    }

    /// Writes an object (create or update): stamps the next
    /// resourceVersion, records ADDED/MODIFIED, returns the stored version.
    pub fn put(&mut self, resource: &str, mut object: Value) -> Arc<Value> {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let ns = meta_str(&object, "namespace").to_string();
        let name = meta_str(&object, "name").to_string();
        let object = Arc::new(object);
        let prev = self
            .objects
            .entry(resource.to_string())
            .or_default()
            .insert((ns.clone(), name), object.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv: self.rv,
            resource: resource.to_string(),
            namespace: ns,
            kind,
            object: object.clone(),
            prev,
        });
        object
    }

    /// Removes an object; the DELETED event (and the returned object)
    /// carry a new resourceVersion, as the real server's do.
    pub fn remove(&mut self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let old = self
            .objects
            .get_mut(resource)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.record(Event {
            rv: self.rv,
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            kind: EventType::Deleted,
            object: last.clone(),
            prev: Some(old),
        });
        Some(last)
    }

    /// Events after `rv` for `resource`, or `Err(oldest)` when some of them
    /// are no longer kept (410 Expired).
    pub fn events_since(&self, resource: &str, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.evicted {
            return Err(self.evicted + 1);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self
            .history
            .range(start..)
            .filter(|e| e.resource == resource)
            .cloned()
            .collect())
    }

    /// Number of stored objects (all resources).
    pub fn len(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ns: &str, name: &str, v: u32) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "data": {"v": v}})
    }

    #[test]
    fn writes_bump_one_counter_and_record_events() {
        let mut s = Store::new();
        let a = s.put("secrets", obj("a", "x", 1));
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        s.put("configmaps", obj("a", "y", 1));
        let a2 = s.put("secrets", obj("a", "x", 2));
        assert_eq!(a2["metadata"]["resourceVersion"], "3");
        let gone = s.remove("secrets", "a", "x").expect("removed");
        assert_eq!(gone["metadata"]["resourceVersion"], "4");
        assert!(s.get("secrets", "a", "x").is_none());
        let evs = s.events_since("secrets", 1).expect("kept");
        let kinds: Vec<_> = evs.iter().map(|e| (e.rv, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![(3, EventType::Modified), (4, EventType::Deleted)]
        );
        assert_eq!(
            evs[0].prev.as_ref().map(|p| p["data"]["v"].clone()),
            Some(json!(1))
        );
    }

    #[test]
    fn list_filters_by_namespace_and_resumes_after_a_key() {
        let mut s = Store::new();
        for (ns, n) in [("b", "1"), ("a", "2"), ("a", "1"), ("c", "1")] {
            s.put("pods", obj(ns, n, 0));
        }
        let names = |it: Vec<&Arc<Value>>| -> Vec<String> {
            it.iter()
                .map(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name")))
                .collect()
        };
        assert_eq!(
            names(s.list("pods", Some("a"), None).collect()),
            ["a/1", "a/2"]
        );
        assert_eq!(
            names(
                s.list("pods", None, Some(("a".into(), "2".into())))
                    .collect()
            ),
            ["b/1", "c/1"]
        );
        assert_eq!(
            names(
                s.list("pods", Some("a"), Some(("a".into(), "1".into())))
                    .collect()
            ),
            ["a/2"]
        );
        assert_eq!(s.list("nodes", None, None).count(), 0);
    }

    #[test]
    fn history_is_bounded_and_old_versions_expire() {
        let mut s = Store::new();
        for i in 0..(HISTORY as u32 + 10) {
            s.put("configmaps", obj("a", "x", i));
        }
        assert_eq!(s.events_since("configmaps", 5).err(), Some(11));
        assert_eq!(
            s.events_since("configmaps", 10).map(|e| e.len()).ok(),
            Some(HISTORY)
        );
        assert_eq!(
            s.events_since("configmaps", s.rv()).map(|e| e.len()).ok(),
            Some(0)
        );
    }
}

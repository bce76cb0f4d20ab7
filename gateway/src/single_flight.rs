//! One call per key at a time, its answer shared: the first request makes
//! the call, the requests that arrive meanwhile wait for it, and later ones
//! get the same answer while the owner's `reusable` rule says it is still
//! good. A failed call is not remembered (the next request calls again).
//! The browser session's refreshes and the proxy's assertions both use it.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

/// A key's call: in flight (empty), failed (empty, no one waiting) or done.
struct Entry<V> {
    made: Instant,
    cell: Arc<OnceCell<V>>,
}

/// The calls in flight or remembered, by key, at most `capacity` of them.
pub struct SingleFlight<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

impl<K, V> std::fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V: Clone> SingleFlight<K, V> {
    /// Past `capacity` entries, those no longer reusable go, then, if it is
    /// still full, every one no request is waiting on.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// `key`'s answer: a remembered one for which `reusable(age, answer)`
    /// holds, the one in flight, or `call`'s.
    pub async fn get<F, Fut, E>(
        &self,
        key: K,
        reusable: impl Fn(Duration, &V) -> bool,
        call: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = self.cell(key, &reusable);
        cell.get_or_try_init(call).await.cloned()
    }

    fn cell(&self, key: K, reusable: &impl Fn(Duration, &V) -> bool) -> Arc<OnceCell<V>> {
        let now = Instant::now();
        let live = |e: &Entry<V>| {
            e.cell
                .get()
                .is_none_or(|v| reusable(now.duration_since(e.made), v))
        };
        let mut entries = self.lock();
        if let Some(entry) = entries.get(&key)
            && live(entry)
        {
            return Arc::clone(&entry.cell);
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, e| live(e));
            if entries.len() >= self.capacity {
                entries.retain(|_, e| Arc::strong_count(&e.cell) > 1);
            }
        }
        let cell = Arc::new(OnceCell::new());
        entries.insert(
            key,
            Entry {
                made: now,
                cell: Arc::clone(&cell),
            },
        );
        cell
    }

    /// Drops every entry whose key `matches`.
    pub fn forget(&self, matches: impl Fn(&K) -> bool) {
        self.lock().retain(|key, _| !matches(key));
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

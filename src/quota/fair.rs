//! The bounded weighted-fair queue of one store's waiting requests
//! (self-clocked fair queueing): each request gets a virtual finish tag
//! `max(now_virtual - 1/weight, client's last tag) + 1/weight`, and the
//! lowest tag is served first. A client of weight 2 thus gets two turns for
//! every one of a weight-1 client while both wait, and one client's backlog
//! never pushes another's requests back. A client that was away (its
//! requests in flight, or a pause) keeps at most one turn of credit: it is
//! served at once when it comes back, so a client with one or two workers
//! and a slow upstream still gets its share, yet a client can never save up
//! turns to take later. A client's own requests keep their arrival order,
//! which is their deadline order (every request waits at most `max_wait_ms`).
//! Plain data; the waiting itself is in [`super`].

use std::collections::{BTreeMap, HashMap};

/// Virtual time of one turn at weight 1.
const TURN: u64 = 1_000_000_000;

#[derive(Debug)]
struct Entry<T> {
    client: String,
    item: T,
}

/// See the module docs. `T` is what a served request is handed.
#[derive(Debug)]
pub struct FairQueue<T> {
    /// (tag, seq) → entry; the first is served next.
    entries: BTreeMap<(u64, u64), Entry<T>>,
    /// seq → tag, to remove a request that gave up.
    tags: HashMap<u64, u64>,
    /// Each client's last tag and its step (TURN / weight).
    finish: HashMap<String, (u64, u64)>,
    virtual_now: u64,
    seq: u64,
    limit: usize,
}

/// The queue holds `limit` requests already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl<T> FairQueue<T> {
    pub fn new(limit: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            tags: HashMap::new(),
            finish: HashMap::new(),
            virtual_now: 0,
            seq: 0,
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Queues `item` for `client`; returns its sequence number (for [`remove`](Self::remove)).
    pub fn push(&mut self, client: &str, weight: u32, item: T) -> Result<u64, Full> {
        if self.entries.len() >= self.limit {
            return Err(Full);
        }
        let step = TURN / u64::from(weight.max(1));
        let last = self.finish.get(client).map_or(0, |(t, _)| *t);
        let tag = self.virtual_now.saturating_sub(step).max(last) + step;
        self.finish.insert(client.to_owned(), (tag, step));
        self.seq += 1;
        let seq = self.seq;
        self.entries.insert(
            (tag, seq),
            Entry {
                client: client.to_owned(),
                item,
            },
        );
        self.tags.insert(seq, tag);
        Ok(seq)
    }

    /// The client and sequence number of the next request to serve, skipping
    /// clients for which `skip` is true (capped for this window).
    pub fn peek(&self, skip: impl Fn(&str) -> bool) -> Option<(&str, u64)> {
        self.entries
            .iter()
            .find(|(_, e)| !skip(&e.client))
            .map(|((_, seq), e)| (e.client.as_str(), *seq))
    }

    /// The item of request `seq`, while it waits.
    pub fn get(&self, seq: u64) -> Option<&T> {
        let tag = self.tags.get(&seq)?;
        self.entries.get(&(*tag, seq)).map(|e| &e.item)
    }

    /// Takes request `seq` out to serve it; virtual time advances to its tag.
    pub fn serve(&mut self, seq: u64) -> Option<(String, T)> {
        let tag = self.tags.remove(&seq)?;
        let entry = self.entries.remove(&(tag, seq))?;
        self.virtual_now = self.virtual_now.max(tag);
        self.forget_idle(&entry.client);
        Some((entry.client, entry.item))
    }

    /// Takes request `seq` out unserved (it gave up); its turn is handed
    /// back when it was its client's last one.
    pub fn remove(&mut self, seq: u64) -> Option<T> {
        let tag = self.tags.remove(&seq)?;
        let entry = self.entries.remove(&(tag, seq))?;
        if let Some((last, step)) = self.finish.get_mut(&entry.client)
            && *last == tag
        {
            *last -= *step;
        }
        self.forget_idle(&entry.client);
        Some(entry.item)
    }

    /// Takes out unserved every request whose item matches `doomed`.
    pub fn remove_where(&mut self, doomed: impl Fn(&T) -> bool) -> Vec<T> {
        let seqs: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| doomed(&e.item))
            .map(|((_, seq), _)| *seq)
            .collect();
        // Newest first, so each client's turns are handed back in order.
        seqs.into_iter()
            .rev()
            .filter_map(|seq| self.remove(seq))
            .collect()
    }

    /// A client with nothing queued whose tag is a whole turn behind virtual
    /// time would get the full credit anyway; dropping it keeps the map small.
    /// (Dropped sooner, a client with one worker would be served first each
    /// time it came back.)
    fn forget_idle(&mut self, client: &str) {
        if self
            .finish
            .get(client)
            .is_some_and(|(t, step)| *t + *step <= self.virtual_now)
            && !self.entries.values().any(|e| e.client == client)
        {
            self.finish.remove(client);
        }
    }
}

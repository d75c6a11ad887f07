//! The aggregates a saga batch works on: loaded together (a few queries for the whole batch,
//! not one per step), decided on in memory, and appended together at the end, in the order the
//! steps decided them (which becomes their log order).
//!
//! States outlive a batch in `AggregateCache`, so a hot product is not read and decoded again
//! for every order: a cached state is brought up to date by reading only the events after its
//! version, and a stale one is caught anyway by the version check of the append (the batch then
//! fails, its aggregates are dropped from the cache, and it is retried).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use domain::{Aggregate, StreamType, customer::Customer, order::Order, product::Product};
use event_store::{Loaded, Metadata, NewEvent, StoreError, StreamRequest, load_streams, snapshot};
use sqlx::PgConnection;
use uuid::Uuid;

use super::SagaError;

/// Aggregates kept between batches, per kind. Bounded: beyond `CAPACITY` states it starts
/// afresh (the states are only a cache of the log).
#[derive(Default)]
pub struct AggregateCache {
    orders: Mutex<HashMap<Uuid, Loaded<Order>>>,
    products: Mutex<HashMap<Uuid, Loaded<Product>>>,
    customers: Mutex<HashMap<Uuid, Loaded<Customer>>>,
}

const CAPACITY: usize = 50_000;

/// The aggregates a saga works on, with the unit of work and cache slot of each kind.
pub trait SagaAggregate: Aggregate {
    fn cached(cache: &AggregateCache) -> &Mutex<HashMap<Uuid, Loaded<Self>>>;
    fn tracked(unit: &mut UnitOfWork) -> &mut Tracked<Self>;
}

impl SagaAggregate for Order {
    fn cached(cache: &AggregateCache) -> &Mutex<HashMap<Uuid, Loaded<Self>>> {
        &cache.orders
    }
    fn tracked(unit: &mut UnitOfWork) -> &mut Tracked<Self> {
        &mut unit.orders
    }
}

impl SagaAggregate for Product {
    fn cached(cache: &AggregateCache) -> &Mutex<HashMap<Uuid, Loaded<Self>>> {
        &cache.products
    }
    fn tracked(unit: &mut UnitOfWork) -> &mut Tracked<Self> {
        &mut unit.products
    }
}

impl SagaAggregate for Customer {
    fn cached(cache: &AggregateCache) -> &Mutex<HashMap<Uuid, Loaded<Self>>> {
        &cache.customers
    }
    fn tracked(unit: &mut UnitOfWork) -> &mut Tracked<Self> {
        &mut unit.customers
    }
}

/// The aggregates of one kind in a unit of work: as loaded, and as the batch left them.
pub struct Tracked<A> {
    states: HashMap<Uuid, Loaded<A>>,
    /// The version each had when loaded (a snapshot is due when a multiple is crossed).
    loaded_versions: HashMap<Uuid, i64>,
}

impl<A> Default for Tracked<A> {
    fn default() -> Self {
        Self {
            states: HashMap::new(),
            loaded_versions: HashMap::new(),
        }
    }
}

#[derive(Default)]
pub struct UnitOfWork {
    orders: Tracked<Order>,
    products: Tracked<Product>,
    customers: Tracked<Customer>,
    /// Every event decided so far, in order.
    pending: Vec<NewEvent>,
}

impl UnitOfWork {
    /// Loads these aggregates of kind `A` (those not loaded yet), from `cache` where it holds
    /// them (reading only the newer events) and from snapshots and events otherwise, in one
    /// query. Ids whose stream holds another kind are left out.
    pub async fn load<A: SagaAggregate>(
        &mut self,
        conn: &mut PgConnection,
        cache: &AggregateCache,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), SagaError> {
        let wanted: Vec<Uuid> = {
            let tracked = A::tracked(self);
            let mut seen = HashSet::new();
            ids.into_iter()
                .filter(|id| !tracked.states.contains_key(id) && seen.insert(*id))
                .collect()
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let mut held: Vec<Option<Loaded<A>>> = {
            let mut cached = A::cached(cache)
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            wanted.iter().map(|id| cached.remove(id)).collect()
        };
        let requests: Vec<StreamRequest> = wanted
            .iter()
            .zip(&held)
            .map(|(id, held)| match held {
                Some(loaded) => StreamRequest::after::<A>(*id, loaded.version),
                None => StreamRequest::of::<A>(*id, true),
            })
            .collect();
        let streams = load_streams(conn, &requests).await?;
        for ((id, stored), held) in wanted.into_iter().zip(streams).zip(held.iter_mut()) {
            let loaded = match held.take() {
                Some(held) => stored.fold_onto(held),
                None => stored.fold::<A>(conn).await,
            };
            let loaded = match loaded {
                Ok(loaded) => loaded,
                // Named in an event as the wrong kind: for this kind it does not exist.
                Err(StoreError::OtherStreamType { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            let tracked = A::tracked(self);
            tracked.loaded_versions.insert(id, loaded.version);
            tracked.states.insert(id, loaded);
        }
        Ok(())
    }

    /// The state of a loaded aggregate (the default, not existing, when it was not found).
    pub fn state<A: SagaAggregate>(&mut self, id: Uuid) -> A {
        A::tracked(self)
            .states
            .get(&id)
            .map(|loaded| loaded.state.clone())
            .unwrap_or_default()
    }

    pub fn is_loaded<A: SagaAggregate>(&mut self, id: Uuid) -> bool {
        A::tracked(self).states.contains_key(&id)
    }

    /// Runs `decide` on the aggregate's current state (it must be loaded) and records the
    /// events it decided, with their versions, to be appended at the end.
    pub fn decide<A, D>(
        &mut self,
        id: Uuid,
        metadata: &Metadata,
        decide: D,
    ) -> Result<(A, Vec<A::Event>), SagaError>
    where
        A: SagaAggregate,
        D: FnOnce(&A) -> Result<Vec<A::Event>, domain::DomainError>,
    {
        let tracked = A::tracked(self);
        let loaded = tracked.states.entry(id).or_insert_with(|| {
            // Never loaded: a new stream (the caller loaded every existing one).
            Loaded::default()
        });
        tracked.loaded_versions.entry(id).or_insert(0);
        let events = decide(&loaded.state).map_err(event_store::CommandError::Rejected)?;
        let mut appended = Vec::with_capacity(events.len());
        for event in &events {
            loaded.version += 1;
            appended.push(NewEvent::new(
                id,
                A::STREAM_TYPE,
                loaded.version,
                event,
                metadata,
            )?);
            loaded.state = std::mem::take(&mut loaded.state).evolve(event);
        }
        let state = loaded.state.clone();
        self.pending.extend(appended);
        Ok((state, events))
    }

    /// Appends every decided event in one statement and writes the snapshots that fell due.
    pub async fn flush(
        &mut self,
        conn: &mut PgConnection,
        snapshot_every: i64,
    ) -> Result<(), SagaError> {
        event_store::append_many(conn, &self.pending).await?;
        if snapshot_every > 0 {
            write_due_snapshots(conn, &self.orders, snapshot_every).await?;
            write_due_snapshots(conn, &self.products, snapshot_every).await?;
            write_due_snapshots(conn, &self.customers, snapshot_every).await?;
        }
        Ok(())
    }

    /// After a commit: the cache keeps the states as the batch left them.
    pub fn commit_to(self, cache: &AggregateCache) {
        keep(cache, self.orders);
        keep(cache, self.products);
        keep(cache, self.customers);
    }

    pub fn appended(&self) -> usize {
        self.pending.len()
    }

    /// Which streams of `kind` the batch decided events for.
    pub fn touched(&self, kind: StreamType) -> impl Iterator<Item = Uuid> + '_ {
        self.pending
            .iter()
            .filter(move |event| event.stream_type == kind)
            .map(|event| event.stream_id)
    }
}

async fn write_due_snapshots<A: Aggregate>(
    conn: &mut PgConnection,
    tracked: &Tracked<A>,
    every: i64,
) -> Result<(), SagaError> {
    for (id, loaded) in &tracked.states {
        let before = tracked.loaded_versions.get(id).copied().unwrap_or(0);
        if snapshot::is_due(before, loaded.version, every) {
            snapshot::write(conn, *id, loaded).await?;
        }
    }
    Ok(())
}

fn keep<A: SagaAggregate>(cache: &AggregateCache, tracked: Tracked<A>) {
    let mut cached = A::cached(cache)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cached.len() + tracked.states.len() > CAPACITY {
        cached.clear();
    }
    cached.extend(tracked.states);
}

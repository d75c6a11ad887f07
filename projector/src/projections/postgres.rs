//! PostgreSQL read models, applied together. Every PostgreSQL read model reads the same log, so
//! one subscription (`PgReadModels`) reads each batch once and applies it to all of them in one
//! transaction, which moves every one's checkpoint in one statement, under one lease: a crash
//! anywhere either keeps all of a batch's effects and checkpoints or none (the batch is simply
//! read again), and a process that lost the partition cannot commit. Applied one by one, each
//! read model read the horizon and its batch, looked up its live generation, began, moved its
//! checkpoint and committed on its own: five times the round trips and commits for the same rows.
//!
//! Each read model still has a checkpoint of its own (`/projections`, `min_position` and
//! rebuilds see it as before): it moves only over the events after where that read model stands,
//! so a read model that a rebuild switched over further than the others skips what it already
//! holds, and each row says which generation of the tables it was applied to, so an apply that
//! raced a rebuild's switch-over is refused instead of writing into the retired tables. Rows are
//! keyed by each event's stream, so the partitions never write the same row.

use std::{collections::HashMap, future::Future, marker::PhantomData, pin::Pin, sync::Mutex};

use domain::StreamType;
use event_store::{
    Batch, PartitionKey, RecordedEvent,
    checkpoints::{self, Lease, Move, Standing},
};
use sqlx::{PgConnection, PgPool};

use super::{
    document_versions::DocumentVersions, event_feed::EventFeed, order_history::OrderHistory,
    order_list::OrderList, product_catalog::ProductCatalog,
};
use crate::{
    ProjectionError,
    metrics::Observed,
    subscription::{Member, Subscription},
};

/// A read model stored in `projection_store.<table>_g<generation>` and served through the view
/// `read_model.<table>`.
pub trait PgReadModel: Send + Sync + 'static {
    const NAME: &'static str;
    const TABLE: &'static str;
    /// The streams whose events it folds (all when empty); it is handed every event of a batch
    /// and skips the others itself.
    const STREAM_TYPES: &'static [StreamType];

    /// Writes the effect of `events` into the tables of `generation`, and returns what it
    /// observed for the metrics (recorded only once the live copy's batch has committed).
    fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<Observed, ProjectionError>> + Send;

    /// The query of the view `read_model.<table>` over the table of one generation.
    fn view_query(generation_table: &str) -> String {
        format!("SELECT * FROM {generation_table}")
    }
}

type Applying<'a> = Pin<Box<dyn Future<Output = Result<Observed, ProjectionError>> + Send + 'a>>;

/// A `PgReadModel` as the group holds it.
trait Model: Send + Sync {
    fn member(&self) -> Member;
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        generation: i32,
        events: &'a [RecordedEvent],
    ) -> Applying<'a>;
}

struct Of<M>(PhantomData<M>);

impl<M: PgReadModel> Model for Of<M> {
    fn member(&self) -> Member {
        Member {
            name: M::NAME,
            stream_types: M::STREAM_TYPES,
        }
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        generation: i32,
        events: &'a [RecordedEvent],
    ) -> Applying<'a> {
        Box::pin(M::apply_batch(conn, generation, events))
    }
}

/// Every PostgreSQL read model, applied as one subscription.
pub struct PgReadModels {
    pool: PgPool,
    models: Vec<Box<dyn Model>>,
    /// Where each model's partition stood after this process last read or moved it, in the
    /// order of `models`, by partition. Only a hint for the next apply: a stale one makes the
    /// checkpoint UPDATE match fewer rows, and the batch is refused and read again.
    standings: Mutex<HashMap<i32, Vec<Standing>>>,
}

impl PgReadModels {
    /// The name the group's worker logs under; each member keeps its own in `/projections`.
    pub const NAME: &'static str = "postgres_read_models";

    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            models: vec![
                Box::new(Of::<OrderList>(PhantomData)),
                Box::new(Of::<ProductCatalog>(PhantomData)),
                Box::new(Of::<OrderHistory>(PhantomData)),
                Box::new(Of::<EventFeed>(PhantomData)),
                Box::new(Of::<DocumentVersions>(PhantomData)),
            ],
            standings: Mutex::new(HashMap::new()),
        }
    }

    /// The names of the read models it applies.
    pub fn names(&self) -> Vec<&'static str> {
        self.models
            .iter()
            .map(|model| model.member().name)
            .collect()
    }

    /// Reads where each model's partition stands, in the order of `models`.
    async fn read_standings(&self, partition: i32) -> Result<Vec<Standing>, ProjectionError> {
        let names = self.names();
        let mut rows: HashMap<String, Standing> =
            checkpoints::standings(&self.pool, &names, partition)
                .await?
                .into_iter()
                .map(|standing| (standing.name.clone(), standing))
                .collect();
        let ordered = names
            .iter()
            .map(|name| rows.remove(*name))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ProjectionError::Corrupt(format!(
                    "partition {partition} of the PostgreSQL read models has no checkpoint for each of {names:?}"
                ))
            })?;
        self.remember(partition, Some(ordered.clone()));
        Ok(ordered)
    }

    fn remember(&self, partition: i32, standings: Option<Vec<Standing>>) {
        let mut cached = self
            .standings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match standings {
            Some(standings) => cached.insert(partition, standings),
            None => cached.remove(&partition),
        };
    }

    fn remembered(&self, partition: i32) -> Option<Vec<Standing>> {
        self.standings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&partition)
            .cloned()
    }
}

impl Subscription for PgReadModels {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn members(&self) -> Vec<Member> {
        self.models.iter().map(|model| model.member()).collect()
    }

    /// What any of them reads: every stream, as soon as one of them reads all.
    fn stream_types(&self) -> Vec<StreamType> {
        let members = self.members();
        if members.iter().any(|member| member.stream_types.is_empty()) {
            return Vec::new();
        }
        let mut kinds = Vec::new();
        for kind in members.iter().flat_map(|member| member.stream_types) {
            if !kinds.contains(kind) {
                kinds.push(*kind);
            }
        }
        kinds
    }

    fn partition_key(&self) -> PartitionKey {
        PartitionKey::Stream
    }

    /// Every checkpoint it moves is fenced at its position and generation: a rebuild's
    /// switch-over makes the next apply fail and the worker ask again.
    fn position_moves_elsewhere(&self) -> bool {
        false
    }

    /// Where the partition of the read model furthest behind stands: the group reads from there.
    async fn position(&self, lease: &Lease) -> Result<i64, ProjectionError> {
        let standings = self.read_standings(lease.partition).await?;
        Ok(standings
            .iter()
            .map(|standing| standing.position)
            .min()
            .unwrap_or(0))
    }

    /// Applies the batch to every model after where it stands. Whatever goes wrong (a fenced
    /// checkpoint that moved, tables a rebuild dropped meanwhile, a lost connection), the
    /// standings are read again before the next try.
    async fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        let applied = self.apply_after_standings(lease, from, batch).await;
        if !matches!(applied, Ok(true)) {
            self.remember(lease.partition, None);
        }
        applied
    }
}

impl PgReadModels {
    async fn apply_after_standings(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        let standings = match self.remembered(lease.partition) {
            Some(standings) => standings,
            None => self.read_standings(lease.partition).await?,
        };
        // The batch starts at `from`: a read model that stands before it would miss events.
        if standings.iter().any(|standing| standing.position < from) {
            return Ok(false);
        }
        let moves: Vec<Move<'_>> = standings
            .iter()
            .map(|standing| Move {
                subscription: &standing.name,
                from: standing.position,
                to: standing.position.max(batch.read_to),
                generation: standing.generation,
            })
            .collect();
        // Each model gets the batch's events after where it stands (events are in position order).
        let unseen: Vec<&[RecordedEvent]> = standings
            .iter()
            .map(|standing| {
                let first = batch
                    .events
                    .partition_point(|event| event.position <= standing.position);
                &batch.events[first..]
            })
            .collect();
        let advanced = if unseen.iter().all(|events| events.is_empty()) {
            // Nothing to write: the checkpoints move alone, in one statement.
            checkpoints::advance_all_fenced(&self.pool, lease, &moves).await?
        } else {
            let mut tx = self.pool.begin().await?;
            let mut observed = Vec::with_capacity(self.models.len());
            for ((model, standing), events) in self.models.iter().zip(&standings).zip(&unseen) {
                if !events.is_empty() {
                    observed.push(model.apply(&mut tx, standing.generation, events).await?);
                }
            }
            let advanced = checkpoints::advance_all_fenced(&mut *tx, lease, &moves).await?;
            if advanced {
                tx.commit().await?;
                for observation in observed {
                    observation.record();
                }
            }
            advanced
        };
        if !advanced {
            return Ok(false);
        }
        let reached: Vec<i64> = moves.iter().map(|moved| moved.to).collect();
        let moved = standings
            .iter()
            .zip(reached)
            .map(|(standing, position)| Standing {
                position,
                ..standing.clone()
            })
            .collect();
        self.remember(lease.partition, Some(moved));
        Ok(true)
    }
}

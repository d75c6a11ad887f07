//! Orchestration (`SAGA_MODE=orchestration`, the default): one coordinator drives each order,
//! keeping one instance per order in `projector.order_sagas`.
//!
//! ```text
//!  OrderPlaced ─▶ reserve line 1 ─▶ reserved ─▶ reserve line 2 … ─▶ reserve credit
//!                      │                                                │
//!                      └─ refused: release lines held,                 ├─ reserved ─▶ approve
//!                         reject (insufficient_stock)                   └─ refused: release all stock,
//!                                                                          reject (credit_limit_exceeded)
//!  OrderCancelled ─▶ release all stock and credit
//!  OrderShipped   ─▶ ship every line's stock
//! ```
//!
//! Every aggregate lives in this one event store, so a command's outcome is known the moment
//! it is decided: the orchestrator takes the next step on that answer, in the same
//! transaction, instead of waiting to read the reply back from the log. An order is decided in
//! one step, its events recorded one by one (each with the event that caused it). The replies
//! still reach the orchestrator through the log; an instance left waiting for one (by an older
//! version of this code) is driven on from where it stands when its reply arrives.

use std::collections::{HashMap, HashSet};

use domain::{
    StreamType,
    customer::{CreditHold, CustomerCommand},
    order::{Order, OrderCommand, OrderEvent, RejectionReason},
    product::StockHold,
};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{SagaError, SagaHandler, Step};

pub struct Orchestrator;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    product_id: Uuid,
    quantity: i64,
}

/// One order's saga instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    customer_id: Uuid,
    lines: Vec<Line>,
    total_cents: i64,
    state: String,
    /// How many lines (from the first) hold stock.
    reserved_lines: i32,
    correlation_id: Option<String>,
}

impl Instance {
    /// The products of its lines, in order.
    fn products(&self) -> Vec<Uuid> {
        self.lines.iter().map(|line| line.product_id).collect()
    }

    fn reserved_products(&self) -> Vec<Uuid> {
        self.products()
            .into_iter()
            .take(usize::try_from(self.reserved_lines).unwrap_or(0))
            .collect()
    }
}

const RESERVING_STOCK: &str = "reserving_stock";
const RESERVING_CREDIT: &str = "reserving_credit";

/// The instances of a batch's orders: read in one query, written back in one.
#[derive(Debug, Default)]
pub struct Instances {
    rows: HashMap<Uuid, Instance>,
    /// The orders whose instance was read from the table (the others are new).
    stored: HashSet<Uuid>,
    changed: HashSet<Uuid>,
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    order_id: Uuid,
    customer_id: Uuid,
    lines: sqlx::types::Json<Vec<Line>>,
    total_cents: i64,
    state: String,
    reserved_lines: i32,
    correlation_id: Option<String>,
}

impl Instances {
    pub async fn load(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<Self, SagaError> {
        let rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT order_id, customer_id, lines, total_cents, state, reserved_lines, correlation_id
             FROM projector.order_sagas WHERE order_id = ANY($1)",
        )
        .bind(order_ids)
        .fetch_all(conn)
        .await?;
        Ok(Self {
            stored: rows.iter().map(|row| row.order_id).collect(),
            rows: rows
                .into_iter()
                .map(|row| {
                    let instance = Instance {
                        customer_id: row.customer_id,
                        lines: row.lines.0,
                        total_cents: row.total_cents,
                        state: row.state,
                        reserved_lines: row.reserved_lines,
                        correlation_id: row.correlation_id,
                    };
                    (row.order_id, instance)
                })
                .collect(),
            changed: HashSet::new(),
        })
    }

    fn get(&self, order_id: Uuid) -> Option<Instance> {
        self.rows.get(&order_id).cloned()
    }

    /// True while the order's instance waits for a reply (left so by an older version).
    fn waits_for_a_reply(&self, order_id: Uuid) -> bool {
        self.rows.get(&order_id).is_some_and(|instance| {
            matches!(instance.state.as_str(), RESERVING_STOCK | RESERVING_CREDIT)
        })
    }

    fn put(&mut self, order_id: Uuid, instance: Instance) {
        self.rows.insert(order_id, instance);
        self.changed.insert(order_id);
    }

    /// Writes the instances the batch created or changed, in one statement: the stored ones
    /// updated, the new ones inserted plainly (an order's instance is written by the one saga
    /// partition its order belongs to, so a new one cannot be there already; a plain INSERT is
    /// one WAL record where `ON CONFLICT` inserts speculatively and confirms).
    pub async fn write(&self, conn: &mut PgConnection) -> Result<(), SagaError> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let (
            mut ids,
            mut stored,
            mut customers,
            mut lines,
            mut totals,
            mut states,
            mut reserved,
            mut correlations,
        ) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for id in &self.changed {
            let Some(instance) = self.rows.get(id) else {
                continue;
            };
            ids.push(*id);
            stored.push(self.stored.contains(id));
            customers.push(instance.customer_id);
            lines.push(serde_json::to_value(&instance.lines)?);
            totals.push(instance.total_cents);
            states.push(instance.state.as_str());
            reserved.push(instance.reserved_lines);
            correlations.push(instance.correlation_id.as_deref());
        }
        sqlx::query(
            "WITH changed AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::boolean[], $3::uuid[], $4::jsonb[], $5::bigint[],
                                      $6::text[], $7::integer[], $8::text[])
                     AS c(order_id, stored, customer_id, lines, total_cents, state, reserved_lines,
                          correlation_id)
             ), updated AS (
                 UPDATE projector.order_sagas AS s
                 SET state = c.state, reserved_lines = c.reserved_lines, updated_at = now()
                 FROM changed c WHERE c.stored AND s.order_id = c.order_id
             )
             INSERT INTO projector.order_sagas
                 (order_id, customer_id, lines, total_cents, state, reserved_lines, correlation_id)
             SELECT order_id, customer_id, lines, total_cents, state, reserved_lines, correlation_id
             FROM changed WHERE NOT stored",
        )
        .bind(ids)
        .bind(stored)
        .bind(customers)
        .bind(lines)
        .bind(totals)
        .bind(states)
        .bind(reserved)
        .bind(correlations)
        .execute(conn)
        .await?;
        Ok(())
    }
}

impl SagaHandler for Orchestrator {
    const NAME: &'static str = "order_saga";
    const KEEPS_INSTANCES: bool = true;
    const WRITES: &'static [StreamType] =
        &[StreamType::Product, StreamType::Customer, StreamType::Order];
    const EVENT_TYPES: &'static [&'static str] = &[
        "OrderPlaced",
        "OrderCancelled",
        "OrderShipped",
        "StockReserved",
        "StockReservationRejected",
        "CreditReserved",
        "CreditReservationRejected",
    ];

    /// An order's events always; a reply only while its instance still waits for one (left by
    /// an older version): an order decided in one step has no use for its replies.
    fn needs(&self, event: &RecordedEvent, instances: &Instances) -> bool {
        match event.stream_type {
            StreamType::Order => true,
            StreamType::Product | StreamType::Customer => event
                .order_id()
                .is_some_and(|order_id| instances.waits_for_a_reply(order_id)),
        }
    }

    async fn handle(&self, step: &mut Step<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
        match event.stream_type {
            StreamType::Order => on_order_event(step, event).await,
            // A reply this orchestrator normally handled when it decided it; an instance still
            // waiting for it (left by an older version) is driven on.
            StreamType::Product | StreamType::Customer => match event.order_id() {
                Some(order_id) => drive(step, order_id).await,
                None => Ok(()),
            },
        }
    }
}

async fn on_order_event(step: &mut Step<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
    let order_id = event.stream_id;
    match event.decode::<OrderEvent>()? {
        OrderEvent::OrderPlaced {
            customer_id,
            lines,
            total_cents,
        } => {
            if step.instances().get(order_id).is_some() {
                return Ok(()); // handled before (a batch read again)
            }
            // Normally the order is pending; but if this step runs late (a parked event
            // retried), the order may have been cancelled meanwhile: then it holds nothing and
            // must not start reserving.
            let order: Order = step.load(order_id).await?;
            let state = if order.awaits_reservations() {
                RESERVING_STOCK
            } else {
                order.status.as_str()
            };
            let instance = Instance {
                customer_id,
                lines: lines
                    .iter()
                    .map(|line| Line {
                        product_id: line.product_id,
                        quantity: line.quantity,
                    })
                    .collect(),
                total_cents,
                state: state.to_owned(),
                reserved_lines: 0,
                correlation_id: event.correlation_id().map(str::to_owned),
            };
            step.instances().put(order_id, instance);
            drive(step, order_id).await
        }
        OrderEvent::OrderCancelled { .. } => {
            let Some(mut instance) = step.instances().get(order_id) else {
                return Ok(());
            };
            step.release_stock(order_id, instance.products()).await?;
            step.customer(
                instance.customer_id,
                CustomerCommand::ReleaseCredit { order_id },
            )
            .await?;
            instance.state = "cancelled".to_owned();
            step.instances().put(order_id, instance);
            Ok(())
        }
        OrderEvent::OrderShipped {} => {
            let Some(mut instance) = step.instances().get(order_id) else {
                return Ok(());
            };
            step.ship_stock(order_id, instance.products()).await?;
            instance.state = "shipped".to_owned();
            step.instances().put(order_id, instance);
            Ok(())
        }
        OrderEvent::OrderApproved {} | OrderEvent::OrderRejected { .. } => Ok(()),
    }
}

/// Takes the order's saga as far as it goes: each line's stock, then the credit, then the
/// decision, acting on each command's outcome at once.
async fn drive(step: &mut Step<'_>, order_id: Uuid) -> Result<(), SagaError> {
    let Some(mut instance) = step.instances().get(order_id) else {
        return Ok(());
    };
    let before = instance.clone();
    loop {
        if instance.state == RESERVING_STOCK {
            let next = usize::try_from(instance.reserved_lines).unwrap_or(usize::MAX);
            let Some(line) = instance.lines.get(next).cloned() else {
                instance.state = RESERVING_CREDIT.to_owned();
                continue;
            };
            match step
                .reserve_stock(order_id, line.product_id, line.quantity)
                .await?
            {
                Some(StockHold::Reserved(_)) => instance.reserved_lines += 1,
                _ => {
                    step.release_stock(order_id, instance.reserved_products())
                        .await?;
                    reject(step, order_id, RejectionReason::InsufficientStock).await?;
                    instance.state = "rejected".to_owned();
                }
            }
        } else if instance.state == RESERVING_CREDIT {
            match step
                .reserve_credit(order_id, instance.customer_id, instance.total_cents)
                .await?
            {
                Some(CreditHold::Reserved(_)) => {
                    step.order(order_id, OrderCommand::Approve).await?;
                    instance.state = "approved".to_owned();
                }
                _ => {
                    step.release_stock(order_id, instance.products()).await?;
                    reject(step, order_id, RejectionReason::CreditLimitExceeded).await?;
                    instance.state = "rejected".to_owned();
                }
            }
        } else {
            break;
        }
    }
    if instance != before {
        step.instances().put(order_id, instance);
    }
    Ok(())
}

async fn reject(
    step: &mut Step<'_>,
    order_id: Uuid,
    reason: RejectionReason,
) -> Result<(), SagaError> {
    step.order(order_id, OrderCommand::Reject { reason })
        .await?;
    Ok(())
}

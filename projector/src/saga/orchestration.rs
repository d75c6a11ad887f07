//! Orchestration (`SAGA_MODE=orchestration`, the default): one coordinator drives each order
//! step by step, keeping one instance per order in `projector.order_sagas`.
//!
//! ```text
//!  OrderPlaced ─▶ reserve line 1 ─▶ StockReserved ─▶ reserve line 2 … ─▶ reserve credit
//!                      │                                                     │
//!                      └─ StockReservationRejected:                          ├─ CreditReserved ─▶ approve
//!                         release lines held, reject (insufficient_stock)    └─ CreditReservationRejected:
//!                                                                               release all stock,
//!  OrderCancelled ─▶ release all stock and credit                                reject (credit_limit_exceeded)
//!  OrderShipped   ─▶ ship every line's stock
//! ```

use domain::{
    StreamType,
    customer::{CustomerCommand, CustomerEvent},
    order::{Order, OrderCommand, OrderEvent, RejectionReason},
    product::ProductEvent,
};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Issuer, SagaError, SagaHandler};

pub struct Orchestrator;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    product_id: Uuid,
    quantity: i64,
}

/// One order's saga instance, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Instance {
    customer_id: Uuid,
    lines: sqlx::types::Json<Vec<Line>>,
    total_cents: i64,
    state: String,
    reserved_lines: i32,
}

impl Instance {
    /// The products of its lines, in order.
    fn products(&self) -> Vec<Uuid> {
        self.lines.iter().map(|line| line.product_id).collect()
    }
}

const RESERVING_STOCK: &str = "reserving_stock";
const RESERVING_CREDIT: &str = "reserving_credit";

impl SagaHandler for Orchestrator {
    const NAME: &'static str = "order_saga";

    async fn handle(
        &self,
        issuer: &mut Issuer<'_>,
        event: &RecordedEvent,
    ) -> Result<(), SagaError> {
        match event.stream_type {
            StreamType::Order => on_order_event(issuer, event).await,
            StreamType::Product => on_product_event(issuer, event).await,
            StreamType::Customer => on_customer_event(issuer, event).await,
        }
    }
}

async fn on_order_event(issuer: &mut Issuer<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
    let order_id = event.stream_id;
    match event.decode::<OrderEvent>()? {
        OrderEvent::OrderPlaced {
            customer_id,
            lines,
            total_cents,
        } => {
            let lines: Vec<Line> = lines
                .iter()
                .map(|line| Line {
                    product_id: line.product_id,
                    quantity: line.quantity,
                })
                .collect();
            // Normally the order is pending; but if this step runs late (a parked event
            // retried), the order may have been cancelled meanwhile: then it holds nothing and
            // must not start reserving.
            let order: Order = issuer.load(order_id).await?;
            let state = if order.awaits_reservations() {
                RESERVING_STOCK
            } else {
                order.status.as_str()
            };
            let created = sqlx::query(
                "INSERT INTO projector.order_sagas (order_id, customer_id, lines, total_cents, state, correlation_id)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(customer_id)
            .bind(sqlx::types::Json(&lines))
            .bind(total_cents)
            .bind(state)
            .bind(event.correlation_id())
            .execute(issuer.conn())
            .await?
            .rows_affected();
            if created == 1
                && state == RESERVING_STOCK
                && let Some(first) = lines.first()
            {
                issuer
                    .reserve_stock(order_id, first.product_id, first.quantity)
                    .await?;
            }
            Ok(())
        }
        OrderEvent::OrderCancelled { .. } => {
            let Some(instance) = load(issuer.conn(), order_id).await? else {
                return Ok(());
            };
            issuer.release_stock(order_id, instance.products()).await?;
            issuer
                .customer(
                    instance.customer_id,
                    CustomerCommand::ReleaseCredit { order_id },
                )
                .await?;
            set_state(
                issuer.conn(),
                order_id,
                "cancelled",
                instance.reserved_lines,
            )
            .await
        }
        OrderEvent::OrderShipped {} => {
            let Some(instance) = load(issuer.conn(), order_id).await? else {
                return Ok(());
            };
            issuer.ship_stock(order_id, instance.products()).await?;
            set_state(issuer.conn(), order_id, "shipped", instance.reserved_lines).await
        }
        OrderEvent::OrderApproved {} | OrderEvent::OrderRejected { .. } => Ok(()),
    }
}

async fn on_product_event(issuer: &mut Issuer<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
    let (order_id, reserved) = match event.decode::<ProductEvent>()? {
        ProductEvent::StockReserved { order_id, .. } => (order_id, true),
        ProductEvent::StockReservationRejected { order_id, .. } => (order_id, false),
        _ => return Ok(()),
    };
    let Some(instance) = load(issuer.conn(), order_id).await? else {
        return Ok(());
    };
    let expected_line = instance.lines.get(instance.reserved_lines as usize);
    if instance.state != RESERVING_STOCK
        || expected_line.map(|line| line.product_id) != Some(event.stream_id)
    {
        return Ok(()); // a reply this instance no longer waits for (e.g. it was cancelled meanwhile)
    }
    if !reserved {
        issuer
            .release_stock(
                order_id,
                instance
                    .products()
                    .into_iter()
                    .take(instance.reserved_lines as usize),
            )
            .await?;
        issuer
            .order(
                order_id,
                OrderCommand::Reject {
                    reason: RejectionReason::InsufficientStock,
                },
            )
            .await?;
        return set_state(issuer.conn(), order_id, "rejected", instance.reserved_lines).await;
    }
    let reserved_lines = instance.reserved_lines + 1;
    match instance.lines.get(reserved_lines as usize) {
        Some(next) => {
            issuer
                .reserve_stock(order_id, next.product_id, next.quantity)
                .await?;
            set_state(issuer.conn(), order_id, RESERVING_STOCK, reserved_lines).await
        }
        None => {
            issuer
                .reserve_credit(order_id, instance.customer_id, instance.total_cents)
                .await?;
            set_state(issuer.conn(), order_id, RESERVING_CREDIT, reserved_lines).await
        }
    }
}

async fn on_customer_event(
    issuer: &mut Issuer<'_>,
    event: &RecordedEvent,
) -> Result<(), SagaError> {
    let (order_id, reserved) = match event.decode::<CustomerEvent>()? {
        CustomerEvent::CreditReserved { order_id, .. } => (order_id, true),
        CustomerEvent::CreditReservationRejected { order_id, .. } => (order_id, false),
        _ => return Ok(()),
    };
    let Some(instance) = load(issuer.conn(), order_id).await? else {
        return Ok(());
    };
    if instance.state != RESERVING_CREDIT {
        return Ok(());
    }
    if reserved {
        issuer.order(order_id, OrderCommand::Approve).await?;
        set_state(issuer.conn(), order_id, "approved", instance.reserved_lines).await
    } else {
        issuer.release_stock(order_id, instance.products()).await?;
        issuer
            .order(
                order_id,
                OrderCommand::Reject {
                    reason: RejectionReason::CreditLimitExceeded,
                },
            )
            .await?;
        set_state(issuer.conn(), order_id, "rejected", instance.reserved_lines).await
    }
}

async fn load(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Instance>, SagaError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, lines, total_cents, state, reserved_lines FROM projector.order_sagas
         WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?)
}

async fn set_state(
    conn: &mut PgConnection,
    order_id: Uuid,
    state: &str,
    reserved_lines: i32,
) -> Result<(), SagaError> {
    sqlx::query("UPDATE projector.order_sagas SET state = $2, reserved_lines = $3, updated_at = now() WHERE order_id = $1")
        .bind(order_id)
        .bind(state)
        .bind(reserved_lines)
        .execute(conn)
        .await?;
    Ok(())
}

//! Choreography (`SAGA_MODE=choreography`): no coordinator and no saga state. Three handlers,
//! one per aggregate, each a subscription of its own, react to the others' events and read
//! what they need from the aggregates themselves:
//!
//! ```text
//!  stock_handler   OrderPlaced                  ─▶ reserve each line in turn; on a refusal,
//!                                                  release the lines reserved
//!                  StockReserved (order ended)   ─▶ release it (the order was cancelled or rejected)
//!                  StockReservationRejected, CreditReservationRejected, OrderCancelled ─▶ release every line
//!                  OrderShipped                  ─▶ ship every line
//!  credit_handler  StockReserved of the last line (order pending) ─▶ reserve credit
//!                  OrderCancelled                ─▶ release credit
//!  order_handler   CreditReserved                ─▶ approve
//!                  StockReservationRejected      ─▶ reject (insufficient_stock)
//!                  CreditReservationRejected     ─▶ reject (credit_limit_exceeded)
//! ```
//!
//! A handler that reserves something also releases it, so it always processes the release
//! after its own reservation; that is what keeps a racing cancel from leaving anything held.

use domain::{
    StreamType,
    customer::{CustomerCommand, CustomerEvent},
    order::{Order, OrderCommand, OrderEvent, OrderStatus, RejectionReason},
    product::{ProductEvent, StockHold},
};
use event_store::RecordedEvent;
use uuid::Uuid;

use super::{SagaError, SagaHandler, Step};

/// The product side: stock.
pub struct StockHandler;
/// The customer side: credit.
pub struct CreditHandler;
/// The order side: approval and rejection.
pub struct OrderHandler;

/// The order an event of another stream concerns, and the event, decoded.
enum Reaction {
    Placed(Uuid),
    StockReserved { order_id: Uuid, product_id: Uuid },
    StockRefused(Uuid),
    CreditReserved(Uuid),
    CreditRefused(Uuid),
    Cancelled(Uuid),
    Shipped(Uuid),
    Nothing,
}

fn reaction(event: &RecordedEvent) -> Result<Reaction, SagaError> {
    Ok(match event.stream_type {
        StreamType::Order => match event.decode::<OrderEvent>()? {
            OrderEvent::OrderPlaced { .. } => Reaction::Placed(event.stream_id),
            OrderEvent::OrderCancelled { .. } => Reaction::Cancelled(event.stream_id),
            OrderEvent::OrderShipped {} => Reaction::Shipped(event.stream_id),
            _ => Reaction::Nothing,
        },
        StreamType::Product => match event.decode::<ProductEvent>()? {
            ProductEvent::StockReserved { order_id, .. } => Reaction::StockReserved {
                order_id,
                product_id: event.stream_id,
            },
            ProductEvent::StockReservationRejected { order_id, .. } => {
                Reaction::StockRefused(order_id)
            }
            _ => Reaction::Nothing,
        },
        StreamType::Customer => match event.decode::<CustomerEvent>()? {
            CustomerEvent::CreditReserved { order_id, .. } => Reaction::CreditReserved(order_id),
            CustomerEvent::CreditReservationRejected { order_id, .. } => {
                Reaction::CreditRefused(order_id)
            }
            _ => Reaction::Nothing,
        },
    })
}

impl SagaHandler for StockHandler {
    const NAME: &'static str = "stock_handler";
    const WRITES: &'static [StreamType] = &[StreamType::Product];
    const EVENT_TYPES: &'static [&'static str] = &[
        "OrderPlaced",
        "OrderCancelled",
        "OrderShipped",
        "StockReserved",
        "StockReservationRejected",
        "CreditReservationRejected",
    ];

    async fn handle(&self, step: &mut Step<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
        match reaction(event)? {
            // The stock side reserves every line in one go, acting on each reservation's
            // outcome at once: on the first refusal it gives back the lines it holds.
            Reaction::Placed(order_id) => {
                let order: Order = step.load(order_id).await?;
                if !order.awaits_reservations() {
                    return Ok(()); // a late step (a parked event retried): nothing to hold
                }
                let mut held = Vec::new();
                for line in &order.lines {
                    match step
                        .reserve_stock(order_id, line.product_id, line.quantity)
                        .await?
                    {
                        Some(StockHold::Reserved(_)) => held.push(line.product_id),
                        _ => return step.release_stock(order_id, held).await,
                    }
                }
                Ok(())
            }
            Reaction::StockReserved {
                order_id,
                product_id,
            } => {
                let order: Order = step.load(order_id).await?;
                if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
                    // The order ended while this line was being reserved: give it back.
                    step.release_stock(order_id, [product_id]).await
                } else {
                    // Pending: the other lines were reserved with it; approved or shipped: the
                    // stock is the order's.
                    Ok(())
                }
            }
            Reaction::StockRefused(order_id)
            | Reaction::CreditRefused(order_id)
            | Reaction::Cancelled(order_id) => {
                let order: Order = step.load(order_id).await?;
                step.release_stock(order_id, order.products()).await
            }
            Reaction::Shipped(order_id) => {
                let order: Order = step.load(order_id).await?;
                step.ship_stock(order_id, order.products()).await
            }
            Reaction::CreditReserved(_) | Reaction::Nothing => Ok(()),
        }
    }
}

impl SagaHandler for CreditHandler {
    const NAME: &'static str = "credit_handler";
    const WRITES: &'static [StreamType] = &[StreamType::Customer];
    const EVENT_TYPES: &'static [&'static str] = &["StockReserved", "OrderCancelled"];

    async fn handle(&self, step: &mut Step<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
        match reaction(event)? {
            Reaction::StockReserved {
                order_id,
                product_id,
            } => {
                let order: Order = step.load(order_id).await?;
                let is_last_line = order
                    .lines
                    .last()
                    .is_some_and(|line| line.product_id == product_id);
                if is_last_line && order.awaits_reservations() {
                    step.reserve_credit(order_id, order.customer_id, order.total_cents)
                        .await?;
                }
                Ok(())
            }
            Reaction::Cancelled(order_id) => {
                let order: Order = step.load(order_id).await?;
                step.customer(
                    order.customer_id,
                    CustomerCommand::ReleaseCredit { order_id },
                )
                .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl SagaHandler for OrderHandler {
    const NAME: &'static str = "order_handler";
    const WRITES: &'static [StreamType] = &[StreamType::Order];
    const EVENT_TYPES: &'static [&'static str] = &[
        "CreditReserved",
        "StockReservationRejected",
        "CreditReservationRejected",
    ];

    async fn handle(&self, step: &mut Step<'_>, event: &RecordedEvent) -> Result<(), SagaError> {
        let (order_id, command) = match reaction(event)? {
            Reaction::CreditReserved(order_id) => (order_id, OrderCommand::Approve),
            Reaction::StockRefused(order_id) => (
                order_id,
                OrderCommand::Reject {
                    reason: RejectionReason::InsufficientStock,
                },
            ),
            Reaction::CreditRefused(order_id) => (
                order_id,
                OrderCommand::Reject {
                    reason: RejectionReason::CreditLimitExceeded,
                },
            ),
            _ => return Ok(()),
        };
        step.order(order_id, command).await?;
        Ok(())
    }
}

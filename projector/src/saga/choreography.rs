//! Choreography (`SAGA_MODE=choreography`): no coordinator and no saga state. Three handlers,
//! one per aggregate, each a subscription of its own, react to the others' events and read
//! what they need from the aggregates themselves:
//!
//! ```text
//!  stock_handler   OrderPlaced                  ─▶ reserve line 1
//!                  StockReserved (order pending) ─▶ reserve the next line
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
    order::{Order, OrderCommand, OrderEvent, OrderLine, OrderStatus, RejectionReason},
    product::ProductEvent,
};
use event_store::RecordedEvent;
use uuid::Uuid;

use super::{Issuer, SagaError, SagaHandler};

/// The product side: stock.
pub struct StockHandler;
/// The customer side: credit.
pub struct CreditHandler;
/// The order side: approval and rejection.
pub struct OrderHandler;

/// The order an event of another stream concerns, and the event, decoded.
enum Reaction {
    Placed(Uuid, Vec<OrderLine>),
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
            OrderEvent::OrderPlaced { lines, .. } => Reaction::Placed(event.stream_id, lines),
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

    async fn handle(
        &self,
        issuer: &mut Issuer<'_>,
        event: &RecordedEvent,
    ) -> Result<(), SagaError> {
        match reaction(event)? {
            Reaction::Placed(order_id, lines) => match lines.first() {
                // Normally pending; a late step (a parked event retried) finds it may not be.
                Some(first) if issuer.load::<Order>(order_id).await?.awaits_reservations() => {
                    issuer
                        .reserve_stock(order_id, first.product_id, first.quantity)
                        .await
                }
                _ => Ok(()),
            },
            Reaction::StockReserved {
                order_id,
                product_id,
            } => {
                let order: Order = issuer.load(order_id).await?;
                if order.awaits_reservations() {
                    let position = order
                        .lines
                        .iter()
                        .position(|line| line.product_id == product_id);
                    match position.and_then(|index| order.lines.get(index + 1)) {
                        Some(next) => {
                            issuer
                                .reserve_stock(order_id, next.product_id, next.quantity)
                                .await
                        }
                        None => Ok(()), // the last line: credit is the credit handler's
                    }
                } else if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
                    // The order ended while this line was being reserved: give it back.
                    issuer.release_stock(order_id, [product_id]).await
                } else {
                    Ok(()) // approved or shipped: the stock is the order's
                }
            }
            Reaction::StockRefused(order_id)
            | Reaction::CreditRefused(order_id)
            | Reaction::Cancelled(order_id) => {
                let order: Order = issuer.load(order_id).await?;
                issuer.release_stock(order_id, order.products()).await
            }
            Reaction::Shipped(order_id) => {
                let order: Order = issuer.load(order_id).await?;
                issuer.ship_stock(order_id, order.products()).await
            }
            Reaction::CreditReserved(_) | Reaction::Nothing => Ok(()),
        }
    }
}

impl SagaHandler for CreditHandler {
    const NAME: &'static str = "credit_handler";

    async fn handle(
        &self,
        issuer: &mut Issuer<'_>,
        event: &RecordedEvent,
    ) -> Result<(), SagaError> {
        match reaction(event)? {
            Reaction::StockReserved {
                order_id,
                product_id,
            } => {
                let order: Order = issuer.load(order_id).await?;
                let is_last_line = order
                    .lines
                    .last()
                    .is_some_and(|line| line.product_id == product_id);
                if is_last_line && order.awaits_reservations() {
                    issuer
                        .reserve_credit(order_id, order.customer_id, order.total_cents)
                        .await?;
                }
                Ok(())
            }
            Reaction::Cancelled(order_id) => {
                let order: Order = issuer.load(order_id).await?;
                issuer
                    .customer(
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

    async fn handle(
        &self,
        issuer: &mut Issuer<'_>,
        event: &RecordedEvent,
    ) -> Result<(), SagaError> {
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
        issuer.order(order_id, command).await?;
        Ok(())
    }
}

//! The read models' documents and how each folds events. Folding is pure and keyed by position
//! (the caller skips an event a document already reflects), so applying an event twice changes
//! nothing.
//!
//! An order's document is the domain's own `Order` state, folded by `Order::evolve`, plus what
//! a reader wants to know about it (id, version, times): the read side cannot drift from the
//! rules. Products and customers keep per-order holds in their domain state (so that a retried
//! saga step can never reserve twice); their documents keep only the totals a reader asks for,
//! folded from the same events.

use chrono::{DateTime, Utc};
use domain::{
    Aggregate,
    customer::CustomerEvent,
    order::{Order, OrderEvent, OrderLine, OrderStatus, RejectionReason},
    personal::ERASED,
    product::ProductEvent,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a fold needs to know about the event besides its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    pub stream_id: Uuid,
    /// The event's version in its stream.
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub lines: Vec<OrderLineView>,
    pub total_cents: i64,
    pub rejection_reason: Option<RejectionReason>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineView {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

impl OrderView {
    /// Folds one event of the order's stream into its document (`None` before `OrderPlaced`).
    pub fn fold(view: Option<Self>, meta: &EventMeta, event: &OrderEvent) -> Option<Self> {
        let (order, created_at) = match &view {
            Some(view) => (view.order(), view.created_at),
            None => (Order::default(), meta.recorded_at),
        };
        let order = order.evolve(event);
        order.exists().then(|| Self {
            id: meta.stream_id,
            customer_id: order.customer_id,
            status: order.status,
            lines: order
                .lines
                .iter()
                .map(|line| OrderLineView {
                    product_id: line.product_id,
                    quantity: line.quantity,
                    unit_price_cents: line.unit_price_cents,
                })
                .collect(),
            total_cents: order.total_cents,
            rejection_reason: order.rejection_reason,
            version: meta.version,
            created_at,
            updated_at: meta.recorded_at,
        })
    }

    /// The domain state this document shows.
    fn order(&self) -> Order {
        Order {
            placed: true,
            customer_id: self.customer_id,
            lines: self
                .lines
                .iter()
                .map(|line| OrderLine {
                    product_id: line.product_id,
                    quantity: line.quantity,
                    unit_price_cents: line.unit_price_cents,
                })
                .collect(),
            total_cents: self.total_cents,
            status: self.status,
            rejection_reason: self.rejection_reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductView {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock_on_hand: i64,
    pub stock_reserved: i64,
    pub stock_available: i64,
    pub version: i64,
}

impl ProductView {
    pub fn fold(view: Option<Self>, meta: &EventMeta, event: &ProductEvent) -> Option<Self> {
        let mut view = match (view, event) {
            (
                _,
                ProductEvent::ProductAdded {
                    sku,
                    name,
                    price_cents,
                    stock,
                },
            ) => Self {
                id: meta.stream_id,
                sku: sku.clone(),
                name: name.clone(),
                price_cents: *price_cents,
                stock_on_hand: *stock,
                stock_reserved: 0,
                stock_available: *stock,
                version: 0,
            },
            (Some(view), _) => view,
            (None, _) => return None,
        };
        match event {
            ProductEvent::ProductAdded { .. } | ProductEvent::StockReservationRejected { .. } => {}
            ProductEvent::ProductRestocked { quantity } => view.stock_on_hand += quantity,
            ProductEvent::StockReserved { quantity, .. } => view.stock_reserved += quantity,
            ProductEvent::StockReleased { quantity, .. } => view.stock_reserved -= quantity,
            ProductEvent::StockShipped { quantity, .. } => {
                view.stock_on_hand -= quantity;
                view.stock_reserved -= quantity;
            }
        }
        view.stock_available = view.stock_on_hand - view.stock_reserved;
        view.version = meta.version;
        Some(view)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerView {
    pub id: Uuid,
    pub name: String,
    pub credit_limit_cents: i64,
    pub credit_reserved_cents: i64,
    pub credit_available_cents: i64,
    pub version: i64,
}

impl CustomerView {
    /// The document's fields that hold personal data: what erasure overwrites in every stored
    /// copy (each version in `document_versions`) with `domain::personal::ERASED`.
    pub const PERSONAL_FIELDS: &'static [&'static str] = &["name"];

    pub fn fold(view: Option<Self>, meta: &EventMeta, event: &CustomerEvent) -> Option<Self> {
        let mut view = match (view, event) {
            (
                _,
                CustomerEvent::CustomerRegistered {
                    name,
                    credit_limit_cents,
                },
            ) => Self {
                id: meta.stream_id,
                name: name.clone(),
                credit_limit_cents: *credit_limit_cents,
                credit_reserved_cents: 0,
                credit_available_cents: *credit_limit_cents,
                version: 0,
            },
            (Some(view), _) => view,
            (None, _) => return None,
        };
        match event {
            CustomerEvent::CustomerRegistered { .. }
            | CustomerEvent::CreditReservationRejected { .. } => {}
            CustomerEvent::CreditReserved { amount_cents, .. } => {
                view.credit_reserved_cents += amount_cents
            }
            CustomerEvent::CreditReleased { amount_cents, .. } => {
                view.credit_reserved_cents -= amount_cents
            }
            CustomerEvent::CustomerForgotten {} => view.name = ERASED.to_owned(),
        }
        view.credit_available_cents = view.credit_limit_cents - view.credit_reserved_cents;
        view.version = meta.version;
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(stream_id: Uuid, version: i64) -> EventMeta {
        EventMeta {
            stream_id,
            version,
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn an_order_document_follows_the_domain_state_through_every_event() {
        let (id, customer, product) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let placed = OrderEvent::OrderPlaced {
            customer_id: customer,
            lines: vec![OrderLine {
                product_id: product,
                quantity: 2,
                unit_price_cents: 150,
            }],
            total_cents: 300,
        };
        let rejected = OrderEvent::OrderRejected {
            reason: RejectionReason::InsufficientStock,
        };
        assert_eq!(OrderView::fold(None, &meta(id, 1), &rejected), None);
        let view = OrderView::fold(None, &meta(id, 1), &placed).expect("placed");
        assert_eq!(
            (view.status, view.total_cents, view.lines[0].quantity),
            (OrderStatus::Pending, 300, 2)
        );
        let view = OrderView::fold(Some(view), &meta(id, 2), &rejected).expect("rejected");
        let state = Order::default().evolve(&placed).evolve(&rejected);
        assert_eq!(view.order(), state);
        assert_eq!(view.version, 2);
    }
}

//! The read models' documents and how each folds events. Folding is pure and keyed by position,
//! so applying an event the document already reflects changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{
        customer::CustomerEvent,
        order::{OrderEvent, OrderLine, OrderStatus, RejectionReason},
        product::ProductEvent,
    },
    event_store::RecordedEvent,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
    pub rejection_reason: Option<RejectionReason>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderView {
    /// Folds one event of the order's stream into its document (`None` before `OrderPlaced`).
    pub fn fold(view: Option<Self>, recorded: &RecordedEvent, event: &OrderEvent) -> Option<Self> {
        let mut view = match (view, event) {
            (
                _,
                OrderEvent::OrderPlaced {
                    customer_id,
                    lines,
                    total_cents,
                },
            ) => Self {
                id: recorded.stream_id,
                customer_id: *customer_id,
                status: OrderStatus::Pending,
                lines: lines.clone(),
                total_cents: *total_cents,
                rejection_reason: None,
                version: recorded.stream_version,
                created_at: recorded.recorded_at,
                updated_at: recorded.recorded_at,
            },
            (Some(view), _) => view,
            (None, _) => return None,
        };
        match event {
            OrderEvent::OrderPlaced { .. } => {}
            OrderEvent::OrderApproved {} => view.status = OrderStatus::Approved,
            OrderEvent::OrderRejected { reason } => {
                view.status = OrderStatus::Rejected;
                view.rejection_reason = Some(*reason);
            }
            OrderEvent::OrderCancelled { .. } => view.status = OrderStatus::Cancelled,
            OrderEvent::OrderShipped {} => view.status = OrderStatus::Shipped,
        }
        view.version = recorded.stream_version;
        view.updated_at = recorded.recorded_at;
        Some(view)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    pub fn fold(
        view: Option<Self>,
        recorded: &RecordedEvent,
        event: &ProductEvent,
    ) -> Option<Self> {
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
                id: recorded.stream_id,
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
        view.version = recorded.stream_version;
        Some(view)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: Uuid,
    pub name: String,
    pub credit_limit_cents: i64,
    pub credit_reserved_cents: i64,
    pub credit_available_cents: i64,
    pub version: i64,
}

impl CustomerView {
    pub fn fold(
        view: Option<Self>,
        recorded: &RecordedEvent,
        event: &CustomerEvent,
    ) -> Option<Self> {
        let mut view = match (view, event) {
            (
                _,
                CustomerEvent::CustomerRegistered {
                    name,
                    credit_limit_cents,
                },
            ) => Self {
                id: recorded.stream_id,
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
        }
        view.credit_available_cents = view.credit_limit_cents - view.credit_reserved_cents;
        view.version = recorded.stream_version;
        Some(view)
    }
}

/// One line of an order's history: its own events and the saga's steps on other aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    pub position: i64,
    /// The version of the stream the event belongs to (`stream_type`).
    pub version: i64,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// `order`, `product` or `customer`.
    pub stream_type: String,
    pub recorded_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl HistoryEntry {
    /// The order an event belongs in the history of, if any.
    pub fn order_of(recorded: &RecordedEvent) -> Option<Uuid> {
        if recorded.stream_type == "order" {
            return Some(recorded.stream_id);
        }
        recorded.data.get("order_id")?.as_str()?.parse().ok()
    }

    pub fn from_recorded(recorded: &RecordedEvent) -> Self {
        Self {
            position: recorded.position,
            version: recorded.stream_version,
            event_type: recorded.event_type.clone(),
            stream_type: recorded.stream_type.clone(),
            recorded_at: recorded.recorded_at,
            data: recorded.data.clone(),
        }
    }
}

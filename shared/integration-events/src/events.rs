//! Which events are public, and their shapes (version 1 of each).
//!
//! Public: what happened to a customer, a product or an order that another service may act on
//! (a customer registered; a product added or restocked; an order placed, approved, rejected,
//! cancelled or shipped). Not public: the saga's steps on stock and credit (reservations, their
//! refusals and releases, stock shipped): they are how this system decides, their number and
//! order depend on the saga's design, and their outcome is already public as the order's
//! approval or rejection.
//!
//! Every order event carries the order's customer and total, so that a consumer can act on any
//! one of them alone (a notification needs no earlier event, whatever order redeliveries come in).

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::Envelope;

/// A public event type: its name (the envelope's `type` and the end of its subject), the
/// aggregate it belongs to, and the version of its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub aggregate: &'static str,
    pub version: u32,
}

impl EventType {
    pub const CUSTOMER_REGISTERED: Self = Self::v1("customer.registered", "customer");
    pub const PRODUCT_ADDED: Self = Self::v1("product.added", "product");
    pub const PRODUCT_RESTOCKED: Self = Self::v1("product.restocked", "product");
    pub const ORDER_PLACED: Self = Self::v1("order.placed", "order");
    pub const ORDER_APPROVED: Self = Self::v1("order.approved", "order");
    pub const ORDER_REJECTED: Self = Self::v1("order.rejected", "order");
    pub const ORDER_CANCELLED: Self = Self::v1("order.cancelled", "order");
    pub const ORDER_SHIPPED: Self = Self::v1("order.shipped", "order");

    /// Every public event type.
    pub const ALL: [Self; 8] = [
        Self::CUSTOMER_REGISTERED,
        Self::PRODUCT_ADDED,
        Self::PRODUCT_RESTOCKED,
        Self::ORDER_PLACED,
        Self::ORDER_APPROVED,
        Self::ORDER_REJECTED,
        Self::ORDER_CANCELLED,
        Self::ORDER_SHIPPED,
    ];

    const fn v1(name: &'static str, aggregate: &'static str) -> Self {
        Self {
            name,
            aggregate,
            version: 1,
        }
    }
}

/// `customer.registered`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    pub customer_id: Uuid,
    pub name: String,
    pub credit_limit_cents: i64,
}

/// `product.added`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAdded {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    /// The stock it was added with.
    pub stock: i64,
}

/// `product.restocked`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRestocked {
    pub product_id: Uuid,
    /// How many units were added to the stock on hand.
    pub quantity: i64,
}

/// One line of an order, at the unit price captured when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// `order.placed`: accepted for the saga to decide; not yet approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
}

/// `order.approved`: stock and credit are reserved for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderApproved {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub total_cents: i64,
}

/// The `reason` values of `order.rejected` so far; a consumer must accept others.
pub mod rejection_reasons {
    pub const INSUFFICIENT_STOCK: &str = "insufficient_stock";
    pub const CREDIT_LIMIT_EXCEEDED: &str = "credit_limit_exceeded";
}

/// `order.rejected`: the saga could not reserve what it needs; nothing stays reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub total_cents: i64,
    /// One of `rejection_reasons` (a string, so that a new reason breaks no consumer).
    pub reason: String,
}

/// `order.cancelled`: by the client, while pending or approved; whatever it held is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub total_cents: i64,
    /// The client's reason, when it gave one.
    pub reason: Option<String>,
}

/// `order.shipped`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub total_cents: i64,
}

/// A public event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationEvent {
    CustomerRegistered(CustomerRegistered),
    ProductAdded(ProductAdded),
    ProductRestocked(ProductRestocked),
    OrderPlaced(OrderPlaced),
    OrderApproved(OrderApproved),
    OrderRejected(OrderRejected),
    OrderCancelled(OrderCancelled),
    OrderShipped(OrderShipped),
}

/// An envelope of a known type and version whose `data` does not have that type's shape.
#[derive(Debug, thiserror::Error)]
#[error("the data of {event_type} v{version} does not have its public shape: {source}")]
pub struct DecodeError {
    pub event_type: String,
    pub version: u32,
    pub source: serde_json::Error,
}

impl IntegrationEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::CustomerRegistered(_) => EventType::CUSTOMER_REGISTERED,
            Self::ProductAdded(_) => EventType::PRODUCT_ADDED,
            Self::ProductRestocked(_) => EventType::PRODUCT_RESTOCKED,
            Self::OrderPlaced(_) => EventType::ORDER_PLACED,
            Self::OrderApproved(_) => EventType::ORDER_APPROVED,
            Self::OrderRejected(_) => EventType::ORDER_REJECTED,
            Self::OrderCancelled(_) => EventType::ORDER_CANCELLED,
            Self::OrderShipped(_) => EventType::ORDER_SHIPPED,
        }
    }

    /// The envelope's `data`.
    pub fn to_data(&self) -> serde_json::Value {
        let data = match self {
            Self::CustomerRegistered(data) => serde_json::to_value(data),
            Self::ProductAdded(data) => serde_json::to_value(data),
            Self::ProductRestocked(data) => serde_json::to_value(data),
            Self::OrderPlaced(data) => serde_json::to_value(data),
            Self::OrderApproved(data) => serde_json::to_value(data),
            Self::OrderRejected(data) => serde_json::to_value(data),
            Self::OrderCancelled(data) => serde_json::to_value(data),
            Self::OrderShipped(data) => serde_json::to_value(data),
        };
        // Plain structs of strings, numbers and uuids always serialize.
        data.unwrap_or_default()
    }

    /// The event in `envelope`, or `None` for a type or version this build does not know (a
    /// consumer skips it: new types and versions may appear at any time).
    pub fn decode(envelope: &Envelope) -> Result<Option<Self>, DecodeError> {
        let Some(known) = EventType::ALL
            .into_iter()
            .find(|t| t.name == envelope.event_type && t.version == envelope.version)
        else {
            return Ok(None);
        };
        let event = match known {
            EventType::CUSTOMER_REGISTERED => Self::CustomerRegistered(data_of(envelope)?),
            EventType::PRODUCT_ADDED => Self::ProductAdded(data_of(envelope)?),
            EventType::PRODUCT_RESTOCKED => Self::ProductRestocked(data_of(envelope)?),
            EventType::ORDER_PLACED => Self::OrderPlaced(data_of(envelope)?),
            EventType::ORDER_APPROVED => Self::OrderApproved(data_of(envelope)?),
            EventType::ORDER_REJECTED => Self::OrderRejected(data_of(envelope)?),
            EventType::ORDER_CANCELLED => Self::OrderCancelled(data_of(envelope)?),
            EventType::ORDER_SHIPPED => Self::OrderShipped(data_of(envelope)?),
            _ => return Ok(None),
        };
        Ok(Some(event))
    }
}

fn data_of<T: DeserializeOwned>(envelope: &Envelope) -> Result<T, DecodeError> {
    serde_json::from_value(envelope.data.clone()).map_err(|source| DecodeError {
        event_type: envelope.event_type.clone(),
        version: envelope.version,
        source,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::Aggregate;

    fn envelope_of(event: &IntegrationEvent) -> Envelope {
        Envelope::new(
            42,
            event,
            Utc::now(),
            Aggregate {
                kind: event.event_type().aggregate.to_owned(),
                id: Uuid::new_v4(),
                version: 1,
            },
            Some("request-1".into()),
            None,
        )
    }

    #[test]
    fn every_public_event_round_trips_through_its_envelope() {
        let (order_id, customer_id, product_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let events = [
            IntegrationEvent::CustomerRegistered(CustomerRegistered {
                customer_id,
                name: "Ada".into(),
                credit_limit_cents: 5_000,
            }),
            IntegrationEvent::ProductAdded(ProductAdded {
                product_id,
                sku: "TEA-1".into(),
                name: "Green tea".into(),
                price_cents: 450,
                stock: 10,
            }),
            IntegrationEvent::ProductRestocked(ProductRestocked {
                product_id,
                quantity: 5,
            }),
            IntegrationEvent::OrderPlaced(OrderPlaced {
                order_id,
                customer_id,
                lines: vec![OrderLine {
                    product_id,
                    quantity: 2,
                    unit_price_cents: 450,
                }],
                total_cents: 900,
            }),
            IntegrationEvent::OrderApproved(OrderApproved {
                order_id,
                customer_id,
                total_cents: 900,
            }),
            IntegrationEvent::OrderRejected(OrderRejected {
                order_id,
                customer_id,
                total_cents: 900,
                reason: rejection_reasons::INSUFFICIENT_STOCK.into(),
            }),
            IntegrationEvent::OrderCancelled(OrderCancelled {
                order_id,
                customer_id,
                total_cents: 900,
                reason: None,
            }),
            IntegrationEvent::OrderShipped(OrderShipped {
                order_id,
                customer_id,
                total_cents: 900,
            }),
        ];
        assert_eq!(events.len(), EventType::ALL.len());
        for event in events {
            let envelope = envelope_of(&event);
            let json = serde_json::to_string(&envelope).expect("serializes");
            let back: Envelope = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, envelope);
            assert_eq!(back.id, "42");
            assert_eq!(back.source, "cqrs-shop");
            assert_eq!(
                IntegrationEvent::decode(&back).expect("decodes"),
                Some(event)
            );
        }
    }

    #[test]
    fn unknown_types_and_versions_are_skipped_and_unknown_fields_ignored() {
        let event = IntegrationEvent::OrderShipped(OrderShipped {
            order_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            total_cents: 1,
        });
        let mut envelope = envelope_of(&event);
        envelope.data["carrier"] = json!("a field added later");
        assert_eq!(
            IntegrationEvent::decode(&envelope).expect("decodes"),
            Some(event)
        );
        envelope.version = 2;
        assert_eq!(IntegrationEvent::decode(&envelope).expect("skips"), None);
        envelope.version = 1;
        envelope.event_type = "order.returned".into();
        assert_eq!(IntegrationEvent::decode(&envelope).expect("skips"), None);
    }

    #[test]
    fn a_known_type_with_another_shape_is_an_error() {
        let mut envelope = envelope_of(&IntegrationEvent::OrderApproved(OrderApproved {
            order_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            total_cents: 1,
        }));
        envelope.data = json!({ "order_id": "not a uuid" });
        let error = IntegrationEvent::decode(&envelope).expect_err("refused");
        assert!(error.to_string().contains("order.approved v1"), "{error}");
    }

    #[test]
    fn the_documented_example_envelope_decodes() {
        let example = include_str!("envelope.rs")
            .split("/// ```json\n")
            .nth(1)
            .and_then(|rest| rest.split("/// ```").next())
            .expect("the example in envelope.rs")
            .lines()
            .map(|line| line.trim_start().trim_start_matches("///"))
            .collect::<Vec<_>>()
            .join("\n");
        let envelope: Envelope = serde_json::from_str(&example).expect("the example parses");
        assert!(matches!(
            IntegrationEvent::decode(&envelope),
            Ok(Some(IntegrationEvent::OrderApproved(_)))
        ));
    }
}

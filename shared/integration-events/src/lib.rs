//! The shop's integration events: the public contract between this system and the services
//! that consume its events through the broker (`docs/integration.md`).
//!
//! What is public is chosen here, on purpose, and is not the event log: the log's payloads are
//! the domain's own and change with it (upcasters bring old ones to the current shape); the
//! shapes here change only by the rules below, so a consumer never breaks because an internal
//! payload did. This crate knows neither the domain nor the broker's client, so another team can
//! depend on it alone.
//!
//! Compatibility: within a `version` of an event type, fields are only ever added (consumers
//! ignore fields they do not know); removing or changing a field is a new `version` of the
//! type, published beside the old one for a migration period. A consumer that meets a type or
//! version it does not know skips it (`IntegrationEvent::decode` answers `None`).

mod envelope;
mod events;
pub mod headers;
pub mod subjects;

pub use envelope::{Aggregate, Envelope};
pub use events::{
    CustomerRegistered, DecodeError, EventType, IntegrationEvent, OrderApproved, OrderCancelled,
    OrderLine, OrderPlaced, OrderRejected, OrderShipped, ProductAdded, ProductRestocked,
    rejection_reasons,
};

/// The JetStream stream the relay publishes to, unless configured otherwise (`NATS_STREAM`).
pub const DEFAULT_STREAM: &str = "SHOP_EVENTS";

/// The first token(s) of every subject, unless configured otherwise (`NATS_SUBJECT_PREFIX`).
pub const DEFAULT_SUBJECT_PREFIX: &str = "shop";

/// The envelope's `source`: which system published the event.
pub const SOURCE: &str = "cqrs-shop";

//! From the log to the public contract: which stored events are public, and how each current
//! internal payload (already upcast by the event store) maps to its public shape. This is the
//! one place that knows both; when an internal payload changes, this mapping changes with it and
//! the public shape stays.

use std::collections::HashMap;

use domain::{
    StreamType,
    customer::CustomerEvent,
    order::{Order, OrderEvent, RejectionReason},
    product::ProductEvent,
};
use event_store::{RecordedEvent, StreamRequest, load_streams};
use integration_events::{
    Aggregate, CustomerRegistered, Envelope, IntegrationEvent, OrderApproved, OrderCancelled,
    OrderLine, OrderPlaced, OrderRejected, OrderShipped, ProductAdded, ProductRestocked,
    rejection_reasons,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::ProjectionError;

/// What every public order event carries besides its own data; fixed when the order is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFacts {
    pub customer_id: Uuid,
    pub total_cents: i64,
}

/// The envelopes of the public events of `events`, in order, with their positions. The facts
/// of orders placed before the batch are loaded from their streams (one query for the batch).
pub async fn envelopes(
    pool: &PgPool,
    events: &[RecordedEvent],
) -> Result<Vec<Envelope>, ProjectionError> {
    let mut facts = load_order_facts(pool, events).await?;
    let mut envelopes = Vec::new();
    for recorded in events {
        if let Some(event) = to_public(recorded, &mut facts)? {
            envelopes.push(envelope(recorded, &event));
        }
    }
    Ok(envelopes)
}

fn envelope(recorded: &RecordedEvent, event: &IntegrationEvent) -> Envelope {
    Envelope::new(
        recorded.position,
        event,
        recorded.recorded_at,
        Aggregate {
            kind: recorded.stream_type.as_str().to_owned(),
            id: recorded.stream_id,
            version: recorded.stream_version,
        },
        recorded.correlation_id().map(str::to_owned),
        recorded
            .metadata
            .get("causation_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    )
}

/// The public form of `recorded`, or `None` when the event is internal. `facts` must hold every
/// order whose later events are mapped; an `OrderPlaced` adds its own.
pub fn to_public(
    recorded: &RecordedEvent,
    facts: &mut HashMap<Uuid, OrderFacts>,
) -> Result<Option<IntegrationEvent>, ProjectionError> {
    let id = recorded.stream_id;
    let public = match recorded.stream_type {
        StreamType::Customer => match recorded.decode::<CustomerEvent>()? {
            CustomerEvent::CustomerRegistered {
                name,
                credit_limit_cents,
            } => Some(IntegrationEvent::CustomerRegistered(CustomerRegistered {
                customer_id: id,
                name,
                credit_limit_cents,
            })),
            CustomerEvent::CreditReserved { .. }
            | CustomerEvent::CreditReservationRejected { .. }
            | CustomerEvent::CreditReleased { .. }
            // Not (yet) in the public contract: consumers see `[erased]` in what is relayed
            // from then on (see the README on erasure).
            | CustomerEvent::CustomerForgotten {} => None,
        },
        StreamType::Product => match recorded.decode::<ProductEvent>()? {
            ProductEvent::ProductAdded {
                sku,
                name,
                price_cents,
                stock,
            } => Some(IntegrationEvent::ProductAdded(ProductAdded {
                product_id: id,
                sku,
                name,
                price_cents,
                stock,
            })),
            ProductEvent::ProductRestocked { quantity } => {
                Some(IntegrationEvent::ProductRestocked(ProductRestocked {
                    product_id: id,
                    quantity,
                }))
            }
            ProductEvent::StockReserved { .. }
            | ProductEvent::StockReservationRejected { .. }
            | ProductEvent::StockReleased { .. }
            | ProductEvent::StockShipped { .. } => None,
        },
        StreamType::Order => {
            let placed_before = |facts: &HashMap<Uuid, OrderFacts>| {
                facts.get(&id).copied().ok_or_else(|| {
                    ProjectionError::Corrupt(format!(
                        "{} v{} of order {id} (position {}): the order was never placed",
                        recorded.event_type, recorded.stream_version, recorded.position
                    ))
                })
            };
            match recorded.decode::<OrderEvent>()? {
                OrderEvent::OrderPlaced {
                    customer_id,
                    lines,
                    total_cents,
                } => {
                    facts.insert(
                        id,
                        OrderFacts {
                            customer_id,
                            total_cents,
                        },
                    );
                    Some(IntegrationEvent::OrderPlaced(OrderPlaced {
                        order_id: id,
                        customer_id,
                        lines: lines
                            .into_iter()
                            .map(|line| OrderLine {
                                product_id: line.product_id,
                                quantity: line.quantity,
                                unit_price_cents: line.unit_price_cents,
                            })
                            .collect(),
                        total_cents,
                    }))
                }
                OrderEvent::OrderApproved {} => {
                    let OrderFacts {
                        customer_id,
                        total_cents,
                    } = placed_before(facts)?;
                    Some(IntegrationEvent::OrderApproved(OrderApproved {
                        order_id: id,
                        customer_id,
                        total_cents,
                    }))
                }
                OrderEvent::OrderRejected { reason } => {
                    let OrderFacts {
                        customer_id,
                        total_cents,
                    } = placed_before(facts)?;
                    let reason = match reason {
                        RejectionReason::InsufficientStock => rejection_reasons::INSUFFICIENT_STOCK,
                        RejectionReason::CreditLimitExceeded => {
                            rejection_reasons::CREDIT_LIMIT_EXCEEDED
                        }
                    };
                    Some(IntegrationEvent::OrderRejected(OrderRejected {
                        order_id: id,
                        customer_id,
                        total_cents,
                        reason: reason.to_owned(),
                    }))
                }
                OrderEvent::OrderCancelled { reason } => {
                    let OrderFacts {
                        customer_id,
                        total_cents,
                    } = placed_before(facts)?;
                    Some(IntegrationEvent::OrderCancelled(OrderCancelled {
                        order_id: id,
                        customer_id,
                        total_cents,
                        reason,
                    }))
                }
                OrderEvent::OrderShipped {} => {
                    let OrderFacts {
                        customer_id,
                        total_cents,
                    } = placed_before(facts)?;
                    Some(IntegrationEvent::OrderShipped(OrderShipped {
                        order_id: id,
                        customer_id,
                        total_cents,
                    }))
                }
            }
        }
    };
    Ok(public)
}

/// The facts of the orders that have events in `events` but were placed before them.
async fn load_order_facts(
    pool: &PgPool,
    events: &[RecordedEvent],
) -> Result<HashMap<Uuid, OrderFacts>, ProjectionError> {
    let mut placed_here = Vec::new();
    let mut wanted = Vec::new();
    for recorded in events.iter().filter(|e| e.stream_type == StreamType::Order) {
        if recorded.event_type == "OrderPlaced" {
            placed_here.push(recorded.stream_id);
        } else if !placed_here.contains(&recorded.stream_id)
            && !wanted.contains(&recorded.stream_id)
        {
            wanted.push(recorded.stream_id);
        }
    }
    let mut facts = HashMap::new();
    if wanted.is_empty() {
        return Ok(facts);
    }
    let requests: Vec<StreamRequest> = wanted
        .iter()
        .map(|id| StreamRequest::of::<Order>(*id, true))
        .collect();
    let mut conn = pool.acquire().await?;
    let streams = load_streams(&mut conn, &requests).await?;
    for (id, stream) in wanted.into_iter().zip(streams) {
        let order = stream.fold::<Order>(&mut conn).await?.state;
        if order.placed {
            facts.insert(
                id,
                OrderFacts {
                    customer_id: order.customer_id,
                    total_cents: order.total_cents,
                },
            );
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use domain::{DomainEvent, event_to_parts, order::OrderLine as DomainLine};
    use serde_json::json;

    use super::*;

    fn recorded<E: DomainEvent>(
        stream_type: StreamType,
        stream_id: Uuid,
        position: i64,
        event: &E,
    ) -> RecordedEvent {
        let (event_type, data) = event_to_parts(event);
        RecordedEvent {
            position,
            stream_id,
            stream_type,
            stream_version: 1,
            event_type,
            schema_version: 1,
            data,
            metadata: json!({ "correlation_id": "request-9", "causation_id": "17" }),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn order_events_carry_the_customer_and_total_fixed_when_the_order_was_placed() {
        let (order_id, customer_id, product_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut facts = HashMap::new();
        let placed = recorded(
            StreamType::Order,
            order_id,
            10,
            &OrderEvent::OrderPlaced {
                customer_id,
                lines: vec![DomainLine {
                    product_id,
                    quantity: 2,
                    unit_price_cents: 450,
                }],
                total_cents: 900,
            },
        );
        let rejected = recorded(
            StreamType::Order,
            order_id,
            20,
            &OrderEvent::OrderRejected {
                reason: RejectionReason::CreditLimitExceeded,
            },
        );
        assert!(matches!(
            to_public(&placed, &mut facts).expect("maps"),
            Some(IntegrationEvent::OrderPlaced(OrderPlaced {
                total_cents: 900,
                ..
            }))
        ));
        assert_eq!(
            to_public(&rejected, &mut facts).expect("maps"),
            Some(IntegrationEvent::OrderRejected(OrderRejected {
                order_id,
                customer_id,
                total_cents: 900,
                reason: "credit_limit_exceeded".into(),
            }))
        );
        let envelope = envelope(
            &rejected,
            &to_public(&rejected, &mut facts)
                .expect("maps")
                .expect("public"),
        );
        assert_eq!(
            (envelope.id.as_str(), envelope.event_type.as_str()),
            ("20", "order.rejected")
        );
        assert_eq!(envelope.correlation_id.as_deref(), Some("request-9"));
        assert_eq!(envelope.causation_id.as_deref(), Some("17"));
        assert_eq!(envelope.aggregate.kind, "order");
    }

    #[test]
    fn an_order_event_without_its_placement_is_refused() {
        let shipped = recorded(
            StreamType::Order,
            Uuid::new_v4(),
            5,
            &OrderEvent::OrderShipped {},
        );
        assert!(matches!(
            to_public(&shipped, &mut HashMap::new()),
            Err(ProjectionError::Corrupt(_))
        ));
    }

    #[test]
    fn the_saga_steps_are_not_public() {
        let order_id = Uuid::new_v4();
        let internal = [
            recorded(
                StreamType::Product,
                Uuid::new_v4(),
                1,
                &ProductEvent::StockReserved {
                    order_id,
                    quantity: 1,
                },
            ),
            recorded(
                StreamType::Product,
                Uuid::new_v4(),
                2,
                &ProductEvent::StockShipped {
                    order_id,
                    quantity: 1,
                },
            ),
            recorded(
                StreamType::Customer,
                Uuid::new_v4(),
                3,
                &CustomerEvent::CreditReleased {
                    order_id,
                    amount_cents: 1,
                },
            ),
        ];
        for event in &internal {
            assert_eq!(
                to_public(event, &mut HashMap::new()).expect("maps"),
                None,
                "{}",
                event.event_type
            );
        }
    }

    #[test]
    fn an_old_stored_payload_reaches_the_public_shape_through_its_upcaster() {
        // CustomerRegistered v1 carried whole currency units; the store upcasts it on reading.
        let data = event_store::upcast::upcast(
            "CustomerRegistered",
            1,
            json!({ "name": "Ada", "credit_limit": 25 }),
        )
        .expect("upcasts");
        let customer_id = Uuid::new_v4();
        let stored = RecordedEvent {
            event_type: "CustomerRegistered".into(),
            schema_version: 2,
            data,
            ..recorded(
                StreamType::Customer,
                customer_id,
                1,
                &CustomerEvent::CreditReleased {
                    order_id: customer_id,
                    amount_cents: 0,
                },
            )
        };
        assert_eq!(
            to_public(&stored, &mut HashMap::new()).expect("maps"),
            Some(IntegrationEvent::CustomerRegistered(CustomerRegistered {
                customer_id,
                name: "Ada".into(),
                credit_limit_cents: 2_500,
            }))
        );
    }
}

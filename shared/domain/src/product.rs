//! A product: catalog data and stock. Stock is held per order; the hold record outlives its
//! release, so a retried saga step can never reserve or release the same order's stock twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Aggregate, Cents, DomainError, DomainEvent, MAX_QUANTITY, Name, Quantity, Sku, StreamType,
};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub added: bool,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock_on_hand: i64,
    /// Every order that asked for this product, and what became of its stock.
    pub stock_by_order: BTreeMap<Uuid, StockHold>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "quantity", rename_all = "snake_case")]
pub enum StockHold {
    Reserved(i64),
    Released(i64),
    Refused(i64),
    Shipped(i64),
}

impl Product {
    pub fn stock_reserved(&self) -> i64 {
        self.stock_by_order
            .values()
            .map(|hold| {
                if let StockHold::Reserved(quantity) = hold {
                    *quantity
                } else {
                    0
                }
            })
            .sum()
    }
    pub fn stock_available(&self) -> i64 {
        self.stock_on_hand - self.stock_reserved()
    }
}

#[derive(Debug, Clone)]
pub enum ProductCommand {
    Add {
        sku: Sku,
        name: Name,
        price: Cents,
        stock: i64,
    },
    Restock {
        quantity: Quantity,
    },
    ReserveStock {
        order_id: Uuid,
        quantity: Quantity,
    },
    ReleaseStock {
        order_id: Uuid,
    },
    ShipStock {
        order_id: Uuid,
    },
}

/// A product's price is set by `ProductAdded` and no other event changes it: the command side
/// reads only a product's first event to price an order (`command-api/src/catalog.rs`). An
/// event that changed a price would have to change that too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProductEvent {
    ProductAdded {
        sku: String,
        name: String,
        price_cents: i64,
        stock: i64,
    },
    ProductRestocked {
        quantity: i64,
    },
    StockReserved {
        order_id: Uuid,
        quantity: i64,
    },
    StockReservationRejected {
        order_id: Uuid,
        quantity: i64,
        available: i64,
    },
    StockReleased {
        order_id: Uuid,
        quantity: i64,
    },
    StockShipped {
        order_id: Uuid,
        quantity: i64,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ProductAdded { .. } => "ProductAdded",
            Self::ProductRestocked { .. } => "ProductRestocked",
            Self::StockReserved { .. } => "StockReserved",
            Self::StockReservationRejected { .. } => "StockReservationRejected",
            Self::StockReleased { .. } => "StockReleased",
            Self::StockShipped { .. } => "StockShipped",
        }
    }
}

impl Aggregate for Product {
    const STREAM_TYPE: StreamType = StreamType::Product;
    const SNAPSHOT_SCHEMA: i32 = 1;
    type Event = ProductEvent;
    type Command = ProductCommand;

    fn exists(&self) -> bool {
        self.added
    }

    fn decide(&self, command: ProductCommand) -> Result<Vec<ProductEvent>, DomainError> {
        if !matches!(command, ProductCommand::Add { .. }) && !self.added {
            return Err(DomainError::NotFound(Self::STREAM_TYPE));
        }
        match command {
            ProductCommand::Add {
                sku,
                name,
                price,
                stock,
            } => {
                if self.added {
                    return Err(DomainError::RuleViolated(
                        "the product already exists".into(),
                    ));
                }
                if !(0..=MAX_QUANTITY).contains(&stock) {
                    return Err(DomainError::invalid(
                        "stock",
                        format!("must be between 0 and {MAX_QUANTITY}"),
                    ));
                }
                Ok(vec![ProductEvent::ProductAdded {
                    sku: sku.as_str().to_owned(),
                    name: name.as_str().to_owned(),
                    price_cents: price.get(),
                    stock,
                }])
            }
            ProductCommand::Restock { quantity } => {
                if self.stock_on_hand + quantity.get() > MAX_QUANTITY {
                    return Err(DomainError::RuleViolated(format!(
                        "restocking would exceed the maximum stock of {MAX_QUANTITY}"
                    )));
                }
                Ok(vec![ProductEvent::ProductRestocked {
                    quantity: quantity.get(),
                }])
            }
            ProductCommand::ReserveStock { order_id, quantity } => {
                if self.stock_by_order.contains_key(&order_id) {
                    return Ok(vec![]); // already decided for this order: a retried step
                }
                let (quantity, available) = (quantity.get(), self.stock_available());
                Ok(vec![if quantity <= available {
                    ProductEvent::StockReserved { order_id, quantity }
                } else {
                    ProductEvent::StockReservationRejected {
                        order_id,
                        quantity,
                        available,
                    }
                }])
            }
            ProductCommand::ReleaseStock { order_id } => match self.stock_by_order.get(&order_id) {
                Some(StockHold::Reserved(quantity)) => Ok(vec![ProductEvent::StockReleased {
                    order_id,
                    quantity: *quantity,
                }]),
                _ => Ok(vec![]),
            },
            ProductCommand::ShipStock { order_id } => match self.stock_by_order.get(&order_id) {
                Some(StockHold::Reserved(quantity)) => Ok(vec![ProductEvent::StockShipped {
                    order_id,
                    quantity: *quantity,
                }]),
                Some(StockHold::Shipped(_)) => Ok(vec![]),
                _ => Err(DomainError::RuleViolated(
                    "no stock is reserved for this order".into(),
                )),
            },
        }
    }

    fn evolve(mut self, event: &ProductEvent) -> Self {
        match event {
            ProductEvent::ProductAdded {
                sku,
                name,
                price_cents,
                stock,
            } => {
                self.added = true;
                self.sku.clone_from(sku);
                self.name.clone_from(name);
                self.price_cents = *price_cents;
                self.stock_on_hand = *stock;
            }
            ProductEvent::ProductRestocked { quantity } => self.stock_on_hand += quantity,
            ProductEvent::StockReserved { order_id, quantity } => {
                self.stock_by_order
                    .insert(*order_id, StockHold::Reserved(*quantity));
            }
            ProductEvent::StockReservationRejected {
                order_id, quantity, ..
            } => {
                self.stock_by_order
                    .insert(*order_id, StockHold::Refused(*quantity));
            }
            ProductEvent::StockReleased { order_id, quantity } => {
                self.stock_by_order
                    .insert(*order_id, StockHold::Released(*quantity));
            }
            ProductEvent::StockShipped { order_id, quantity } => {
                self.stock_on_hand -= quantity;
                self.stock_by_order
                    .insert(*order_id, StockHold::Shipped(*quantity));
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(stock: i64) -> Product {
        Product::default().evolve(&ProductEvent::ProductAdded {
            sku: "SKU-1".into(),
            name: "Tea".into(),
            price_cents: 250,
            stock,
        })
    }

    fn run(state: Product, command: ProductCommand) -> (Product, Vec<ProductEvent>) {
        let events = state.decide(command).expect("command accepted");
        (state.fold(&events), events)
    }

    fn qty(value: i64) -> Quantity {
        Quantity::parse("quantity", value).expect("valid quantity")
    }

    #[test]
    fn reservations_take_from_available_stock_and_refuse_beyond_it() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (state, events) = run(
            product(5),
            ProductCommand::ReserveStock {
                order_id: a,
                quantity: qty(3),
            },
        );
        assert_eq!(
            events,
            vec![ProductEvent::StockReserved {
                order_id: a,
                quantity: 3
            }]
        );
        let (state, events) = run(
            state,
            ProductCommand::ReserveStock {
                order_id: b,
                quantity: qty(3),
            },
        );
        assert_eq!(
            events,
            vec![ProductEvent::StockReservationRejected {
                order_id: b,
                quantity: 3,
                available: 2
            }]
        );
        assert_eq!(
            (
                state.stock_on_hand,
                state.stock_reserved(),
                state.stock_available()
            ),
            (5, 3, 2)
        );
    }

    #[test]
    fn a_retried_reservation_or_release_appends_nothing() {
        let order = Uuid::new_v4();
        let (state, _) = run(
            product(5),
            ProductCommand::ReserveStock {
                order_id: order,
                quantity: qty(2),
            },
        );
        let (state, events) = run(
            state,
            ProductCommand::ReserveStock {
                order_id: order,
                quantity: qty(2),
            },
        );
        assert!(events.is_empty());
        let (state, events) = run(state, ProductCommand::ReleaseStock { order_id: order });
        assert_eq!(
            events,
            vec![ProductEvent::StockReleased {
                order_id: order,
                quantity: 2
            }]
        );
        let (state, events) = run(state, ProductCommand::ReleaseStock { order_id: order });
        assert!(events.is_empty());
        let (state, events) = run(
            state,
            ProductCommand::ReserveStock {
                order_id: order,
                quantity: qty(2),
            },
        );
        assert!(events.is_empty(), "a released order never reserves again");
        assert_eq!(state.stock_available(), 5);
    }

    #[test]
    fn shipping_moves_reserved_stock_out_of_the_shop() {
        let order = Uuid::new_v4();
        let (state, _) = run(
            product(5),
            ProductCommand::ReserveStock {
                order_id: order,
                quantity: qty(2),
            },
        );
        let (state, events) = run(state, ProductCommand::ShipStock { order_id: order });
        assert_eq!(
            events,
            vec![ProductEvent::StockShipped {
                order_id: order,
                quantity: 2
            }]
        );
        assert_eq!(
            (
                state.stock_on_hand,
                state.stock_reserved(),
                state.stock_available()
            ),
            (3, 0, 3)
        );
        let (_, events) = run(state, ProductCommand::ShipStock { order_id: order });
        assert!(events.is_empty());
    }

    #[test]
    fn restocking_adds_to_stock_on_hand() {
        let (state, _) = run(product(1), ProductCommand::Restock { quantity: qty(4) });
        assert_eq!(state.stock_on_hand, 5);
    }

    #[test]
    fn commands_on_a_missing_product_are_not_found() {
        let result = Product::default().decide(ProductCommand::Restock { quantity: qty(1) });
        assert_eq!(result, Err(DomainError::NotFound(StreamType::Product)));
    }
}

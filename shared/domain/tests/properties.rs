//! Properties of the domain over any sequence of commands (proptest generates them, shrinking
//! a failure to a shortest sequence): each command is decided on the current state and its
//! events are evolved in, as the command-api and the saga do; `decide` and `evolve` never panic
//! (no overflow, whatever the values); stock and credit stay within their bounds after every
//! step; an order's status only moves forward; every event survives its stored form.

use std::collections::HashMap;

use domain::{
    Aggregate, Cents, DomainEvent, MAX_CENTS, MAX_QUANTITY, Name, Quantity, Sku,
    customer::{Customer, CustomerCommand},
    event_from_parts, event_to_parts,
    order::{CatalogAnswer, Order, OrderCommand, OrderStatus, RejectionReason, RequestedLines},
    product::{Product, ProductCommand, StockHold},
};
use proptest::prelude::*;
use uuid::Uuid;

/// A handful of order ids, so that sequences often name the same order twice (retried steps).
fn order_id() -> impl Strategy<Value = Uuid> {
    (0u128..6).prop_map(|n| Uuid::from_u128(n + 1))
}

/// Small values mostly, the largest allowed ones sometimes (to find overflows).
fn quantity() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 1i64..20, 1 => (MAX_QUANTITY - 3)..=MAX_QUANTITY]
}

fn cents() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..5_000, 1 => (MAX_CENTS - 3)..=MAX_CENTS]
}

fn product_command() -> impl Strategy<Value = ProductCommand> {
    prop_oneof![
        (cents(), 0i64..=MAX_QUANTITY).prop_map(|(price, stock)| ProductCommand::Add {
            sku: Sku::parse("sku", "SKU-1").expect("valid"),
            name: Name::parse("name", "Tea").expect("valid"),
            price: Cents::parse("price", price).expect("valid"),
            stock,
        }),
        quantity().prop_map(|q| ProductCommand::Restock {
            quantity: Quantity::parse("quantity", q).expect("valid"),
        }),
        (order_id(), quantity()).prop_map(|(order_id, q)| ProductCommand::ReserveStock {
            order_id,
            quantity: Quantity::parse("quantity", q).expect("valid"),
        }),
        order_id().prop_map(|order_id| ProductCommand::ReleaseStock { order_id }),
        order_id().prop_map(|order_id| ProductCommand::ShipStock { order_id }),
    ]
}

fn customer_command() -> impl Strategy<Value = CustomerCommand> {
    prop_oneof![
        cents().prop_map(|limit| CustomerCommand::Register {
            name: Name::parse("name", "Ada").expect("valid"),
            credit_limit: Cents::parse("credit_limit_cents", limit).expect("valid"),
        }),
        (order_id(), cents()).prop_map(|(order_id, amount)| CustomerCommand::ReserveCredit {
            order_id,
            amount: Cents::parse("amount", amount).expect("valid"),
        }),
        order_id().prop_map(|order_id| CustomerCommand::ReleaseCredit { order_id }),
    ]
}

fn order_command() -> impl Strategy<Value = OrderCommand> {
    let place = (
        prop::collection::vec((0u128..8, quantity(), cents()), 1..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, registered, all_known)| {
            let mut seen = HashMap::new();
            for (product, quantity, price) in lines {
                seen.entry(Uuid::from_u128(product + 100))
                    .or_insert((quantity, price));
            }
            let requested: Vec<(Uuid, i64)> = seen.iter().map(|(id, (q, _))| (*id, *q)).collect();
            let prices = seen
                .iter()
                .enumerate()
                .filter(|(index, _)| all_known || *index > 0)
                .map(|(_, (id, (_, price)))| (*id, *price))
                .collect();
            OrderCommand::Place {
                customer_id: Uuid::from_u128(7),
                lines: RequestedLines::parse(&requested).expect("valid lines"),
                catalog: CatalogAnswer {
                    customer_registered: registered,
                    prices,
                },
            }
        });
    prop_oneof![
        place,
        Just(OrderCommand::Approve),
        prop_oneof![
            Just(RejectionReason::InsufficientStock),
            Just(RejectionReason::CreditLimitExceeded)
        ]
        .prop_map(|reason| OrderCommand::Reject { reason }),
        proptest::option::of("[a-z \\n\\x00]{0,600}")
            .prop_map(|reason| OrderCommand::Cancel { reason }),
        Just(OrderCommand::Ship),
    ]
}

/// Decides `command` on `state` and evolves the events in; checks each event's stored form.
fn step<A: Aggregate>(state: A, command: A::Command) -> A
where
    A::Event: PartialEq,
{
    match state.decide(command) {
        Ok(events) => {
            for event in &events {
                let (event_type, data) = event_to_parts(event);
                assert_eq!(event_type, event.event_type());
                let back: A::Event = event_from_parts(&event_type, &data).expect("decodes");
                assert!(back == *event, "{event:?} does not survive its stored form");
            }
            state.fold(&events)
        }
        Err(_) => state,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn stock_stays_within_bounds_whatever_the_commands(
        commands in prop::collection::vec(product_command(), 0..40)
    ) {
        let mut product = Product::default();
        let (mut initial, mut restocked, mut shipped) = (0, 0, 0);
        for command in commands {
            let before = product.clone();
            product = step(product, command);
            if !before.added && product.added {
                initial = product.stock_on_hand;
            }
            if product.stock_on_hand > before.stock_on_hand && before.added {
                restocked += product.stock_on_hand - before.stock_on_hand;
            }
            if product.stock_on_hand < before.stock_on_hand {
                shipped += before.stock_on_hand - product.stock_on_hand;
            }
            prop_assert!((0..=MAX_QUANTITY).contains(&product.stock_on_hand), "{product:?}");
            prop_assert!(product.stock_reserved() >= 0, "{product:?}");
            prop_assert!(product.stock_available() >= 0, "{product:?}");
            prop_assert_eq!(product.stock_on_hand, initial + restocked - shipped);
            // A hold, once refused, released or shipped, is never reserved again.
            for (order, hold) in &before.stock_by_order {
                if !matches!(hold, StockHold::Reserved(_)) {
                    prop_assert_eq!(product.stock_by_order.get(order), Some(hold));
                }
            }
        }
    }

    #[test]
    fn credit_stays_within_the_limit_whatever_the_commands(
        commands in prop::collection::vec(customer_command(), 0..40)
    ) {
        let mut customer = Customer::default();
        for command in commands {
            customer = step(customer, command);
            let reserved = customer.credit_reserved_cents();
            prop_assert!(reserved >= 0, "{customer:?}");
            prop_assert!(reserved <= customer.credit_limit_cents, "{customer:?}");
            prop_assert!(customer.credit_available_cents() >= 0, "{customer:?}");
        }
    }

    #[test]
    fn an_order_only_moves_forward_whatever_the_commands(
        commands in prop::collection::vec(order_command(), 0..20)
    ) {
        let mut order = Order::default();
        for command in commands {
            let before = order.clone();
            order = step(order, command);
            if before.placed {
                prop_assert_eq!(&order.lines, &before.lines);
                let terminal = matches!(
                    before.status,
                    OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Shipped
                );
                if terminal {
                    prop_assert_eq!(order.status, before.status);
                }
                if order.status == OrderStatus::Shipped {
                    prop_assert!(matches!(before.status, OrderStatus::Approved | OrderStatus::Shipped));
                }
            }
            if order.placed {
                let total: i64 = order.lines.iter().map(|l| l.quantity * l.unit_price_cents).sum();
                prop_assert_eq!(order.total_cents, total);
                prop_assert!((0..=MAX_CENTS).contains(&order.total_cents));
                prop_assert_eq!(
                    order.rejection_reason.is_some(),
                    order.status == OrderStatus::Rejected
                );
            }
        }
    }
}

//! An order: placed pending, then approved or rejected by the saga, cancelled or shipped by the
//! client. Saga-facing commands (approve, reject) are idempotent no-ops once the order has left
//! `pending`, because a saga step may be re-run or lose a race with a cancel; client-facing
//! commands (cancel, ship) refuse with a rule violation instead.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Aggregate, DomainError, DomainEvent, FieldError, MAX_CENTS, Quantity, StreamType};

pub const MAX_LINES: usize = 50;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Shipped,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Rejected,
        Self::Cancelled,
        Self::Shipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Shipped => "shipped",
        }
    }
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    InsufficientStock,
    CreditLimitExceeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub placed: bool,
    pub customer_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
    pub status: OrderStatus,
    pub rejection_reason: Option<RejectionReason>,
}

/// The lines of an order to be placed: 1 to 50, each product once, each quantity positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLines(Vec<(Uuid, Quantity)>);

impl RequestedLines {
    pub fn parse(lines: &[(Uuid, i64)]) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        if lines.is_empty() || lines.len() > MAX_LINES {
            errors.push(FieldError::new(
                "lines",
                format!("must have 1 to {MAX_LINES} lines"),
            ));
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for (index, (product_id, quantity)) in lines.iter().enumerate() {
            if !seen.insert(*product_id) {
                errors.push(FieldError::new(
                    format!("lines[{index}].product_id"),
                    "each product may appear on one line only",
                ));
            }
            match Quantity::parse(&format!("lines[{index}].quantity"), *quantity) {
                Ok(quantity) => parsed.push((*product_id, quantity)),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(Self(parsed))
        } else {
            Err(DomainError::Invalid(errors))
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &(Uuid, Quantity)> {
        self.0.iter()
    }
    pub fn product_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.0.iter().map(|(product_id, _)| *product_id)
    }
}

/// What placing an order needs to know from outside the order: whether the customer is
/// registered and what each product costs now. The command side fills it in (in one query);
/// what follows from the answer is decided here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogAnswer {
    pub customer_registered: bool,
    /// The current price of every requested product that exists; a missing one does not.
    pub prices: HashMap<Uuid, i64>,
}

#[derive(Debug, Clone)]
pub enum OrderCommand {
    /// Unit prices are captured from `catalog` now; an unknown customer or product is refused.
    Place {
        customer_id: Uuid,
        lines: RequestedLines,
        catalog: CatalogAnswer,
    },
    Approve,
    Reject {
        reason: RejectionReason,
    },
    Cancel {
        reason: Option<String>,
    },
    Ship,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    OrderPlaced {
        customer_id: Uuid,
        lines: Vec<OrderLine>,
        total_cents: i64,
    },
    OrderApproved {},
    OrderRejected {
        reason: RejectionReason,
    },
    OrderCancelled {
        reason: Option<String>,
    },
    OrderShipped {},
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::OrderPlaced { .. } => "OrderPlaced",
            Self::OrderApproved { .. } => "OrderApproved",
            Self::OrderRejected { .. } => "OrderRejected",
            Self::OrderCancelled { .. } => "OrderCancelled",
            Self::OrderShipped { .. } => "OrderShipped",
        }
    }
}

pub const MAX_CANCEL_REASON_CHARS: usize = 500;

impl Aggregate for Order {
    const STREAM_TYPE: StreamType = StreamType::Order;
    const SNAPSHOT_SCHEMA: i32 = 1;
    type Event = OrderEvent;
    type Command = OrderCommand;

    fn exists(&self) -> bool {
        self.placed
    }

    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        if !matches!(command, OrderCommand::Place { .. }) && !self.placed {
            return Err(DomainError::NotFound(Self::STREAM_TYPE));
        }
        let status = self.status;
        match command {
            OrderCommand::Place {
                customer_id,
                lines,
                catalog,
            } => {
                if self.placed {
                    return Err(DomainError::RuleViolated("the order already exists".into()));
                }
                place(customer_id, &lines, &catalog)
            }
            OrderCommand::Approve if status == OrderStatus::Pending => {
                Ok(vec![OrderEvent::OrderApproved {}])
            }
            OrderCommand::Reject { reason } if status == OrderStatus::Pending => {
                Ok(vec![OrderEvent::OrderRejected { reason }])
            }
            OrderCommand::Approve | OrderCommand::Reject { .. } => Ok(vec![]),
            OrderCommand::Cancel { reason } => match status {
                OrderStatus::Pending | OrderStatus::Approved => {
                    if let Some(reason) = &reason
                        && (reason.chars().count() > MAX_CANCEL_REASON_CHARS
                            || reason
                                .chars()
                                .any(|c| c.is_control() && c != '\n' && c != '\t'))
                    {
                        return Err(DomainError::invalid(
                            "reason",
                            format!(
                                "must be at most {MAX_CANCEL_REASON_CHARS} characters, without control characters"
                            ),
                        ));
                    }
                    Ok(vec![OrderEvent::OrderCancelled { reason }])
                }
                other => Err(DomainError::RuleViolated(format!(
                    "a {} order cannot be cancelled",
                    other.as_str()
                ))),
            },
            OrderCommand::Ship => match status {
                OrderStatus::Approved => Ok(vec![OrderEvent::OrderShipped {}]),
                other => Err(DomainError::RuleViolated(format!(
                    "only an approved order can be shipped; this one is {}",
                    other.as_str()
                ))),
            },
        }
    }

    fn evolve(mut self, event: &OrderEvent) -> Self {
        match event {
            OrderEvent::OrderPlaced {
                customer_id,
                lines,
                total_cents,
            } => {
                self.placed = true;
                self.customer_id = *customer_id;
                self.lines.clone_from(lines);
                self.total_cents = *total_cents;
                self.status = OrderStatus::Pending;
            }
            OrderEvent::OrderApproved {} => self.status = OrderStatus::Approved,
            OrderEvent::OrderRejected { reason } => {
                self.status = OrderStatus::Rejected;
                self.rejection_reason = Some(*reason);
            }
            OrderEvent::OrderCancelled { .. } => self.status = OrderStatus::Cancelled,
            OrderEvent::OrderShipped {} => self.status = OrderStatus::Shipped,
        }
        self
    }
}

fn place(
    customer_id: Uuid,
    requested: &RequestedLines,
    catalog: &CatalogAnswer,
) -> Result<Vec<OrderEvent>, DomainError> {
    let mut unknown = Vec::new();
    if !catalog.customer_registered {
        unknown.push(FieldError::new("customer_id", "no customer has this id"));
    }
    let mut lines = Vec::with_capacity(requested.0.len());
    for (index, (product_id, quantity)) in requested.iter().enumerate() {
        match catalog.prices.get(product_id) {
            Some(unit_price_cents) => lines.push(OrderLine {
                product_id: *product_id,
                quantity: quantity.get(),
                unit_price_cents: *unit_price_cents,
            }),
            None => unknown.push(FieldError::new(
                format!("lines[{index}].product_id"),
                "no product has this id",
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(DomainError::Invalid(unknown));
    }
    let total = lines.iter().try_fold(0i64, |sum, line| {
        line.unit_price_cents
            .checked_mul(line.quantity)
            .and_then(|amount| sum.checked_add(amount))
    });
    match total {
        Some(total_cents) if total_cents <= MAX_CENTS => Ok(vec![OrderEvent::OrderPlaced {
            customer_id,
            lines,
            total_cents,
        }]),
        _ => Err(DomainError::invalid(
            "lines",
            format!("the order total must not exceed {MAX_CENTS} cents"),
        )),
    }
}

impl Order {
    /// True while the saga should still reserve for this order: a step that runs late (a parked
    /// event retried after a cancel) must not start holding stock or credit for it.
    pub fn awaits_reservations(&self) -> bool {
        self.placed && self.status == OrderStatus::Pending
    }

    /// The products of its lines, in order.
    pub fn products(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.lines.iter().map(|line| line.product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(customer_registered: bool, prices: &[(Uuid, i64)]) -> CatalogAnswer {
        CatalogAnswer {
            customer_registered,
            prices: prices.iter().copied().collect(),
        }
    }

    fn placed() -> Order {
        let (tea, cake) = (Uuid::new_v4(), Uuid::new_v4());
        let lines = RequestedLines::parse(&[(tea, 2), (cake, 1)]).expect("valid lines");
        let events = Order::default()
            .decide(OrderCommand::Place {
                customer_id: Uuid::new_v4(),
                lines,
                catalog: catalog(true, &[(tea, 150), (cake, 1_000)]),
            })
            .expect("placed");
        Order::default().fold(&events)
    }

    fn with(state: Order, event: OrderEvent) -> Order {
        state.evolve(&event)
    }

    #[test]
    fn placing_captures_prices_and_totals_them() {
        let order = placed();
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.total_cents, 1_300);
        assert_eq!(order.lines[0].unit_price_cents, 150);
    }

    #[test]
    fn an_unknown_customer_or_product_is_refused_naming_each_field() {
        let (known, unknown) = (Uuid::new_v4(), Uuid::new_v4());
        let lines = RequestedLines::parse(&[(known, 1), (unknown, 1)]).expect("valid lines");
        let refused = Order::default().decide(OrderCommand::Place {
            customer_id: Uuid::new_v4(),
            lines,
            catalog: catalog(false, &[(known, 100)]),
        });
        let Err(DomainError::Invalid(errors)) = refused else {
            panic!("an unknown customer and product must be refused: {refused:?}");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "lines[1].product_id"]);
    }

    #[test]
    fn only_a_pending_order_awaits_reservations() {
        let order = placed();
        assert!(order.awaits_reservations());
        assert!(!Order::default().awaits_reservations());
        let cancelled = with(order, OrderEvent::OrderCancelled { reason: None });
        assert!(!cancelled.awaits_reservations());
    }

    #[test]
    fn requested_lines_must_be_distinct_positive_and_at_most_fifty() {
        let product = Uuid::new_v4();
        let Err(DomainError::Invalid(errors)) =
            RequestedLines::parse(&[(product, 1), (product, 0)])
        else {
            panic!("duplicate product and zero quantity must be refused");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lines[1].product_id", "lines[1].quantity"]);
        assert!(RequestedLines::parse(&[]).is_err());
        let many: Vec<_> = (0..51).map(|_| (Uuid::new_v4(), 1)).collect();
        assert!(RequestedLines::parse(&many).is_err());
    }

    #[test]
    fn transitions_follow_the_contract() {
        use OrderStatus::*;
        let cases: [(OrderStatus, OrderCommand, Result<usize, ()>); 12] = [
            (Pending, OrderCommand::Approve, Ok(1)),
            (Approved, OrderCommand::Approve, Ok(0)),
            (Cancelled, OrderCommand::Approve, Ok(0)),
            (
                Pending,
                OrderCommand::Reject {
                    reason: RejectionReason::InsufficientStock,
                },
                Ok(1),
            ),
            (
                Cancelled,
                OrderCommand::Reject {
                    reason: RejectionReason::InsufficientStock,
                },
                Ok(0),
            ),
            (Pending, OrderCommand::Cancel { reason: None }, Ok(1)),
            (
                Approved,
                OrderCommand::Cancel {
                    reason: Some("changed my mind".into()),
                },
                Ok(1),
            ),
            (Shipped, OrderCommand::Cancel { reason: None }, Err(())),
            (Rejected, OrderCommand::Cancel { reason: None }, Err(())),
            (Cancelled, OrderCommand::Cancel { reason: None }, Err(())),
            (Approved, OrderCommand::Ship, Ok(1)),
            (Pending, OrderCommand::Ship, Err(())),
        ];
        for (status, command, expected) in cases {
            let state = Order { status, ..placed() };
            let outcome = state
                .decide(command.clone())
                .map(|events| events.len())
                .map_err(|_| ());
            assert_eq!(outcome, expected, "{status:?} + {command:?}");
        }
    }

    #[test]
    fn rejection_records_its_reason() {
        let order = with(
            placed(),
            OrderEvent::OrderRejected {
                reason: RejectionReason::CreditLimitExceeded,
            },
        );
        assert_eq!(order.status, OrderStatus::Rejected);
        assert_eq!(
            order.rejection_reason,
            Some(RejectionReason::CreditLimitExceeded)
        );
    }

    #[test]
    fn commands_on_a_missing_order_are_not_found() {
        assert_eq!(
            Order::default().decide(OrderCommand::Ship),
            Err(DomainError::NotFound(StreamType::Order))
        );
    }
}

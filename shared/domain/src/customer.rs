//! A customer and the credit it has promised to orders. Every reservation names its order, and
//! the record of that order is kept after release, so a saga step re-run after a crash can never
//! reserve the same order's credit twice, nor take back credit the order already released.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Aggregate, Cents, DomainError, DomainEvent, Name, StreamType};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub registered: bool,
    pub name: String,
    pub credit_limit_cents: i64,
    /// Every order this customer's credit was asked for, and what became of it.
    pub credit_by_order: BTreeMap<Uuid, CreditHold>,
    /// The customer's personal data was erased (`name` is `personal::ERASED` from then on).
    #[serde(default)]
    pub forgotten: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "amount_cents", rename_all = "snake_case")]
pub enum CreditHold {
    Reserved(i64),
    Released(i64),
    Refused(i64),
}

impl Customer {
    pub fn credit_reserved_cents(&self) -> i64 {
        self.credit_by_order
            .values()
            .map(|hold| match hold {
                CreditHold::Reserved(amount) => *amount,
                CreditHold::Released(_) | CreditHold::Refused(_) => 0,
            })
            .sum()
    }
    pub fn credit_available_cents(&self) -> i64 {
        self.credit_limit_cents - self.credit_reserved_cents()
    }
}

#[derive(Debug, Clone)]
pub enum CustomerCommand {
    Register {
        name: Name,
        credit_limit: Cents,
    },
    ReserveCredit {
        order_id: Uuid,
        amount: Cents,
    },
    ReleaseCredit {
        order_id: Uuid,
    },
    /// Erase the customer's personal data (the right to erasure); their credit stays.
    ForgetPersonalData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CustomerEvent {
    CustomerRegistered {
        name: String,
        credit_limit_cents: i64,
    },
    CreditReserved {
        order_id: Uuid,
        amount_cents: i64,
    },
    CreditReservationRejected {
        order_id: Uuid,
        amount_cents: i64,
        available_cents: i64,
    },
    CreditReleased {
        order_id: Uuid,
        amount_cents: i64,
    },
    /// The customer's personal data is erased: its key is destroyed, so every reader sees
    /// `personal::ERASED` in place of it, in this and every earlier event.
    CustomerForgotten {},
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CustomerRegistered { .. } => "CustomerRegistered",
            Self::CreditReserved { .. } => "CreditReserved",
            Self::CreditReservationRejected { .. } => "CreditReservationRejected",
            Self::CreditReleased { .. } => "CreditReleased",
            Self::CustomerForgotten {} => "CustomerForgotten",
        }
    }
}

impl Aggregate for Customer {
    const STREAM_TYPE: StreamType = StreamType::Customer;
    const SNAPSHOT_SCHEMA: i32 = 1;
    type Event = CustomerEvent;
    type Command = CustomerCommand;

    fn exists(&self) -> bool {
        self.registered
    }

    fn decide(&self, command: CustomerCommand) -> Result<Vec<CustomerEvent>, DomainError> {
        if !matches!(command, CustomerCommand::Register { .. }) && !self.registered {
            return Err(DomainError::NotFound(Self::STREAM_TYPE));
        }
        match command {
            CustomerCommand::Register { name, credit_limit } => {
                if self.registered {
                    return Err(DomainError::RuleViolated(
                        "the customer is already registered".into(),
                    ));
                }
                Ok(vec![CustomerEvent::CustomerRegistered {
                    name: name.as_str().to_owned(),
                    credit_limit_cents: credit_limit.get(),
                }])
            }
            CustomerCommand::ReserveCredit { order_id, amount } => {
                if self.credit_by_order.contains_key(&order_id) {
                    return Ok(vec![]); // already decided for this order: a retried step
                }
                let amount_cents = amount.get();
                let available_cents = self.credit_available_cents();
                Ok(vec![if amount_cents <= available_cents {
                    CustomerEvent::CreditReserved {
                        order_id,
                        amount_cents,
                    }
                } else {
                    CustomerEvent::CreditReservationRejected {
                        order_id,
                        amount_cents,
                        available_cents,
                    }
                }])
            }
            CustomerCommand::ReleaseCredit { order_id } => {
                match self.credit_by_order.get(&order_id) {
                    Some(CreditHold::Reserved(amount_cents)) => {
                        Ok(vec![CustomerEvent::CreditReleased {
                            order_id,
                            amount_cents: *amount_cents,
                        }])
                    }
                    _ => Ok(vec![]), // nothing held: releasing is a no-op
                }
            }
            // Forgetting twice is forgetting once.
            CustomerCommand::ForgetPersonalData if self.forgotten => Ok(vec![]),
            CustomerCommand::ForgetPersonalData => Ok(vec![CustomerEvent::CustomerForgotten {}]),
        }
    }

    fn evolve(mut self, event: &CustomerEvent) -> Self {
        match event {
            CustomerEvent::CustomerRegistered {
                name,
                credit_limit_cents,
            } => {
                self.registered = true;
                self.name.clone_from(name);
                self.credit_limit_cents = *credit_limit_cents;
            }
            CustomerEvent::CreditReserved {
                order_id,
                amount_cents,
            } => {
                self.credit_by_order
                    .insert(*order_id, CreditHold::Reserved(*amount_cents));
            }
            CustomerEvent::CreditReservationRejected {
                order_id,
                amount_cents,
                ..
            } => {
                self.credit_by_order
                    .insert(*order_id, CreditHold::Refused(*amount_cents));
            }
            CustomerEvent::CreditReleased {
                order_id,
                amount_cents,
            } => {
                self.credit_by_order
                    .insert(*order_id, CreditHold::Released(*amount_cents));
            }
            CustomerEvent::CustomerForgotten {} => {
                self.forgotten = true;
                self.name = crate::personal::ERASED.to_owned();
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(limit: i64) -> Customer {
        Customer::default().evolve(&CustomerEvent::CustomerRegistered {
            name: "Ada".into(),
            credit_limit_cents: limit,
        })
    }

    fn run(state: Customer, command: CustomerCommand) -> (Customer, Vec<CustomerEvent>) {
        let events = state.decide(command).expect("command accepted");
        (state.fold(&events), events)
    }

    fn cents(value: i64) -> Cents {
        Cents::parse("amount", value).expect("valid cents")
    }

    #[test]
    fn commands_on_an_unregistered_customer_are_not_found() {
        let result = Customer::default().decide(CustomerCommand::ReleaseCredit {
            order_id: Uuid::nil(),
        });
        assert_eq!(result, Err(DomainError::NotFound(StreamType::Customer)));
    }

    #[test]
    fn credit_is_reserved_up_to_the_limit_and_refused_beyond_it() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (state, events) = run(
            registered(1_000),
            CustomerCommand::ReserveCredit {
                order_id: a,
                amount: cents(700),
            },
        );
        assert_eq!(
            events,
            vec![CustomerEvent::CreditReserved {
                order_id: a,
                amount_cents: 700
            }]
        );
        let (state, events) = run(
            state,
            CustomerCommand::ReserveCredit {
                order_id: b,
                amount: cents(301),
            },
        );
        assert_eq!(
            events,
            vec![CustomerEvent::CreditReservationRejected {
                order_id: b,
                amount_cents: 301,
                available_cents: 300
            }]
        );
        assert_eq!(state.credit_reserved_cents(), 700);
        assert_eq!(state.credit_available_cents(), 300);
    }

    #[test]
    fn a_repeated_reservation_for_the_same_order_appends_nothing() {
        let order = Uuid::new_v4();
        let (state, _) = run(
            registered(1_000),
            CustomerCommand::ReserveCredit {
                order_id: order,
                amount: cents(100),
            },
        );
        let (state, events) = run(
            state,
            CustomerCommand::ReserveCredit {
                order_id: order,
                amount: cents(100),
            },
        );
        assert!(events.is_empty());
        assert_eq!(state.credit_reserved_cents(), 100);
    }

    #[test]
    fn released_credit_cannot_be_reserved_again_for_the_same_order() {
        let order = Uuid::new_v4();
        let (state, _) = run(
            registered(1_000),
            CustomerCommand::ReserveCredit {
                order_id: order,
                amount: cents(100),
            },
        );
        let (state, events) = run(state, CustomerCommand::ReleaseCredit { order_id: order });
        assert_eq!(
            events,
            vec![CustomerEvent::CreditReleased {
                order_id: order,
                amount_cents: 100
            }]
        );
        let (state, events) = run(
            state,
            CustomerCommand::ReserveCredit {
                order_id: order,
                amount: cents(100),
            },
        );
        assert!(events.is_empty());
        let (state, events) = run(state, CustomerCommand::ReleaseCredit { order_id: order });
        assert!(events.is_empty());
        assert_eq!(state.credit_reserved_cents(), 0);
    }

    #[test]
    fn registering_twice_is_a_rule_violation() {
        let result = registered(5).decide(CustomerCommand::Register {
            name: Name::parse("name", "Bo").expect("valid name"),
            credit_limit: cents(5),
        });
        assert!(matches!(result, Err(DomainError::RuleViolated(_))));
    }

    #[test]
    fn forgetting_erases_the_name_keeps_the_credit_and_is_idempotent() {
        let (customer, _) = run(
            registered(1_000),
            CustomerCommand::ReserveCredit {
                order_id: Uuid::nil(),
                amount: cents(300),
            },
        );
        let (forgotten, events) = run(customer, CustomerCommand::ForgetPersonalData);
        assert_eq!(events, vec![CustomerEvent::CustomerForgotten {}]);
        assert_eq!(forgotten.name, crate::personal::ERASED);
        assert_eq!(forgotten.credit_available_cents(), 700);
        let (_, again) = run(forgotten, CustomerCommand::ForgetPersonalData);
        assert!(again.is_empty());
        assert_eq!(
            Customer::default().decide(CustomerCommand::ForgetPersonalData),
            Err(DomainError::NotFound(StreamType::Customer))
        );
    }
}

//! One module per resource; `health` holds the operational endpoints.

pub mod customers;
pub mod health;
pub mod orders;
pub mod products;

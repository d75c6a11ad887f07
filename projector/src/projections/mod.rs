//! One module per read model. PostgreSQL read models share `postgres::PgProjection`, which
//! writes a batch and its checkpoint in one transaction; the Redis read model keeps a position
//! on every document instead (`lookups`).

pub mod document_versions;
pub mod erasure;
pub mod event_feed;
pub mod lookups;
pub mod order_history;
pub mod order_list;
pub mod postgres;
pub mod product_catalog;

//! One module per read model. The PostgreSQL read models are applied together by
//! `postgres::PgReadModels`: one read of each batch, one transaction for all of them and their
//! checkpoints; the Redis read model keeps a position on every document instead (`lookups`).

pub mod document_versions;
pub mod erasure;
pub mod event_feed;
pub mod lookups;
pub mod order_history;
pub mod order_list;
pub mod postgres;
pub mod product_catalog;

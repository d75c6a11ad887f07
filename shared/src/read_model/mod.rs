//! What the projector writes and the query-api reads: the documents of each read model, how
//! each folds events, and where they live (Redis keys, PostgreSQL tables, projection names).

mod fold;
mod keys;
mod views;

pub use fold::{Document, fold_documents, stream_ids};
pub use keys::RedisKeys;
pub use views::{CustomerView, HistoryEntry, OrderView, ProductView};

/// The names of the read-model projections, as `/projections` lists them.
pub mod names {
    /// Redis documents of orders, products and customers, for lookups by id.
    pub const LOOKUPS: &str = "lookups";
    /// PostgreSQL: orders, for lists filtered by customer and status.
    pub const ORDER_LIST: &str = "order_list";
    /// PostgreSQL: products, for name search.
    pub const PRODUCT_CATALOG: &str = "product_catalog";
    /// PostgreSQL: each order's events, including the saga's steps on other aggregates.
    pub const ORDER_HISTORY: &str = "order_history";

    pub const READ_MODELS: [&str; 4] = [LOOKUPS, ORDER_LIST, PRODUCT_CATALOG, ORDER_HISTORY];
}

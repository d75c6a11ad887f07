//! What the projector writes and the query-api reads: the documents of each read model and how
//! each folds events (reusing the domain's `evolve` where the shapes allow), where they live
//! (Redis keys and the Lua scripts that read and write them, PostgreSQL tables), and the names
//! of the projections. One owner for every layout, so writer and reader cannot drift apart.

mod connection;
mod documents;
mod keys;
mod live_read;
mod scripts;

pub use connection::{DEFAULT_REDIS_KEY_PREFIX, DEFAULT_REDIS_URL, RedisArgs, connect};
pub use documents::{CustomerView, EventMeta, OrderLineView, OrderView, ProductView};
pub use keys::{DocumentKind, RedisKeys};
pub use live_read::{LiveDocument, LiveRead};
pub use scripts::LookupScripts;

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
    /// PostgreSQL: every event in position order (the dashboard's newest events and rate).
    pub const EVENT_FEED: &str = "event_feed";
    /// PostgreSQL: every version of every document, for `as_of` (time travel).
    pub const DOCUMENT_VERSIONS: &str = "document_versions";

    pub const READ_MODELS: [&str; 6] = [
        LOOKUPS,
        ORDER_LIST,
        PRODUCT_CATALOG,
        ORDER_HISTORY,
        EVENT_FEED,
        DOCUMENT_VERSIONS,
    ];
}

/// The PostgreSQL read-model tables: `projection_store.<table>_g<generation>` holds each
/// generation, and the view `read_model.<table>` (all the query-api may read) names the live one.
pub mod tables {
    pub const ORDERS: &str = "orders";
    pub const PRODUCTS: &str = "products";
    pub const ORDER_HISTORY: &str = "order_history";
    pub const EVENT_FEED: &str = "event_feed";
    pub const DOCUMENT_VERSIONS: &str = "document_versions";

    /// The table of one generation, e.g. `projection_store.orders_g2`.
    pub fn generation_table(table: &str, generation: i32) -> String {
        format!("projection_store.{table}_g{generation}")
    }
}

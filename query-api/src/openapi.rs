//! The query-api's OpenAPI 3.1 document, generated from the handlers' annotations. The committed
//! copy in `openapi/query-api.json` is checked against it by a test.

use utoipa::OpenApi;

use crate::routes::{customers, dashboard, feed, health, orders, products, projections};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "query-api",
        description = "The read side of the CQRS order system: lookups from Redis, lists, search and history \
            from PostgreSQL. Every GET takes `min_position` (a `position` a command answered) to read your own \
            writes, and answers `X-Position`.",
        license(name = "MIT", identifier = "MIT")
    ),
    paths(
        orders::get_order,
        orders::list_orders,
        orders::order_history,
        products::get_product,
        products::search_products,
        customers::get_customer,
        feed::feed,
        feed::order_feed,
        projections::projections,
        dashboard::summary,
        dashboard::page,
        http_kit::operations::healthz,
        health::readyz,
        http_kit::operations::metrics,
    ),
    components(schemas(http_kit::Problem)),
    tags(
        (name = "orders", description = "Orders and their history"),
        (name = "products", description = "The catalog and its stock"),
        (name = "customers", description = "Customers and their credit"),
        (name = "feed", description = "Live change feeds (server-sent events)"),
        (name = "operations", description = "Projections, the operator dashboard, health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

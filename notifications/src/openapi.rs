//! The service's OpenAPI 3.1 document, generated from the handlers' annotations. The committed
//! copy in `openapi/notifications.json` is checked against it by a test.

use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "notifications",
        description = "A service of its own beside the shop: it consumes the shop's integration events from NATS \
            JetStream (a durable consumer, explicit acks, an inbox that drops an event it has handled) and records \
            the message a customer gets when an order is approved, rejected, cancelled or shipped. It keeps its own \
            data and never reads the shop's database.",
        license(name = "MIT", identifier = "MIT")
    ),
    paths(
        routes::customer_notifications,
        routes::order_notifications,
        http_kit::operations::healthz,
        routes::readyz,
        http_kit::operations::metrics,
    ),
    components(schemas(http_kit::Problem)),
    tags(
        (name = "notifications", description = "What customers were told about their orders"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

//! The committed OpenAPI document must equal what the service serves. Run with
//! `UPDATE_OPENAPI=1` to rewrite it after changing an endpoint.

use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::nats::{TestStream, shared_url};

use crate::RunningService;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/notifications.json");

#[sqlx::test(migrations = false)]
async fn the_committed_openapi_document_is_what_the_service_serves(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let service = RunningService::start(&connect, &TestStream::new(&shared_url())).await;
    let (status, served) = service.get("/api-docs/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served["openapi"], "3.1.0");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let pretty = serde_json::to_string_pretty(&served).expect("serializable") + "\n";
        std::fs::write(COMMITTED, pretty).expect("write openapi/notifications.json");
    }
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(COMMITTED).expect("openapi/notifications.json exists"),
    )
    .expect("valid JSON");
    assert_eq!(
        committed, served,
        "openapi/notifications.json is stale: rerun this test with UPDATE_OPENAPI=1"
    );
    let (status, _) = service.get("/swagger-ui/").await;
    assert_eq!(status, StatusCode::OK);
    service.stop().await;
}

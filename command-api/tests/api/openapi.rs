//! The committed OpenAPI document must equal what the service serves. Run with
//! `UPDATE_OPENAPI=1` to rewrite it after changing an endpoint.

use reqwest::StatusCode;
use sqlx::PgPool;

use testkit::TestSystem;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/command-api.json");

#[sqlx::test(migrations = false)]
async fn the_committed_openapi_document_is_what_the_service_serves(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let served: serde_json::Value = app
        .command_api_get("/api-docs/openapi.json")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(served["openapi"], "3.1.0");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let pretty = serde_json::to_string_pretty(&served).expect("serializable") + "\n";
        std::fs::write(COMMITTED, pretty).expect("write openapi/command-api.json");
    }
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(COMMITTED).expect("openapi/command-api.json exists"),
    )
    .expect("valid JSON");
    assert_eq!(
        committed, served,
        "openapi/command-api.json is stale: rerun this test with UPDATE_OPENAPI=1"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn swagger_ui_is_served_offline(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let page = app
        .command_api_get("/swagger-ui/")
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("text").contains("swagger"));
    let script = app
        .command_api_get("/swagger-ui/swagger-ui-bundle.js")
        .send()
        .await
        .expect("sent");
    assert_eq!(script.status(), StatusCode::OK);
    app.stop().await;
}

//! The HTTP server every API runs: the conventions (request ids, metrics, problem+json for
//! every error, body and parameter limits, API docs, 404 for unknown routes) in one place, and
//! the service's own routes and state from `configure`.

use std::net::SocketAddr;

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;

use super::{
    configure_api_docs, json_config, observe_requests, path_config, payload_config, query_config,
    route_not_found,
};

pub struct ApiServer {
    server: Server,
    address: SocketAddr,
}

impl ApiServer {
    /// Binds `addr` (named by `addr_variable` in the error if it is taken) and starts serving.
    pub fn start<F>(
        addr: &str,
        addr_variable: &str,
        openapi: utoipa::openapi::OpenApi,
        configure: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        crate::telemetry::metrics_handle(); // installs the recorder before the first request
        let listener = std::net::TcpListener::bind(addr).with_context(|| {
            format!("cannot listen on {addr}: is another process using it? (set {addr_variable})")
        })?;
        let address = listener.local_addr()?;
        let server = HttpServer::new(move || {
            let openapi = openapi.clone();
            App::new()
                .wrap(from_fn(observe_requests))
                .app_data(json_config())
                .app_data(path_config())
                .app_data(query_config())
                .app_data(payload_config())
                .configure(configure.clone())
                .configure(move |cfg| configure_api_docs(cfg, openapi))
                .default_service(web::to(route_not_found))
        })
        .listen(listener)?
        .run();
        Ok(Self { server, address })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("the HTTP server failed")
    }
}

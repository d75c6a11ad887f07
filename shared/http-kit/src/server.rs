//! The HTTP server every service runs: the conventions (request ids, metrics, problem+json for
//! every error, body and parameter limits, time limits for slow clients, API docs, 404 for
//! unknown routes) in one place, and the service's own routes and state from `configure`.

use std::{net::SocketAddr, sync::Arc};

use actix_web::{
    App, HttpServer,
    dev::{Server, ServerHandle},
    middleware::{Condition, from_fn},
    web,
};
use anyhow::Context;

use crate::{
    configure_api_docs,
    deadlines::{self, body_deadline},
    json_config, observe_requests, path_config, payload_config, query_config, route_not_found,
    security::{self, CorsOrigins, security_headers},
};

/// Where and how a service serves HTTP.
pub struct ServerConfig {
    /// The listen address, e.g. `127.0.0.1:8080` (port 0 picks a free one).
    pub addr: String,
    /// The setting that chose `addr`, named when it cannot be bound.
    pub addr_variable: &'static str,
    /// The OpenAPI document served at `/api-docs/openapi.json`, with Swagger UI; none for a
    /// service that only serves operations endpoints.
    pub openapi: Option<utoipa::openapi::OpenApi>,
    /// Worker threads (actix's default, one per core, when `None`).
    pub workers: Option<usize>,
    /// Stop on SIGTERM/SIGINT by itself; off when the service owns its shutdown.
    pub handle_signals: bool,
    /// Run before each `/metrics` render, to set gauges read from state (a pool's use).
    pub samplers: Vec<Sampler>,
    /// Origins whose pages may call the service (CORS); none: closed.
    pub cors_allowed_origins: CorsOrigins,
}

/// Sets gauges from the current state of something the server holds; run at every scrape, so
/// the values are as fresh as the scrape and nothing runs when nobody looks.
pub type Sampler = Arc<dyn Fn() + Send + Sync>;

/// The samplers of one server, as `/metrics` finds them.
#[derive(Clone, Default)]
pub(crate) struct ScrapeSamplers(pub(crate) Vec<Sampler>);

impl ServerConfig {
    pub fn new(addr: impl Into<String>, addr_variable: &'static str) -> Self {
        Self {
            addr: addr.into(),
            addr_variable,
            openapi: None,
            workers: None,
            handle_signals: true,
            samplers: Vec::new(),
            cors_allowed_origins: CorsOrigins::default(),
        }
    }
    /// Runs `sample` before each `/metrics` render (e.g. `database::record_pool_use`).
    pub fn sample_before_scrape(mut self, sample: impl Fn() + Send + Sync + 'static) -> Self {
        self.samplers.push(Arc::new(sample));
        self
    }
    pub fn cors(mut self, allowed_origins: CorsOrigins) -> Self {
        self.cors_allowed_origins = allowed_origins;
        self
    }
    pub fn openapi(mut self, openapi: utoipa::openapi::OpenApi) -> Self {
        self.openapi = Some(openapi);
        self
    }
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }
    pub fn without_signal_handling(mut self) -> Self {
        self.handle_signals = false;
        self
    }
}

pub struct ApiServer {
    server: Server,
    address: SocketAddr,
}

impl ApiServer {
    /// Binds the address and starts serving.
    pub fn start<F>(config: ServerConfig, configure: F) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        crate::telemetry::metrics_handle(); // installs the recorder before the first request
        let ServerConfig {
            addr,
            addr_variable,
            openapi,
            workers,
            handle_signals,
            samplers,
            cors_allowed_origins,
        } = config;
        let samplers = web::Data::new(ScrapeSamplers(samplers));
        let workers = workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let mut server = HttpServer::new(move || {
            let openapi = openapi.clone();
            let cors_open = !cors_allowed_origins.0.is_empty();
            App::new()
                .wrap(from_fn(body_deadline))
                .wrap(Condition::new(
                    cors_open,
                    security::cors(&cors_allowed_origins),
                ))
                .wrap(from_fn(security_headers))
                .wrap(from_fn(observe_requests))
                .app_data(samplers.clone())
                .app_data(json_config())
                .app_data(path_config())
                .app_data(query_config())
                .app_data(payload_config())
                .configure(configure.clone())
                .configure(move |cfg| {
                    if let Some(openapi) = openapi {
                        configure_api_docs(cfg, openapi);
                    }
                })
                .default_service(web::to(route_not_found))
        })
        .workers(workers)
        .client_request_timeout(deadlines::REQUEST_HEAD_TIMEOUT)
        .keep_alive(deadlines::KEEP_ALIVE)
        .client_disconnect_timeout(std::time::Duration::from_secs(1))
        .max_connections(deadlines::connections_per_worker(workers))
        .backlog(deadlines::LISTEN_BACKLOG);
        if !handle_signals {
            server = server.disable_signals();
        }
        // actix binds with the backlog set above (a std listener would get 128).
        let server = server.bind(&addr).with_context(|| {
            format!("cannot listen on {addr}: is another process using it? (set {addr_variable})")
        })?;
        let address = *server.addrs().first().with_context(|| {
            format!("{addr} names no address to listen on (set {addr_variable})")
        })?;
        let server = server.run();
        Ok(Self { server, address })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server from outside (finishing the requests in flight).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM or SIGINT, or the handle), then finishes the requests in
    /// flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("the HTTP server failed")
    }
}

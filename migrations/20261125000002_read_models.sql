-- The read side. Three schemas with distinct jobs:
--   projector         the projector's bookkeeping: checkpoints (and, later, saga state)
--   projection_store  the read-model tables, one set per generation (rebuilds fill a new set)
--   read_model        views over the live generation: the only thing the query-api may read
-- The query-api runs as `cqrs_query_reader`, which has SELECT on `read_model` and nothing else.

CREATE SCHEMA projector;
CREATE SCHEMA projection_store;
CREATE SCHEMA read_model;

-- Where each subscription stands. PostgreSQL projections update their row in the transaction
-- that writes their tables, so a read model and its checkpoint can never disagree. The Redis
-- projection keeps its checkpoint in Redis and mirrors it here for /projections.
CREATE TABLE projector.checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL DEFAULT 0,
    -- Which set of projection_store tables is live (PostgreSQL projections).
    generation  integer     NOT NULL DEFAULT 1,
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Generation 1 of the PostgreSQL read models.
CREATE TABLE projection_store.orders_g1 (
    id               uuid        PRIMARY KEY,
    customer_id      uuid        NOT NULL,
    status           text        NOT NULL,
    -- The position of OrderPlaced: the list's newest-first order and its cursor.
    placed_position  bigint      NOT NULL,
    last_position    bigint      NOT NULL,
    doc              jsonb       NOT NULL
);
CREATE INDEX ON projection_store.orders_g1 (placed_position DESC);
CREATE INDEX ON projection_store.orders_g1 (customer_id, placed_position DESC);
CREATE INDEX ON projection_store.orders_g1 (status, placed_position DESC);

CREATE TABLE projection_store.products_g1 (
    id             uuid   PRIMARY KEY,
    name_key       text   NOT NULL,   -- lower(name): the list's order and the search target
    last_position  bigint NOT NULL,
    doc            jsonb  NOT NULL
);
CREATE INDEX ON projection_store.products_g1 (name_key, id);

CREATE TABLE projection_store.order_history_g1 (
    order_id     uuid        NOT NULL,
    position     bigint      NOT NULL,
    stream_type  text        NOT NULL,
    version      bigint      NOT NULL,
    type         text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    data         jsonb       NOT NULL,
    PRIMARY KEY (order_id, position)
);

INSERT INTO projector.checkpoints (name) VALUES ('order_list'), ('product_catalog'), ('order_history'), ('lookups');

CREATE VIEW read_model.orders AS SELECT * FROM projection_store.orders_g1;
CREATE VIEW read_model.products AS SELECT * FROM projection_store.products_g1;
CREATE VIEW read_model.order_history AS SELECT * FROM projection_store.order_history_g1;

-- What /projections and read-your-writes need to know about the log, without the events.
CREATE VIEW read_model.projection_checkpoints AS
SELECT name, position FROM projector.checkpoints;

CREATE VIEW read_model.projection_status AS
SELECT c.name,
       c.position,
       (SELECT count(*) FROM public.events e WHERE e.position > c.position) AS lag_events,
       c.last_error,
       c.updated_at
FROM projector.checkpoints c;

CREATE VIEW read_model.event_log_head AS
SELECT coalesce(max(position), 0)::bigint AS head_position FROM public.events;

-- The query-api's role. Roles are per cluster, so several databases (tests) may race to make it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cqrs_query_reader') THEN
        CREATE ROLE cqrs_query_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

GRANT USAGE ON SCHEMA read_model TO cqrs_query_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA read_model TO cqrs_query_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA read_model GRANT SELECT ON TABLES TO cqrs_query_reader;

-- Whoever migrates (the services' login role) must be able to SET ROLE to it.
DO $$
BEGIN
    EXECUTE format('GRANT cqrs_query_reader TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'could not grant cqrs_query_reader to %: grant it by hand for the query-api', current_user;
END $$;

-- What the operator dashboard reads, through the `read_model` schema like every query-api read.
--
-- event_feed: every event of the log, in position order, maintained by the projector like any
-- PostgreSQL read model (generations, rebuilds). The query-api cannot read `events`; this copy
-- (data upcast, no metadata) is what it may show: the newest events, the event rate, and later
-- a live change feed, which pages by position (the primary key).
CREATE TABLE projection_store.event_feed_g1 (
    position     bigint      PRIMARY KEY,
    stream_type  text        NOT NULL,
    stream_id    uuid        NOT NULL,
    type         text        NOT NULL,
    version      bigint      NOT NULL,
    recorded_at  timestamptz NOT NULL,
    data         jsonb       NOT NULL
);
-- The event rate over the last minutes.
CREATE INDEX ON projection_store.event_feed_g1 (recorded_at);

-- Its partitions are made by the projector as it starts, like every subscription's.
INSERT INTO projector.subscriptions (name) VALUES ('event_feed') ON CONFLICT (name) DO NOTHING;

CREATE VIEW read_model.event_feed AS SELECT * FROM projection_store.event_feed_g1;

-- The saga's parked events, as the dashboard lists them (the view runs with its owner's
-- rights, like projection_status; the reader role gets the view, not the table).
CREATE VIEW read_model.dead_letters AS
SELECT subscription, position, stream_id, event_type, error, attempts, parked_at
FROM projector.dead_letters;

GRANT SELECT ON read_model.event_feed, read_model.dead_letters TO cqrs_query_reader;

-- Time travel and the live change feed.
--
-- document_versions: the temporal read model. Every version of every order, product and
-- customer document (the same JSON `lookups` keeps in Redis), valid from the position and time
-- of the event that made it until the next version's (NULL while it is the newest). Maintained
-- by the projector like any PostgreSQL read model (generations, rebuilds); the query-api reads
-- it for `as_of`.
CREATE TABLE projection_store.document_versions_g1 (
    kind                 text        NOT NULL,
    id                   uuid        NOT NULL,
    version              bigint      NOT NULL,
    valid_from_position  bigint      NOT NULL,
    valid_to_position    bigint,
    valid_from           timestamptz NOT NULL,
    valid_to             timestamptz,
    document             jsonb       NOT NULL,
    PRIMARY KEY (kind, id, version)
);
-- The newest version of each document (the one still open), which the projector folds onto:
-- found without reading a document's whole history.
CREATE INDEX document_versions_g1_open ON projection_store.document_versions_g1 (kind, id)
    WHERE valid_to_position IS NULL;

INSERT INTO projector.subscriptions (name) VALUES ('document_versions') ON CONFLICT (name) DO NOTHING;

CREATE VIEW read_model.document_versions AS SELECT * FROM projection_store.document_versions_g1;

GRANT SELECT ON read_model.document_versions TO cqrs_query_reader;

-- The live feed of one order reads event_feed by stream. Every generation the view may name
-- gets the index (a rebuild copies it with LIKE ... INCLUDING ALL).
DO $$
DECLARE generation_table text;
BEGIN
    FOR generation_table IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'projection_store' AND tablename ~ '^event_feed_g[0-9]+$'
    LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON projection_store.%I (stream_id, position)',
                       generation_table || '_stream', generation_table);
    END LOOP;
END $$;

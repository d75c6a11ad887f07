-- The write side: the append-only event log, aggregate snapshots, idempotency records and
-- unique claims (e.g. SKUs). Only command handlers (command-api and the saga) write here.

-- Every event of every aggregate, in one global order.
--
-- `position` is derived from the writing transaction's id: xid * 2^20 + the event's index
-- within that transaction. A transaction's xid is fixed before it writes, so every event a
-- still-running transaction can ever commit lies above `pg_snapshot_xmin(...) * 2^20`. A reader
-- that only reads below that horizon can never see a later position before an earlier one
-- commits: no gaps are skipped, by construction, and the checkpoint is one integer.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    stream_id       uuid        NOT NULL,
    stream_type     text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    transaction_id  xid8        NOT NULL,
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

-- Events of other streams that concern an order (stock and credit steps name their order).
CREATE INDEX events_order_id ON events (((data ->> 'order_id')::uuid)) WHERE data ? 'order_id';

-- Assigns the transaction id and the position; the application cannot choose either.
CREATE FUNCTION events_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    index_in_transaction integer;
BEGIN
    NEW.transaction_id := pg_current_xact_id();
    -- A transaction-local setting counts this transaction's events (reset at commit/rollback).
    index_in_transaction := coalesce(nullif(current_setting('event_store.index_in_transaction', true), ''), '0')::integer;
    IF index_in_transaction >= 1048576 THEN
        RAISE EXCEPTION 'a transaction may append at most 1048576 events';
    END IF;
    PERFORM set_config('event_store.index_in_transaction', (index_in_transaction + 1)::text, true);
    NEW.position := (NEW.transaction_id::text::bigint << 20) + index_in_transaction;
    RETURN NEW;
END $$;

CREATE TRIGGER events_assign_position BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_position();

-- History is immutable: no code path, and no person in psql, may rewrite it.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Wakes tailing readers at commit. Only a hint: readers poll as well.
CREATE FUNCTION events_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify_appended();

-- The latest state of an aggregate every SNAPSHOT_EVERY events. Only an optimisation: a
-- snapshot whose schema_version is not the aggregate's current one is ignored.
CREATE TABLE snapshots (
    stream_id       uuid        PRIMARY KEY,
    stream_type     text        NOT NULL,
    stream_version  bigint      NOT NULL,
    schema_version  integer     NOT NULL,
    state           jsonb       NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT now()
);

-- The first response to each Idempotency-Key, written in the transaction of its events.
CREATE TABLE idempotency_keys (
    key             text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    request         jsonb       NOT NULL,
    response        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Values that must be unique across aggregates (a product's SKU), claimed in the transaction
-- that appends the claiming aggregate's first event.
CREATE TABLE unique_claims (
    kind            text        NOT NULL,
    value           text        NOT NULL,
    stream_id       uuid        NOT NULL,
    PRIMARY KEY (kind, value)
);

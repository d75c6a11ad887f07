-- The safe horizon and the batch below it in one round trip (issue 22: PostgreSQL's work per
-- decided order). The horizon has to be computed before the read's snapshot is taken (see
-- event-store's tail.rs); a VOLATILE PL/pgSQL function takes a fresh snapshot for each statement
-- it runs, so its RETURN QUERY reads with a snapshot newer than the horizon it was just given,
-- exactly as two statements sent one after the other did. Every subscription reads through it,
-- so this halves the statements of an idle wake-up and saves one of every batch.

CREATE FUNCTION events_read_batch(
    after_position bigint,
    most bigint,
    stream_types text[],
    event_types text[],
    partitions integer,
    partition_index integer,
    keyed_by_order boolean
) RETURNS TABLE (
    reached bigint,
    "position" bigint,
    stream_id uuid,
    stream_type text,
    stream_version bigint,
    event_type text,
    schema_version integer,
    data jsonb,
    metadata jsonb,
    recorded_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    horizon bigint := events_safe_horizon();
BEGIN
    -- One horizon for both the batch and how far it reaches: below it the log no longer changes,
    -- so the events the selection skipped there can be passed safely.
    RETURN QUERY
    SELECT (SELECT max(x.position) FROM events x
            WHERE x.position > after_position AND x.position < horizon),
           e.position, e.stream_id, e.stream_type, e.stream_version, e.event_type,
           e.schema_version, e.data, e.metadata, e.recorded_at
    FROM (SELECT 1) AS one LEFT JOIN LATERAL (
        SELECT * FROM events ev
        WHERE ev.position > after_position AND ev.position < horizon
          AND (cardinality(stream_types) = 0 OR ev.stream_type = ANY(stream_types))
          AND (cardinality(event_types) = 0 OR ev.event_type = ANY(event_types))
          -- A partition's events: its key's last byte modulo the count (PartitionKey in
          -- tail.rs). An event that concerns no order has no key by order: no partition.
          AND (partitions <= 1 OR get_byte(uuid_send(
                   CASE WHEN keyed_by_order AND ev.stream_type <> 'order'
                        THEN (ev.data ->> 'order_id')::uuid ELSE ev.stream_id END), 15)
               % partitions = partition_index)
        ORDER BY ev.position LIMIT most
    ) e ON true;
END $$;

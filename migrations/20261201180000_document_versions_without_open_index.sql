-- document_versions: the projector now finds a document's newest version by primary key
-- (kind, id, version DESC) and closes versions by primary key, so the partial index of open
-- versions serves no query. Under a write load it also cost every batch: each closed version
-- left a dead entry in it, and a lookup through it visited every open version of a kind.
-- Dropped from every generation (a rebuild copies the live table's indexes, under names of
-- its own, so they are found by what they index).
DO $$
DECLARE index_name text;
BEGIN
    FOR index_name IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = 'projection_store'
          AND tablename ~ '^document_versions_g[0-9]+$'
          AND indexdef LIKE '%WHERE (valid_to_position IS NULL)'
    LOOP
        EXECUTE format('DROP INDEX projection_store.%I', index_name);
    END LOOP;
END $$;

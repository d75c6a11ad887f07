-- document_versions no longer stores when a version stopped being valid: the next version says
-- so (issue 22). Closing the previous version was an UPDATE of a whole row, its document
-- included, for every change of every document: about a fifth of the WAL an order cost. The
-- view computes valid_to_position and valid_to from the next version, by primary key; the
-- projector's rebuild makes the same view (`DocumentVersions::view_query`).

DO $$
DECLARE
    live integer := coalesce(
        (SELECT generation FROM projector.subscriptions WHERE name = 'document_versions'), 1);
    generation_table text;
BEGIN
    EXECUTE format($view$
        CREATE OR REPLACE VIEW read_model.document_versions AS
        SELECT v.kind, v.id, v.version, v.valid_from_position,
               next.valid_from_position AS valid_to_position, v.valid_from,
               next.valid_from AS valid_to, v.document
        FROM projection_store.%1$I v
        LEFT JOIN LATERAL (
            SELECT n.valid_from_position, n.valid_from FROM projection_store.%1$I n
            WHERE n.kind = v.kind AND n.id = v.id AND n.version > v.version
            ORDER BY n.version LIMIT 1
        ) next ON true
    $view$, 'document_versions_g' || live);
    FOR generation_table IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'projection_store' AND tablename ~ '^document_versions_g[0-9]+$'
    LOOP
        EXECUTE format('ALTER TABLE projection_store.%I DROP COLUMN valid_to_position, DROP COLUMN valid_to',
                       generation_table);
    END LOOP;
END $$;

-- Crypto-shredding. Personal data in events (the fields `domain::personal` names) is stored
-- encrypted with a key per subject (the stream it belongs to, e.g. a customer), kept here,
-- outside the append-only log. Erasing a subject's personal data sets its key to NULL: the row
-- stays as a tombstone, so readers show even legacy clear-text fields (written before
-- encryption existed) as erased. The query-api's role cannot read this table.
CREATE TABLE personal_data_keys (
    subject       uuid        PRIMARY KEY,
    -- AES-256-GCM; NULL once forgotten.
    key           bytea       CHECK (key IS NULL OR length(key) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    forgotten_at  timestamptz,
    CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
);

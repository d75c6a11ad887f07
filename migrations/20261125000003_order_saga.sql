-- The order saga. In orchestration mode one instance per order lives in `order_sagas`, written
-- in the same transaction as the commands it issues and its subscription's checkpoint, so a
-- crash can neither lose a step nor repeat one. Events a saga subscription cannot process even
-- after retries are parked in `dead_letters` (the subscription moves on) until
-- `projector retry-dead-letters` succeeds with them.

CREATE TABLE projector.order_sagas (
    order_id        uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    -- [{product_id, quantity}], in the order the saga reserves them.
    lines           jsonb       NOT NULL,
    total_cents     bigint      NOT NULL,
    -- reserving_stock, reserving_credit, approved, rejected, cancelled, shipped
    state           text        NOT NULL,
    -- How many lines (from the first) hold stock.
    reserved_lines  integer     NOT NULL DEFAULT 0,
    correlation_id  text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projector.dead_letters (
    subscription  text        NOT NULL,
    position      bigint      NOT NULL,
    stream_id     uuid        NOT NULL,
    event_type    text        NOT NULL,
    error         text        NOT NULL,
    attempts      integer     NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, position)
);

CREATE OR REPLACE VIEW read_model.projection_status AS
SELECT c.name,
       c.position,
       (SELECT count(*) FROM public.events e WHERE e.position > c.position) AS lag_events,
       c.last_error,
       c.updated_at,
       (SELECT count(*) FROM projector.dead_letters d WHERE d.subscription = c.name) AS dead_letters
FROM projector.checkpoints c;

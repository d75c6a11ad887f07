-- The notifications service's own data, in a schema of its own (its migrations table lives here
-- too). Nothing here is read or written by the shop's services, and nothing of theirs is read
-- here: the shop's events arrive through the broker only.
--
-- Handling an event is one transaction: its inbox row, and the notification it makes (if any).
-- A delivery whose event id is already in the inbox changes nothing but its redelivery count, so
-- an event is handled once however often the broker delivers it.

CREATE TABLE notifications.inbox (
    -- The envelope's id (also its Nats-Msg-Id).
    event_id         text        PRIMARY KEY,
    event_type       text        NOT NULL,
    -- The JetStream stream sequence it first arrived with, for operators.
    stream_sequence  bigint      NOT NULL,
    -- How many times it arrived again after it was handled (each copy was dropped).
    redeliveries     integer     NOT NULL DEFAULT 0,
    handled_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now()
);

-- What a customer is told about an order: one message per approval, rejection, cancellation and
-- shipment.
CREATE TABLE notifications.notifications (
    event_id     text        PRIMARY KEY REFERENCES notifications.inbox (event_id),
    -- The event's id as a number: the order notifications are listed in.
    position     bigint      NOT NULL,
    customer_id  uuid        NOT NULL,
    order_id     uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('approved', 'rejected', 'cancelled', 'shipped')),
    subject      text        NOT NULL,
    body         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_by_customer ON notifications.notifications (customer_id, position DESC);
CREATE INDEX notifications_by_order ON notifications.notifications (order_id, position);

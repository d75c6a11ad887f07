-- Subscriptions split into partitions, shared by several projector processes.
--
--   projector.subscriptions  one row per subscription: how many partitions it has, and (for a
--                            PostgreSQL read model) which generation of its tables is live
--   projector.checkpoints    one row per partition: where it stands, and who owns it (a lease
--                            with an expiry and a fence that grows with every new owner)
--   projector.members        the projector processes alive, each renewing its heartbeat
--
-- An apply transaction moves its checkpoint only if the row still has the position it read and
-- the owner and fence it holds (one UPDATE): a process whose lease was taken over can never
-- commit a batch, and a new owner's claim waits for an apply in flight to end.

CREATE TABLE projector.subscriptions (
    name        text        PRIMARY KEY,
    partitions  integer     NOT NULL DEFAULT 1 CHECK (partitions BETWEEN 1 AND 256),
    -- Which set of projection_store tables is live (PostgreSQL read models).
    generation  integer     NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projector.subscriptions (name, generation)
SELECT name, generation FROM projector.checkpoints;

-- The views that read checkpoints are rebuilt below.
DROP VIEW read_model.projection_checkpoints;
DROP VIEW read_model.projection_status;

ALTER TABLE projector.checkpoints DROP CONSTRAINT checkpoints_pkey;
ALTER TABLE projector.checkpoints ADD COLUMN partition integer NOT NULL DEFAULT 0;
ALTER TABLE projector.checkpoints ADD PRIMARY KEY (name, partition);
ALTER TABLE projector.checkpoints DROP COLUMN generation;
ALTER TABLE projector.checkpoints ADD COLUMN owner uuid;
ALTER TABLE projector.checkpoints ADD COLUMN fence bigint NOT NULL DEFAULT 0;
ALTER TABLE projector.checkpoints ADD COLUMN lease_expires_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE projector.checkpoints
    ADD FOREIGN KEY (name) REFERENCES projector.subscriptions (name) ON DELETE CASCADE;

CREATE TABLE projector.members (
    id            uuid        PRIMARY KEY,
    -- host and process id, for people reading /projections
    name          text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- A read model has reached a position when every one of its partitions has.
CREATE VIEW read_model.projection_checkpoints AS
SELECT name, min(position) AS position
FROM projector.checkpoints
GROUP BY name;

CREATE VIEW read_model.projection_status AS
SELECT c.name,
       c.partition,
       s.partitions,
       c.position,
       (SELECT count(*) FROM public.events e WHERE e.position > c.position) AS lag_events,
       c.last_error,
       c.updated_at,
       m.name AS owner,
       (SELECT count(*) FROM projector.dead_letters d WHERE d.subscription = c.name) AS dead_letters
FROM projector.checkpoints c
JOIN projector.subscriptions s USING (name)
LEFT JOIN projector.members m ON m.id = c.owner AND c.lease_expires_at > now();

-- The PostgreSQL read models are applied together (issue 22): one read of each batch, one
-- transaction, one checkpoint statement for all of them.
--
-- projector.checkpoints.generation: each partition's row names the generation of the tables it
-- was applied to, and a rebuild's switch-over changes it in the same transaction as the
-- position. An apply that checks it in its checkpoint UPDATE can no longer write into a
-- generation that a rebuild retired while the apply was in flight (the UPDATE's re-check of a
-- row that changed under it sees the new generation; a look at projector.subscriptions in the
-- same statement would not), and need not read the live generation before each batch.
--
-- order_history is now keyed by each event's stream like the other read models it is applied
-- with, instead of by order. With several partitions an event may belong to another partition
-- than before, so its partitions start again where the lowest of them stands (its rows are
-- written idempotently; nothing is skipped).

ALTER TABLE projector.checkpoints ADD COLUMN generation integer NOT NULL DEFAULT 1;
UPDATE projector.checkpoints c SET generation = s.generation
FROM projector.subscriptions s WHERE s.name = c.name;

UPDATE projector.checkpoints c SET position = lowest.position
FROM (SELECT min(position) AS position FROM projector.checkpoints WHERE name = 'order_history') lowest
WHERE c.name = 'order_history'
  AND (SELECT count(*) FROM projector.checkpoints WHERE name = 'order_history') > 1;

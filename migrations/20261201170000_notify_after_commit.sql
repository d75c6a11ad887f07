-- Appended events are announced after their transaction has committed, by the appending process
-- (event_store::announce), no longer by a trigger inside it: a NOTIFY in a transaction takes a
-- cluster-wide lock at its commit and holds it through the WAL flush, so every append on the
-- server committed one at a time (pgbench: 1,757 single-row inserts/s with the trigger, 7,458
-- without). Readers LISTEN on the same channel, and poll as before.
DROP TRIGGER events_notify_appended ON events;
DROP FUNCTION events_notify_appended();

-- How far behind each partition is, counted once per position rather than once per partition
-- (issue 22). The PostgreSQL read models are applied together and stand at one position, and a
-- count of the events after a position reads every one of them: with a backlog of 100,000
-- events, /projections (which the dashboard polls every second) counted it for each of the
-- five, and for each partition of the others.
CREATE OR REPLACE VIEW read_model.projection_status AS
WITH lags AS (
    SELECT p.position,
           (SELECT count(*) FROM public.events e WHERE e.position > p.position) AS lag_events
    FROM (SELECT DISTINCT position FROM projector.checkpoints) p
)
SELECT c.name,
       c.partition,
       s.partitions,
       c.position,
       l.lag_events,
       c.last_error,
       c.updated_at,
       m.name AS owner,
       (SELECT count(*) FROM projector.dead_letters d WHERE d.subscription = c.name) AS dead_letters
FROM projector.checkpoints c
JOIN projector.subscriptions s USING (name)
JOIN lags l USING (position)
LEFT JOIN projector.members m ON m.id = c.owner AND c.lease_expires_at > now();

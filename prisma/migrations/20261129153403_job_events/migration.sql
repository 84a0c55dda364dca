-- Announces job changes on the `job_events` channel, for the event hub of every process.
-- The payload is `id:status:version` items, comma-separated, 100 to a NOTIFY: about 5 kB, well
-- under PostgreSQL's 8 kB limit, and a batch of 20,000 jobs costs 200 notifications, not 20,000.
-- The queue's statements call it from a CTE over the rows they changed; NOTIFY is delivered at
-- commit, so a listener never hears of a change it cannot read yet.
CREATE FUNCTION job_announce(events text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  total integer := coalesce(array_length(events, 1), 0);
  first integer := 1;
BEGIN
  WHILE first <= total LOOP
    PERFORM pg_notify('job_events', array_to_string(events[first:first + 99], ','));
    first := first + 100;
  END LOOP;
  RETURN total;
END
$$;

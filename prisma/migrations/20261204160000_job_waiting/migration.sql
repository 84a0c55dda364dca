-- Workflows (issue 26): a job whose parents have not all finished is `waiting`. The value is
-- outside queue_state's CASE (the cheaper_job migration), so a waiting job's queue_state is NULL,
-- as a completed one's: no queue index holds it, no claim can see it, and the generated column
-- needs no new expression (which would mean dropping and re-adding it, a rewrite of the table).
-- A migration of its own: PostgreSQL refuses to use a new enum value in the transaction that
-- added it, and nothing here uses it; the next migration names it only inside a function body,
-- which is parsed when first called.
ALTER TYPE job_status ADD VALUE 'waiting';

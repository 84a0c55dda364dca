-- The job table as the experiments build it (included by each with \ir): the job table's columns
-- in the job_column_order migration's order, at fillfactor 50, with the queue's indexes and
-- job_owner_idx; the owner's type, and what counts as no owner, are the experiment's to choose.
CREATE TYPE exp_status AS ENUM ('pending', 'wip', 'completed', 'retrieved');

CREATE PROCEDURE experiment_job_table(name text, owner_type text, no_owner text) LANGUAGE plpgsql AS $procedure$
BEGIN
  EXECUTE format($table$
    CREATE TABLE %1$I (
      id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), max_attempts int NOT NULL DEFAULT 3,
      priority int NOT NULL DEFAULT 0, kind text NOT NULL, owner %2$s NOT NULL, input jsonb NOT NULL,
      run_at timestamptz NOT NULL DEFAULT now(), attempt int NOT NULL DEFAULT 0, locked_by text, result jsonb,
      completed_on timestamptz,
      queue_state smallint GENERATED ALWAYS AS (CASE status WHEN 'pending' THEN 1 WHEN 'wip' THEN 2 END) STORED,
      heartbeat_at timestamptz GENERATED ALWAYS AS (CASE WHEN status = 'wip' THEN last_updated END) STORED,
      status exp_status NOT NULL DEFAULT 'pending', version int NOT NULL DEFAULT 1,
      last_updated timestamptz NOT NULL DEFAULT now(), retrieved_at timestamptz,
      PRIMARY KEY (id)
    ) WITH (fillfactor = 50);
    CREATE INDEX ON %1$I (owner, priority DESC, run_at, id) WHERE queue_state = 1;
    CREATE INDEX ON %1$I (heartbeat_at) WHERE queue_state = 2;
    CREATE INDEX ON %1$I (kind, id) WHERE queue_state IS NULL;
    CREATE INDEX ON %1$I (owner, id) WHERE owner <> %3$s AND queue_state IS NULL;
  $table$, name, owner_type, no_owner);
END $procedure$;

-- What the width of a job's owner costs in WAL (issue 25): with API keys the owner is the key's
-- SHA-256 as 64 hex characters, in the row, the claim index and the owner index of settled jobs.
--   bash bench/experiments/layout-wal.sh bench/experiments/owner-width.sql
-- Each table has the job table's columns in the job_column_order migration's order, at
-- fillfactor 50, with the queue's indexes and job_owner_idx; only the owner's type and value
-- differ: no owner (the open service), 64 hex characters (now), 32 (half the digest), 16 bytes,
-- and a number for each key (an owners table would map keys to it).
CREATE TYPE exp_status AS ENUM ('pending', 'wip', 'completed', 'retrieved');
CREATE TABLE experiment_layout (position int, name text, complete_also text, owner text);
INSERT INTO experiment_layout VALUES
  (1, 'owner_none', '', ''''''),
  (2, 'owner_hex64', '', 'encode(sha256(''key''), ''hex'')'),
  (3, 'owner_hex32', '', 'left(encode(sha256(''key''), ''hex''), 32)'),
  (4, 'owner_bytes16', '', 'substring(sha256(''key'') FROM 1 FOR 16)'),
  (5, 'owner_number', '', '7');

DO $$
DECLARE layout record;
BEGIN
  FOR layout IN SELECT * FROM (VALUES ('owner_none', 'text', ''''''), ('owner_hex64', 'text', ''''''), ('owner_hex32', 'text', ''''''),
                                      ('owner_bytes16', 'bytea', '''\x'''), ('owner_number', 'int', '0')) AS t(name, type, empty) LOOP
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
    $table$, layout.name, layout.type, layout.empty);
  END LOOP;
END $$;

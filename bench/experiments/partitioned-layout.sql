-- Issue 25's last candidate, a partitioned layout, against the one table, on WAL per job:
--   bash bench/experiments/layout-wal.sh bench/experiments/partitioned-layout.sql
--
-- Both layouts hold the job table's columns in the job_column_order migration's order, at
-- fillfactor 50, with the queue's indexes (the primary key, pending, wip, settled by kind).
-- `split` is LIST-partitioned on `settled`: pending and wip jobs in job_active, finished ones in
-- job_settled, so the claim's and the stale rule's indexes and the vacuum of the hot rows stay
-- in a small partition. A partition key must be a stored column (not a generated one) and part
-- of the primary key, so `settled` is written by the completion and the key is (id, settled).
CREATE TYPE exp_status AS ENUM ('pending', 'wip', 'completed', 'retrieved');

CREATE TABLE job_one (
  id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), max_attempts int NOT NULL DEFAULT 3,
  priority int NOT NULL DEFAULT 0, kind text NOT NULL, owner text NOT NULL DEFAULT '', input jsonb NOT NULL,
  run_at timestamptz NOT NULL DEFAULT now(), attempt int NOT NULL DEFAULT 0, locked_by text, result jsonb,
  completed_on timestamptz,
  queue_state smallint GENERATED ALWAYS AS (CASE status WHEN 'pending' THEN 1 WHEN 'wip' THEN 2 END) STORED,
  heartbeat_at timestamptz GENERATED ALWAYS AS (CASE WHEN status = 'wip' THEN last_updated END) STORED,
  status exp_status NOT NULL DEFAULT 'pending', version int NOT NULL DEFAULT 1,
  last_updated timestamptz NOT NULL DEFAULT now(), retrieved_at timestamptz,
  PRIMARY KEY (id)
) WITH (fillfactor = 50);
CREATE INDEX ON job_one (owner, priority DESC, run_at, id) WHERE queue_state = 1;
CREATE INDEX ON job_one (heartbeat_at) WHERE queue_state = 2;
CREATE INDEX ON job_one (kind, id) WHERE queue_state IS NULL;

CREATE TABLE job_split (
  LIKE job_one INCLUDING DEFAULTS INCLUDING GENERATED,
  settled boolean NOT NULL DEFAULT false,
  PRIMARY KEY (id, settled)
) PARTITION BY LIST (settled);
CREATE TABLE job_split_active PARTITION OF job_split FOR VALUES IN (false) WITH (fillfactor = 50);
CREATE TABLE job_split_settled PARTITION OF job_split FOR VALUES IN (true) WITH (fillfactor = 50);
CREATE INDEX ON job_split_active (owner, priority DESC, run_at, id) WHERE queue_state = 1;
CREATE INDEX ON job_split_active (heartbeat_at) WHERE queue_state = 2;
CREATE INDEX ON job_split_settled (kind, id);


CREATE TABLE experiment_layout (position int, name text, complete_also text, owner text);
INSERT INTO experiment_layout VALUES (1, 'job_one', '', ''''''), (2, 'job_split', ', settled = true', '''''');

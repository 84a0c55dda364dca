-- Issue 25's last candidate, a partitioned layout, against the one table, on WAL per job:
--   bash bench/experiments/layout-wal.sh bench/experiments/partitioned-layout.sql
--
-- Both layouts are job-table.sql's table (the owner empty, as in the open service).
-- `split` is LIST-partitioned on `settled`: pending and wip jobs in job_active, finished ones in
-- job_settled, so the claim's and the stale rule's indexes and the vacuum of the hot rows stay
-- in a small partition. A partition key must be a stored column (not a generated one) and part
-- of the primary key, so `settled` is written by the completion and the key is (id, settled).
\ir job-table.sql
CALL experiment_job_table('job_one', 'text', '''''');

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

-- What the width of a job's owner costs in WAL (issue 25): with API keys the owner is the key's
-- SHA-256 as 64 hex characters, in the row, the claim index and the owner index of settled jobs.
--   bash bench/experiments/layout-wal.sh bench/experiments/owner-width.sql
-- The tables differ only in the owner's type and value: no owner (the open service), 64 hex
-- characters (now), 32 (half the digest), 16 bytes, and a number for each key (an owners table
-- would map keys to it).
\ir job-table.sql
CALL experiment_job_table('owner_none', 'text', '''''');
CALL experiment_job_table('owner_hex64', 'text', '''''');
CALL experiment_job_table('owner_hex32', 'text', '''''');
CALL experiment_job_table('owner_bytes16', 'bytea', '''\x''');
CALL experiment_job_table('owner_number', 'int', '0');

CREATE TABLE experiment_layout (position int, name text, complete_also text, owner text);
INSERT INTO experiment_layout VALUES
  (1, 'owner_none', '', ''''''),
  (2, 'owner_hex64', '', 'encode(sha256(''key''), ''hex'')'),
  (3, 'owner_hex32', '', 'left(encode(sha256(''key''), ''hex''), 32)'),
  (4, 'owner_bytes16', '', 'substring(sha256(''key'') FROM 1 FOR 16)'),
  (5, 'owner_number', '', '7');

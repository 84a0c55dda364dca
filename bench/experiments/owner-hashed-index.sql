-- Whether the indexes alone can drop the owner's width (issue 25): the row keeps the 64-hex
-- SHA-256 of the API key, and the claim index and the owner index hold a 64-bit hash of it
-- instead, which a query would recheck against the row: as an expression index, and as a stored
-- generated column (which Prisma's schema can name; an expression index it cannot).
--   bash bench/experiments/layout-wal.sh bench/experiments/owner-hashed-index.sql
\ir job-table.sql
CALL experiment_job_table('owner_none', 'text', '''''');
CALL experiment_job_table('owner_hex64', 'text', '''''');
CALL experiment_job_table('owner_hex64_expression_hash', 'text', '''''');
CALL experiment_job_table('owner_hex64_stored_hash', 'text', '''''');
CALL experiment_job_table('owner_number', 'int', '0');
DROP INDEX owner_hex64_expression_hash_owner_priority_run_at_id_idx, owner_hex64_expression_hash_owner_id_idx;
CREATE INDEX ON owner_hex64_expression_hash (hashtextextended(owner, 0), priority DESC, run_at, id) WHERE queue_state = 1;
CREATE INDEX ON owner_hex64_expression_hash (hashtextextended(owner, 0), id) WHERE owner <> '' AND queue_state IS NULL;
DROP INDEX owner_hex64_stored_hash_owner_priority_run_at_id_idx, owner_hex64_stored_hash_owner_id_idx;
ALTER TABLE owner_hex64_stored_hash ADD COLUMN owner_hash bigint GENERATED ALWAYS AS (hashtextextended(owner, 0)) STORED;
CREATE INDEX ON owner_hex64_stored_hash (owner_hash, priority DESC, run_at, id) WHERE queue_state = 1;
CREATE INDEX ON owner_hex64_stored_hash (owner_hash, id) WHERE owner <> '' AND queue_state IS NULL;

CREATE TABLE experiment_layout (position int, name text, complete_also text, owner text);
INSERT INTO experiment_layout VALUES
  (1, 'owner_none', '', ''''''),
  (2, 'owner_hex64', '', 'encode(sha256(''key''), ''hex'')'),
  (3, 'owner_hex64_expression_hash', '', 'encode(sha256(''key''), ''hex'')'),
  (4, 'owner_hex64_stored_hash', '', 'encode(sha256(''key''), ''hex'')'),
  (5, 'owner_number', '', '7');

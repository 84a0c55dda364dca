#!/usr/bin/env bash
# Layouts of the job table against each other on WAL per job, without full-page images, for each
# transition (pg_walinspect over the server's WAL: run it on a server with nothing else writing).
# The experiment's SQL file makes its tables and lists them in `experiment_layout` (name, what a
# completion sets besides the state, the owner each job gets). 20,000 jobs each: one insert,
# claims of 500 with FOR UPDATE SKIP LOCKED, completions of 500, a retrieve per job (each its own
# transaction, as customers send them).
#   bash bench/experiments/layout-wal.sh bench/experiments/partitioned-layout.sql [admin URL]
set -euo pipefail
experiment=$1
admin=${2:-postgresql://root@127.0.0.1:5432/postgres}
database=layout_wal_experiment
url=${admin%/*}/$database
psql -q "$admin" -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE EXTENSION pg_walinspect" -f "$experiment"
lsn() { psql -tA "$url" -c "SELECT pg_current_wal_insert_lsn()"; }
per_job() { psql -tA "$url" -c "SELECT round((sum(combined_size) - sum(fpi_size)) / 20000.0) FROM pg_get_wal_stats('$1', '$2')"; }

psql -tA -F '|' "$url" -c "SELECT name, complete_also, owner FROM experiment_layout ORDER BY position" |
while IFS='|' read -r table complete_also owner; do
  start=$(lsn)
  psql -q "$url" -c "INSERT INTO $table (id, kind, input, owner)
    SELECT gen_random_uuid(), 'add', jsonb_build_object('num1', i::text, 'num2', '0.25'), $owner FROM generate_series(1, 20000) AS i" </dev/null
  end=$(lsn); row="insert $(per_job "$start" "$end")"
  start=$(lsn)
  for _ in $(seq 40); do
    psql -q "$url" -c "UPDATE $table SET status = 'wip', attempt = attempt + 1, locked_by = 'worker-0123456789abcdef', last_updated = now(), version = version + 1
      WHERE id IN (SELECT id FROM $table WHERE queue_state = 1 ORDER BY owner, priority DESC, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED)" </dev/null
  done
  end=$(lsn); row+=" · claim $(per_job "$start" "$end")"
  start=$(lsn)
  for _ in $(seq 40); do
    psql -q "$url" -c "UPDATE $table SET status = 'completed', result = '{\"sum\": \"1.25\"}', completed_on = now(), last_updated = now(), version = version + 1 $complete_also
      WHERE id IN (SELECT id FROM $table WHERE queue_state = 2 ORDER BY heartbeat_at LIMIT 500)" </dev/null
  done
  end=$(lsn); row+=" · complete $(per_job "$start" "$end")"
  start=$(lsn)
  psql -tA "$url" -c "SELECT id FROM $table WHERE status = 'completed'" </dev/null |
    sed "s/.*/UPDATE $table SET status = 'retrieved', retrieved_at = now(), last_updated = now(), version = version + 1 WHERE id = '&' AND status = 'completed';/" |
    psql -q "$url" > /dev/null
  end=$(lsn); row+=" · retrieve $(per_job "$start" "$end")"
  echo "$table: $row (B of WAL per job)"
done
psql -q "$admin" -c "DROP DATABASE $database"

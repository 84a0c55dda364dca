#!/usr/bin/env bash
# Issue 25's last candidate, a partitioned layout, against the one table: WAL per job, without
# full-page images, of each transition (pg_walinspect over the server's WAL: run it on a server
# with nothing else writing). 20,000 jobs each: one insert, claims of 500 with FOR UPDATE SKIP
# LOCKED, completions of 500, a retrieve per job (in transactions of one, as customers send them).
#   bash bench/experiments/partitioned-layout.sh [postgresql://root@127.0.0.1:5432/postgres]
set -euo pipefail
admin=${1:-postgresql://root@127.0.0.1:5432/postgres}
database=partitioned_layout_experiment
url=${admin%/*}/$database
here=$(dirname "$0")
psql -q "$admin" -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE EXTENSION pg_walinspect" -f "$here/partitioned-layout.sql"
lsn() { psql -tA "$url" -c "SELECT pg_current_wal_insert_lsn()"; }
per_job() { psql -tA "$url" -c "SELECT round((sum(combined_size) - sum(fpi_size)) / 20000.0) FROM pg_get_wal_stats('$1', '$2')"; }

for layout in one split; do
  table=job_$layout
  settle=$([ "$layout" = split ] && echo ", settled = true" || echo "")
  row=""
  start=$(lsn)
  psql -q "$url" -c "INSERT INTO $table (id, kind, input) SELECT gen_random_uuid(), 'add', jsonb_build_object('num1', i::text, 'num2', '0.25') FROM generate_series(1, 20000) AS i"
  end=$(lsn); row+="insert $(per_job "$start" "$end")"
  start=$(lsn)
  for _ in $(seq 40); do
    psql -q "$url" -c "UPDATE $table SET status = 'wip', attempt = attempt + 1, locked_by = 'worker-0123456789abcdef', last_updated = now(), version = version + 1
      WHERE id IN (SELECT id FROM $table WHERE queue_state = 1 ORDER BY owner, priority DESC, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED)"
  done
  end=$(lsn); row+=" · claim $(per_job "$start" "$end")"
  start=$(lsn)
  for _ in $(seq 40); do
    psql -q "$url" -c "UPDATE $table SET status = 'completed', result = '{\"sum\": \"1.25\"}', completed_on = now(), last_updated = now(), version = version + 1 $settle
      WHERE id IN (SELECT id FROM $table WHERE queue_state = 2 ORDER BY heartbeat_at LIMIT 500)"
  done
  end=$(lsn); row+=" · complete $(per_job "$start" "$end")"
  psql -tA "$url" -c "SELECT id FROM $table WHERE status = 'completed'" > /tmp/partitioned-layout-ids
  start=$(lsn)
  sed "s/.*/UPDATE $table SET status = 'retrieved', retrieved_at = now(), last_updated = now(), version = version + 1 WHERE id = '&' AND status = 'completed';/" /tmp/partitioned-layout-ids \
    | psql -q "$url" > /dev/null
  end=$(lsn); row+=" · retrieve $(per_job "$start" "$end")"
  echo "$layout: $row (B of WAL per job)"
done
psql -q "$admin" -c "DROP DATABASE $database"

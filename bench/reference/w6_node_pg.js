// W6 reference client (../../shared/BENCHMARKS.md, "W6 reads in parallel"): node `pg` (pure JS), one thread,
// prepared statements (named queries), the same six statements as the libpqxx baseline of
// bench/e2e/w6_preflight_pg.cpp, on the data that bench loads (run it first, against the same cluster).
// BENCHMARKS.md compares figures only when measured in the same hour on the same machine: this re-measures the
// recorded reference beside preflight's own figures. Not part of the build, the tests or CI.
//
//   node w6_node_pg.js URL MODE CONCURRENCY POOL [OPS=4000] [WARMUP=500] [CAP_S=8]
//   MODE sequential: six statements one after another; parallel: the four reads with Promise.all, then the
//   rate-limit consume, then the admission insert. POOL: pg.Pool max connections.
//
// The module `pg`: the recorded reference used pg 8.23 from the npm registry (`npm install pg@8.23.1` in a scratch
// directory, then NODE_PATH=<dir>/node_modules); Debian's package node-pg (8.8) works too
// (NODE_PATH=/usr/share/nodejs). One JSON object per run, in the shape of the C++ benches.
const [url, mode, concStr, poolStr, opsStr = '4000', warmStr = '500', capStr = '8'] = process.argv.slice(2);
const conc = +concStr, ops = +opsStr, warm = +warmStr, capS = +capStr;
if (!url || !['sequential', 'parallel'].includes(mode) || !(conc >= 1) || !(+poolStr >= 1) || !(ops >= 1) || !(warm >= 0) || !(capS > 0)) {
  console.error('usage: node w6_node_pg.js URL sequential|parallel CONCURRENCY POOL [OPS] [WARMUP] [CAP_S]');
  process.exit(2);
}
const { Pool } = require('pg');
const pool = new Pool({ connectionString: url, max: +poolStr });
const q = {
  ban: 'SELECT 1 FROM preflight_bans WHERE subject_id = $1 AND (expires_at IS NULL OR expires_at > now()) LIMIT 1',
  sub: 'SELECT plan, status, seats, current_period_end FROM preflight_subscriptions WHERE owner_id = $1',
  usage: "SELECT requests, tokens FROM preflight_usage WHERE subject_id = $1 AND period_start = date_trunc('month', now())::date",
  member: 'SELECT role FROM preflight_org_members WHERE org_id = $1 AND user_id = $2',
  consume: 'WITH p AS (SELECT extract(epoch FROM clock_timestamp())::float8 * 1e6 AS now),' +
    ' up AS (INSERT INTO preflight_rate_limits AS r (key, tat)' +
    ' SELECT $1::text, p.now + $4::float8 * $2::float8 FROM p WHERE $4::float8 * $2::float8 <= $3::float8' +
    ' ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat)' +
    ' WHERE greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat) <= EXCLUDED.tat - $4::float8 * $2::float8 + $3::float8' +
    ' RETURNING r.tat) SELECT (SELECT tat FROM up) IS NOT NULL AS ok FROM p',
  admit: "INSERT INTO preflight_leases (lease_id, key, expires_at) VALUES (gen_random_uuid(), $1, clock_timestamp() + interval '60 seconds')",
};
const run = (name, values) => pool.query({ name: 'w6_' + name, text: q[name], values });
const key = (i) => Number((BigInt(i) * 7919n) % 10000n);
async function preflight(i) {
  const j = key(i), org = 'org_' + j, user = 'user_' + j;
  let r;
  if (mode === 'sequential') {
    r = [await run('ban', [user]), await run('sub', [org]), await run('usage', [org]), await run('member', [org, user])];
  } else {
    r = await Promise.all([run('ban', [user]), run('sub', [org]), run('usage', [org]), run('member', [org, user])]);
  }
  if (r[0].rowCount !== 0 || r[1].rowCount !== 1) throw new Error('unexpected read result for ' + org);
  const c = await run('consume', [org, 1, 1e15, 1]);
  if (!c.rows[0].ok) throw new Error('consume denied for ' + org);
  await run('admit', ['adm:' + org + ':' + i]);
}
async function phase(first, count, record) {
  let next = first; const end = first + count; const lat = [];
  const t0 = process.hrtime.bigint(); const cap = t0 + BigInt(Math.round(capS * 1e9));
  const worker = async () => {
    while (next < end && process.hrtime.bigint() < cap) {
      const i = next++; const s = process.hrtime.bigint();
      await preflight(i);
      if (record) lat.push(Number(process.hrtime.bigint() - s) / 1e3);
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  return { lat, wall: Number(process.hrtime.bigint() - t0) / 1e9 };
}
(async () => {
  // Open every connection before measuring (BENCHMARKS.md): hold POOL clients at once, then release them.
  const clients = await Promise.all(Array.from({ length: +poolStr }, () => pool.connect()));
  clients.forEach((c) => c.release());
  await pool.query('TRUNCATE preflight_leases');
  await phase(0, warm, false);
  const { lat, wall } = await phase(warm, ops, true);
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.ceil(p / 100 * lat.length) - 1];
  console.log(JSON.stringify({ workload: 'W6', name: `W6_node_pg_${mode}_c${conc}`, pool: +poolStr, ops: lat.length, wall_s: +wall.toFixed(3),
    ops_per_s: +(lat.length / wall).toFixed(1), p50_us: +pct(50).toFixed(1), p99_us: +pct(99).toFixed(1) }));
  await pool.query('TRUNCATE preflight_leases');
  await pool.end();
})().catch((e) => { console.error(e); process.exit(1); });

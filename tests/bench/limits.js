'use strict';
// The limiter's figures (issue 18 item 3), for bench.js (--only limits):
//  - the pass-through cost of a managed key with rpm + tpm limits (set high,
//    never reached: every request pays the gate's and the end hook's Redis
//    round trip) beside a static key, on the same stack, interleaved rounds,
//    wrk -c32 and -c1;
//  - the limiter's accuracy: 32 connections over two stacks sharing one
//    Redis, against a key with rpm N: how many passed, beside N plus what the
//    GCRA refills during the run (N/60 a second).
const http = require('node:http');

const ADMIN = 'bench-admin-limits';
const KEY = 'sk-bench-limits-static-0123456789';

async function createKey(url, policy) {
  const body = JSON.stringify({ name: `bench-${Date.now()}`, policy });
  const r = await new Promise((resolve, reject) => {
    const q = http.request(`${url}/admin/keys`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: t }));
    });
    q.on('error', reject);
    q.end(body);
  });
  if (r.status !== 201) throw new Error(`POST /admin/keys: ${r.status} ${r.text}`);
  const j = JSON.parse(r.text);
  return j.key || j.secret;
}

// `n` chat completions over `conns` keep-alive connections spread over
// `urls`; resolves {ok, limited, other, secs}.
async function burst(urls, key, n, conns) {
  const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hello' }] });
  const agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: conns }));
  const got = { ok: 0, limited: 0, other: 0 };
  let next = 0;
  const one = (i) => new Promise((resolve) => {
    const u = i % urls.length;
    const q = http.request(`${urls[u]}/v1/chat/completions`, {
      method: 'POST', agent: agents[u],
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) got.ok++;
        else if (res.statusCode === 429) got.limited++;
        else got.other++;
        resolve();
      });
    });
    q.on('error', () => { got.other++; resolve(); });
    q.end(body);
  });
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conns }, async (_, c) => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await one(c);
    }
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const a of agents) a.destroy();
  return { ...got, secs };
}

// INFO commandstats text -> {calls, usec} per request (of `requests`), the
// whole and by command (the lookup's EVALSHA, the end's, the usage pipeline).
function commandCost(text, requests) {
  const out = { calls: 0, usec: 0, by: {} };
  for (const m of String(text).matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+)/gm)) {
    if (m[1] === 'info' || m[1] === 'config') continue;
    const n = Number(m[2]) / requests;
    const u = Number(m[3]) / requests;
    out.by[m[1]] = { calls: +n.toFixed(2), usec: +u.toFixed(1) };
    out.calls += n;
    out.usec += u;
  }
  out.calls = +out.calls.toFixed(2);
  out.usec = +out.usec.toFixed(1);
  return out;
}

// ctx: {up, CONFIG, startStack, stopStack, wrk, combine, results, problems,
// log, WRK_SECS, PASS_WORKERS, PASS_THREADS}. Fills ctx.results.limits.
async function figLimits(ctx) {
  const { up, CONFIG, startStack, stopStack, wrk, combine, results, problems, log } = ctx;
  log('limits: pass-through with a managed key with rpm + tpm (never reached) vs a static key; accuracy over two stacks');
  const env = { ADMIN_API_KEY: ADMIN };
  const s = await startStack({ config: CONFIG(up.url, `proxy_api_keys: [${KEY}]`), env,
                               workers: ctx.PASS_WORKERS, threads: ctx.PASS_THREADS, broker: false });
  let s2 = null;
  try {
    const managed = await createKey(s.url, { rpm: 1000000000, tpm: 1000000000000 });
    const plain = await createKey(s.url, {});
    const url = `${s.baseURL}/chat/completions`;
    await wrk(url, { secs: 1, key: KEY });
    await wrk(url, { secs: 1, key: managed });
    // plain: a managed key without limits, so the limiter's own share shows
    // apart from the key lookup's
    const targets = [['static', KEY], ['plain', plain], ['managed', managed]];
    const rounds = async (opts, n) => {
      const got = { static: [], plain: [], managed: [] };
      for (let r = 0; r < n; r++) {
        for (const [name, k] of targets) got[name].push(await wrk(url, { ...opts, key: k }));
      }
      return Object.fromEntries(Object.entries(got).map(([name, v]) => [name, combine(v)]));
    };
    // BENCH_LIMITS_ROUNDS: more 1-connection rounds on a noisy machine
    const n1 = Number(process.env.BENCH_LIMITS_ROUNDS || 3);
    const many = await rounds({ secs: Math.max(1, Math.round(ctx.WRK_SECS / 3)) }, 3);
    const single = await rounds({ conns: 1, secs: 1 }, n1);
    // where the time goes in Redis: per request of each key, the commands
    // it made and their µs inside Redis (INFO commandstats), 1 connection
    const redisCost = {};
    for (const [name, k] of targets) {
      await s.redis('CONFIG', 'RESETSTAT');
      const w = await wrk(url, { conns: 1, secs: 1, key: k });
      redisCost[name] = commandCost(await s.redis('INFO', 'commandstats'), w.requests);
    }

    s2 = await startStack({ config: CONFIG(up.url, `proxy_api_keys: [${KEY}]`), env,
                            redisUrl: s.redisUrl, prefix: s.prefix,
                            workers: ctx.PASS_WORKERS, threads: ctx.PASS_THREADS, broker: false });
    const N = 600;
    const limited = await createKey(s.url, { rpm: N });
    const b = await burst([s.url, s2.url], limited, 4 * N, 32);
    if (b.other) problems.push(`limits: ${b.other} answers neither 200 nor 429`);
    const refill = Math.floor((b.secs * N) / 60);
    results.limits = {
      rounds: 3, rounds1: n1, many, single, redis: redisCost,
      added_p50_us: many.managed.p50_us - many.static.p50_us,
      added1_p50_us: single.managed.p50_us - single.static.p50_us,
      limiter1_p50_us: single.managed.p50_us - single.plain.p50_us,
      lookup1_p50_us: single.plain.p50_us - single.static.p50_us,
      rps_ratio: many.managed.rps / many.static.rps,
      accuracy: { rpm: N, requests: 4 * N, allowed: b.ok, refused: b.limited, secs: b.secs,
                  refill_during_run: refill, expected_max: N + refill + 1 },
    };
  } finally {
    if (s2) await stopStack(s2);
    await stopStack(s);
  }
}

// The figure's rows for bench.js's table: row(figure, what, base, ours, delta, goal).
function limitsRows(l, row, us, sgn) {
  if (!l) return;
  row(`12 limits, managed key rpm+tpm (${l.rounds} rounds)`, 'p50 (base: static key)', us(l.many.static.p50_us),
      us(l.many.managed.p50_us), sgn(l.added_p50_us), '');
  row('', 'requests/s', l.many.static.rps.toFixed(0), l.many.managed.rps.toFixed(0), `x${l.rps_ratio.toFixed(2)}`, '');
  row(`12b same, 1 connection (${l.rounds1 || l.rounds} rounds)`, 'p50 (base: static key)', us(l.single.static.p50_us), us(l.single.managed.p50_us),
      sgn(l.added1_p50_us), '< +50 µs');
  row('', 'p50 (base: managed key, no limits)', us(l.single.plain.p50_us), us(l.single.managed.p50_us),
      sgn(l.limiter1_p50_us), '(the limiter alone)');
  if (l.redis) {
    for (const name of ['static', 'plain', 'managed']) {
      const c = l.redis[name];
      row(name === 'static' ? '12d Redis work per request, 1 conn' : '', `${name}: commands, µs in Redis`, '', `${c.calls} / ${c.usec} µs`,
          Object.entries(c.by).map(([k, v]) => `${k} ${v.calls}x${(v.usec / (v.calls || 1)).toFixed(1)}`).join(' '), '');
    }
  }
  const a = l.accuracy;
  row(`12c rpm ${a.rpm}, 32 conns, 2 stacks`, `allowed of ${a.requests} (base: limit + refill)`,
      `${a.rpm} + ${a.refill_during_run}`, String(a.allowed), `${a.allowed - a.rpm - a.refill_during_run >= 0 ? '+' : ''}${a.allowed - a.rpm - a.refill_during_run}`,
      'limit + refill (±1)');
}

module.exports = { figLimits, limitsRows };

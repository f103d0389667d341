'use strict';
// bench.js — the figures of `make bench` (scripts/bench.sh runs it).
//
//   AIPROXY_BIN_DIR=build/bin node tests/bench/bench.js [--out FILE] [--only a,b] [--quick]
//
// Every figure is measured beside its baseline in the same run, and printed
// with their ratio or difference: the machine is small and shared, so a figure
// alone says little. Nothing here fails on slowness; the process exits 1 only
// if something errored (a request that failed, a process that died).
// Figures (names for --only): pass, tools, ttft, prop, auth, hold, events,
// responses, cgi, mcp, obs, trace, limits, fleet (tests/bench/fleet.js),
// conns (tests/bench/conns.js).
// Every process started is stopped before exit (the harness also kills its
// children on exit).
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { Stack } = require('../integration/lib/stack');
const { startProc, stopProc, isRunning } = require('../integration/lib/procs');
const { renderNginxConf } = require('../integration/lib/nginx');
const { binDir, freePort, waitFor, mkTmpDir } = require('../integration/lib/util');
const pool = require('./pool');
const { figLimits, limitsRows } = require('./limits');
const { figFleet, fleetRows } = require('./fleet');
const { figConns, connsRows } = require('./conns');
const { fakeUpstream, toolCallChunks, textChunks } = require('../integration/lib/fake-upstream');
const { sseRequest, chunksOf } = require('../integration/lib/sse-client');

const BIN = binDir();
const args = process.argv.slice(2);
const argOf = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const OUT = argOf('--out', null);
const ONLY = argOf('--only', null);
const QUICK = args.includes('--quick');
const WRK_SECS = QUICK ? 2 : 5;
const PASS_WORKERS = Number(process.env.BENCH_WORKERS || 2);
const PASS_THREADS = Number(process.env.BENCH_THREADS || 16);
const NGINX_WORKERS = Number(process.env.BENCH_NGINX_WORKERS || 1);
const HOLD = Number(process.env.BENCH_HOLD || 1000);
const want = (f) => !ONLY || ONLY.split(',').includes(f);

const tmp = mkTmpDir('bench');
const started = [];       // bench-owned processes (upstreams, gateways)
const stacks = [];
const results = {};       // figure -> object (build/bench.json)
const problems = [];      // errors seen: the exit status

// A Stack whose nginx gets NGINX_WORKERS workers (the harness default is one).
class BenchStack extends Stack {
  async startNginx() {
    if (NGINX_WORKERS === 1) return super.startNginx();
    this.port = this.opts.port || await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.baseURL = `${this.url}/v1`;
    const conf = renderNginxConf({
      runDir: this.dir, listen: `127.0.0.1:${this.port}`, fcgiSocket: this.fcgiSock,
      nginxWorkers: NGINX_WORKERS,
      keepalive: Math.max(1, Math.floor((this.workers * this.threads) / (2 * NGINX_WORKERS))),
    });
    const confPath = path.join(this.dir, 'nginx.conf');
    fs.writeFileSync(confPath, conf);
    this.spawn('nginx', '/usr/sbin/nginx', ['-p', this.dir, '-e', path.join(this.dir, 'nginx-error.log'),
                                             '-c', confPath, '-g', 'daemon off;']);
  }
}

// The bench stacks keep no admission reserve (AIPROXY_RESERVE_THREADS=0,
// docs/deploy.md "Admission control"): the figures load every thread of the
// pool at once (32 connections on 2 x 16 threads, 1000 streams on 4 x 256),
// as the figures of earlier runs did, so they stay comparable. The gate itself
// still runs on every completion.
async function startStack(opts) {
  const s = new BenchStack({ ...opts, env: { AIPROXY_RESERVE_THREADS: '0', ...(opts.env || {}) } });
  stacks.push(s);
  await s.start();
  return s;
}

function log(msg) { process.stderr.write(`bench: ${msg}\n`); }

// bench-upstream on a free port; resolves {port, url, h}.
async function startUpstream(extra = []) {
  const port = await freePort();
  const logPath = path.join(tmp, `upstream-${port}.log`);
  const p = startProc(`bench-upstream:${port}`, path.join(BIN, 'bench-upstream'),
                      ['--port', String(port), ...extra], { env: process.env, cwd: tmp, logPath });
  started.push(p);
  await waitFor(() => {
    if (!isRunning(p)) throw new Error(`bench-upstream exited: ${fs.readFileSync(logPath, 'utf8')}`);
    return fs.readFileSync(logPath, 'utf8').includes('listening on');
  }, { timeoutMs: 10000, what: 'bench-upstream to listen' });
  return { port, url: `http://127.0.0.1:${port}/v1`, h: p };
}

// Runs a program to its end; resolves {code, stdout, stderr}.
function run(cmd, argv, { env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...(env || {}) } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => resolve({ code: -1, stdout: out, stderr: String(e) }));
    child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

// The last line of `text` that parses as JSON after `tag` (or plain JSON).
function lastJson(text, tag = '') {
  const lines = text.split('\n').filter((l) => l.startsWith(tag) && l.includes('{'));
  if (!lines.length) return null;
  try { return JSON.parse(lines[lines.length - 1].slice(tag.length)); } catch (_) { return null; }
}

const WRK_LUA = `
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;
const wrkLua = path.join(tmp, 'post.lua');
fs.writeFileSync(wrkLua, WRK_LUA);

// wrk -c32 POSTing a chat completion to url; resolves {rps, p50_us, p99_us, ...}.
async function wrk(url, { model = 'bench', key = '', conns = 32, secs = WRK_SECS, body: raw } = {}) {
  const body = raw ? JSON.stringify(raw) : JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] });
  const r = await run('wrk', [`-t${conns > 1 ? 2 : 1}`, `-c${conns}`, `-d${secs}s`, '--timeout', '10s', '-s', wrkLua, url],
                      { env: { BENCH_BODY: body, BENCH_KEY: key } });
  const j = lastJson(r.stdout, 'BENCHJSON ');
  if (r.code !== 0 || !j) throw new Error(`wrk ${url} failed (${r.code}): ${r.stdout}${r.stderr}`);
  if (j.errors || j.non2xx) problems.push(`wrk ${url}: ${j.errors} socket errors, ${j.non2xx} non-2xx`);
  return j;
}

const CONFIG = (upUrl, extra = '') => `
backends:
  bench: {kind: openai, base_url: ${upUrl}, api_key: sk-bench}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: bench, backend: bench, model: bench-model}
  - {name: prop, backend: bench, model: bench-model, description: v0}
${extra}`;

// The design's floor (issue 20): nginx -> bench-floor (a libfcgi responder
// making the same hops and nothing else, -w/-t as the pass-through stack;
// `json`: it also parses and re-serialises request and answer) -> the stub.
// Resolves {url, stop()}.
async function startFloor(up, { json = false } = {}) {
  const dir = mkTmpDir('floor');
  const sock = path.join(dir, 'fcgi.sock');
  const port = await freePort();
  const fl = startProc('bench-floor', path.join(BIN, 'bench-floor'),
                       ['-s', sock, '-u', up.url, '-w', String(PASS_WORKERS), '-t', String(PASS_THREADS),
                        ...(json ? ['--json'] : [])], { env: process.env, cwd: dir, logPath: path.join(dir, 'floor.log') });
  started.push(fl);
  await waitFor(() => fs.existsSync(sock), { timeoutMs: 10000, what: 'bench-floor to listen' });
  const conf = renderNginxConf({ runDir: dir, listen: `127.0.0.1:${port}`, fcgiSocket: sock,
                                 nginxWorkers: NGINX_WORKERS,
                                 keepalive: Math.max(1, Math.floor((PASS_WORKERS * PASS_THREADS) / (2 * NGINX_WORKERS))) });
  const confPath = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confPath, conf);
  const ng = startProc('floor-nginx', '/usr/sbin/nginx', ['-p', dir, '-e', path.join(dir, 'nginx-error.log'),
                                                          '-c', confPath, '-g', 'daemon off;'],
                       { env: process.env, cwd: dir, logPath: path.join(dir, 'nginx.log') });
  started.push(ng);
  const url = `http://127.0.0.1:${port}/v1`;
  await waitFor(async () => {
    try { await wrk(`${url}/chat/completions`, { conns: 1, secs: 1 }); return true; } catch (_) { return false; }
  }, { timeoutMs: 15000, intervalMs: 200, what: 'the floor stack to answer' });
  return {
    url,
    async stop() {
      await stopProc(ng, { timeoutMs: 5000 });
      await stopProc(fl, { timeoutMs: 5000 });
    },
  };
}

// ---- figures ---------------------------------------------------------------

// Figure 1 and its floors, in best of PASS_ROUNDS interleaved rounds (each
// round measures the upstream direct, aiproxy and both floors one after the
// other, at 32 connections then at one): the machine is shared, so a
// neighbour's burst costs one round of one target, not the whole figure.
// Best = the round with the most requests/s (c32) or the lowest p50 (c1);
// every round's figures stay in bench.json (rounds) to show the spread.
const PASS_ROUNDS = QUICK ? 1 : Number(process.env.BENCH_PASS_ROUNDS || 2);
async function figPass(up, stack) {
  log(`pass-through: wrk -c32 ${WRK_SECS}s and -c1 3s, best of ${PASS_ROUNDS} interleaved rounds: ` +
      `direct, through nginx (responders -w ${PASS_WORKERS} -t ${PASS_THREADS}), the floor and the floor with JSON`);
  const floors = {};
  try {
    for (const json of [false, true]) floors[json ? 'json' : 'plain'] = await startFloor(up, { json });
    const targets = { direct: `${up.url}/chat/completions`, proxied: `${stack.baseURL}/chat/completions`,
                      plain: `${floors.plain.url}/chat/completions`, json: `${floors.json.url}/chat/completions` };
    for (const url of Object.values(targets)) await wrk(url, { secs: 1 });   // warm every path
    const rounds = Object.fromEntries(Object.keys(targets).map((k) => [k, { c32: [], c1: [] }]));
    for (let i = 0; i < PASS_ROUNDS; i++) {
      for (const [k, url] of Object.entries(targets)) rounds[k].c32.push(await wrk(url));
      for (const [k, url] of Object.entries(targets)) rounds[k].c1.push(await wrk(url, { conns: 1, secs: 3 }));
    }
    const best32 = (k) => rounds[k].c32.reduce((a, b) => (b.rps > a.rps ? b : a));
    const best1 = (k) => rounds[k].c1.reduce((a, b) => (b.p50_us < a.p50_us ? b : a));
    const spread = (k) => ({ rps: rounds[k].c32.map((r) => Math.round(r.rps)), c1_p50_us: rounds[k].c1.map((r) => r.p50_us) });
    const direct = best32('direct'), proxied = best32('proxied'), direct1 = best1('direct'), proxied1 = best1('proxied');
    results.pass = {
      floor: { plain: { c32: best32('plain'), c1: best1('plain') }, json: { c32: best32('json'), c1: best1('json') } },
      rounds: PASS_ROUNDS,
      spread: Object.fromEntries(Object.keys(targets).map((k) => [k, spread(k)])),
      one_connection: { direct: direct1, proxied: proxied1,
                        added_p50_us: proxied1.p50_us - direct1.p50_us,
                        added_p99_us: proxied1.p99_us - direct1.p99_us },
      responders: `-w ${PASS_WORKERS} -t ${PASS_THREADS}`, nginx_workers: NGINX_WORKERS,
      direct, proxied,
      rps_ratio: proxied.rps / direct.rps,
      added_p50_us: proxied.p50_us - direct.p50_us,
      added_p99_us: proxied.p99_us - direct.p99_us,
    };
  } finally {
    for (const f of Object.values(floors)) await f.stop();
  }
}

// Issue 16: the Responses surface's pass-through cost beside chat
// completions on the same stack, interleaved (x3 each, wrk -c32 and -c1);
// store: false, so the figure is the translation and rendering, not Redis.
async function figResponses(stack) {
  log(`responses: wrk -c32 ${WRK_SECS}s and -c1 3s x3, POST /v1/chat/completions vs POST /v1/responses`);
  const chat = `${stack.baseURL}/chat/completions`, resp = `${stack.baseURL}/responses`;
  const rbody = { model: 'bench', input: 'hello', store: false };
  await wrk(chat, { secs: 1 });
  await wrk(resp, { secs: 1, body: rbody });
  const runs = { chat: [], resp: [], chat1: [], resp1: [] };
  for (let i = 0; i < 3; i++) {
    runs.chat.push(await wrk(chat));
    runs.resp.push(await wrk(resp, { body: rbody }));
    runs.chat1.push(await wrk(chat, { conns: 1, secs: 3 }));
    runs.resp1.push(await wrk(resp, { conns: 1, secs: 3, body: rbody }));
  }
  const med = (a, k) => a.map((x) => x[k]).sort((x, y) => x - y)[1];
  results.responses = {
    chat_rps: med(runs.chat, 'rps'), responses_rps: med(runs.resp, 'rps'),
    chat_p50_us: med(runs.chat, 'p50_us'), responses_p50_us: med(runs.resp, 'p50_us'),
    chat1_p50_us: med(runs.chat1, 'p50_us'), responses1_p50_us: med(runs.resp1, 'p50_us'),
  };
  const r = results.responses;
  r.rps_ratio = r.responses_rps / r.chat_rps;
  r.added_p50_us = r.responses_p50_us - r.chat_p50_us;
  r.added1_p50_us = r.responses1_p50_us - r.chat1_p50_us;
}

async function figTools(stack) {
  log(`tool round trip: ${QUICK ? 500 : 2000} echo calls through Redis + broker, interleaved with as many on a direct stdio session and as many bare Redis pub/sub ping-pongs`);
  const r = await run(path.join(BIN, 'bench-tools'), [
    '--redis', stack.redisUrl, '--prefix', stack.prefix, '--demo', path.join(BIN, 'mcp-demo'),
    '-n', QUICK ? '500' : '2000']);
  const j = lastJson(r.stdout);
  if (r.code !== 0 || !j) {
    problems.push(`bench-tools failed (${r.code}): ${r.stdout}${r.stderr}`);
    return;
  }
  results.tools = { ...j, added_p50_us: j.broker_p50_us - j.direct_p50_us,
                    added_p99_us: j.broker_p99_us - j.direct_p99_us };
  // what Redis pub/sub itself costs between two processes (the protocol's
  // floor), measured by bench-tools interleaved with the calls
  if (j.pingpong_p50_us > 0) {
    results.tools.pingpong = { n: j.calls, p50_us: j.pingpong_p50_us, p99_us: j.pingpong_p99_us, interleaved: true };
    results.tools.added_vs_pingpong = results.tools.added_p50_us / j.pingpong_p50_us;
    return;
  }
  const pp = await run(path.join(BIN, 'bench-pingpong'), [stack.redisUrl, QUICK ? '1000' : '4000']);
  const pj = lastJson(pp.stdout, 'BENCHJSON ');
  if (pp.code !== 0 || !pj) problems.push(`bench-pingpong failed (${pp.code}): ${pp.stdout}${pp.stderr}`);
  else results.tools.pingpong = pj;
}

async function streams(port, model, extra = []) {
  const r = await run(path.join(BIN, 'bench-streams'), ['--port', String(port), '--model', model, ...extra]);
  const j = lastJson(r.stdout);
  if (!j) throw new Error(`bench-streams failed (${r.code}): ${r.stdout}${r.stderr}`);
  if (r.code !== 0 || j.errors) problems.push(`bench-streams port ${port}: ${j.errors} errors of ${j.requests}`);
  return j;
}

async function figTtft(up, stack) {
  log('streaming TTFT: 32 concurrent streams, direct then through nginx');
  const n = QUICK ? '500' : '2000';
  const direct = await streams(up.port, 'bench', ['-c', '32', '-n', n, '--path', '/v1/chat/completions']);
  const proxied = await streams(stack.port, 'bench', ['-c', '32', '-n', n]);
  // one stream at a time: what the gateway adds when nothing queues (at 32
  // the two cores are saturated and the figure is mostly waiting in line)
  const direct1 = await streams(up.port, 'bench', ['-c', '1', '-n', n, '--path', '/v1/chat/completions']);
  const proxied1 = await streams(stack.port, 'bench', ['-c', '1', '-n', n]);
  results.ttft = { direct, proxied,
                   added_p50_us: proxied.ttft_p50_us - direct.ttft_p50_us,
                   added_p99_us: proxied.ttft_p99_us - direct.ttft_p99_us,
                   one: { direct: direct1, proxied: proxied1,
                          added_p50_us: proxied1.ttft_p50_us - direct1.ttft_p50_us,
                          added_p99_us: proxied1.ttft_p99_us - direct1.ttft_p99_us } };
}

// One HTTP request on a keep-alive agent; resolves {status, body}.
function req(agent, url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    r.on('error', reject);
    if (body) r.end(body); else r.end();
  });
}

// Several wrk runs of one target as one: rps over the summed time, the
// median of the runs' percentiles.
function combine(runs) {
  const med = (k) => pctOf(runs.map((r) => r[k]), 0.5);
  const reqs = runs.reduce((a, r) => a + r.requests, 0);
  const dur = runs.reduce((a, r) => a + r.duration_us, 0);
  return { runs: runs.length, requests: reqs, duration_us: dur, rps: reqs / (dur / 1e6),
           p50_us: med('p50_us'), p99_us: med('p99_us') };
}

const pctOf = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor((s.length - 1) * p)]; };

async function figProp(stackA) {
  log('propagation: 100 admin PUTs on stack A, each until stack B serves it');
  const stackB = await startStack({ config: CONFIG(stackA.upUrl), redisUrl: stackA.redisUrl,
                                    broker: false, env: { ADMIN_API_KEY: 'bench-admin' } });
  const agentA = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const agentB = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const put = [];
  const seen = [];
  const polls = [];
  try {
    for (let i = 1; i <= (QUICK ? 30 : 100); i++) {
      const desc = `v${i}`;
      const t0 = performance.now();
      const r = await req(agentA, `${stackA.url}/admin/assistants/prop`, {
        method: 'PUT', headers: { authorization: 'Bearer bench-admin', 'content-type': 'application/json' },
        body: JSON.stringify({ backend: 'bench', model: 'bench-model', description: desc }) });
      const t1 = performance.now();
      if (r.status !== 200 && r.status !== 201) {
        problems.push(`admin PUT on stack A answered ${r.status}: ${r.body}`);
        return;
      }
      let n = 0;
      await waitFor(async () => {
        n++;
        const g = await req(agentB, `${stackB.url}/v1/models/prop`);
        return g.status === 200 && JSON.parse(g.body).description === desc;
      }, { timeoutMs: 10000, intervalMs: 0, what: `stack B to serve description ${desc}` });
      const t2 = performance.now();
      put.push((t1 - t0) * 1000);
      seen.push((t2 - t0) * 1000);
      polls.push(n);
    }
  } finally {
    agentA.destroy();
    agentB.destroy();
  }
  results.prop = {
    edits: put.length,
    put_p50_us: Math.round(pctOf(put, 0.5)), put_p99_us: Math.round(pctOf(put, 0.99)),
    seen_p50_us: Math.round(pctOf(seen, 0.5)), seen_p99_us: Math.round(pctOf(seen, 0.99)),
    polls_max: Math.max(...polls),
  };
}

// A stand-in Apiman gateway: 200 for the one key, 401 otherwise; counts probes.
async function startGateway(goodKey) {
  const port = await freePort();
  const gw = { port, probes: 0 };
  gw.server = http.createServer((rq, rs) => {
    gw.probes++;
    rs.writeHead(rq.headers['x-api-key'] === goodKey ? 200 : 401, { 'content-type': 'application/json' });
    rs.end('{}');
  });
  await new Promise((r) => gw.server.listen(port, '127.0.0.1', r));
  return gw;
}

async function figAuth(up, open) {
  log('auth cost: pass-through with a static key and with an apiman gateway_probe key (warm cache)');
  const key = 'sk-bench-client-key-0123456789';
  const sStatic = await startStack({ config: CONFIG(up.url, `proxy_api_keys: [${key}]`),
                                     workers: PASS_WORKERS, threads: PASS_THREADS, broker: false });
  const gw = await startGateway(key);
  const sApiman = await startStack({
    config: CONFIG(up.url, `apiman:
  mode: gateway_probe
  gateway_url: http://127.0.0.1:${gw.port}
  probe_api: acme/chat/1.0
  probe_path: ping
  cache_ttl: 3600
`), workers: PASS_WORKERS, threads: PASS_THREADS, broker: false });
  try {
    // the key is refused without it: auth is really on
    for (const s of [sStatic, sApiman]) {
      const r = await req(undefined, `${s.baseURL}/models`);
      if (r.status !== 401) problems.push(`auth stack answered ${r.status} without a key`);
    }
    await wrk(`${open.baseURL}/chat/completions`, { secs: 1 });           // warm every stack
    await wrk(`${sStatic.baseURL}/chat/completions`, { secs: 1, key });   // and the probe cache
    await wrk(`${sApiman.baseURL}/chat/completions`, { secs: 1, key });
    const probesWarm = gw.probes;
    // The three are measured in interleaved rounds (none, static, apiman, none, …)
    // so that a burst of noise on the shared machine falls on all of them.
    const targets = [['none', open, ''], ['static', sStatic, key], ['apiman', sApiman, key]];
    const rounds = async (opts, n) => {
      const got = { none: [], static: [], apiman: [] };
      for (let r = 0; r < n; r++) {
        for (const [name, s, k] of targets) got[name].push(await wrk(`${s.baseURL}/chat/completions`, { ...opts, key: k }));
      }
      return Object.fromEntries(Object.entries(got).map(([name, v]) => [name, combine(v)]));
    };
    const many = await rounds({ secs: Math.max(1, Math.round(WRK_SECS / 2)) }, 3);
    const single = await rounds({ conns: 1, secs: 1 }, 3);
    const none = many.none;
    const stat = many.static;
    const apiman = many.apiman;
    results.auth = {
      rounds: 3,
      one_connection: { ...single,
                        static_added_p50_us: single.static.p50_us - single.none.p50_us,
                        apiman_added_p50_us: single.apiman.p50_us - single.none.p50_us },
      none, static: stat, apiman, gateway_probes_during_run: gw.probes - probesWarm,
      static_added_p50_us: stat.p50_us - none.p50_us, apiman_added_p50_us: apiman.p50_us - none.p50_us,
      static_rps_ratio: stat.rps / none.rps, apiman_rps_ratio: apiman.rps / none.rps,
    };
  } finally {
    await stopStack(sStatic);
    await stopStack(sApiman);
    await new Promise((r) => gw.server.close(r));
  }
}

async function figHold() {
  log(`hold: ${HOLD} concurrent slow streams (5 chunks, 200 ms apart) through nginx, responders -w 4 -t 256`);
  const slow = await startUpstream(['--chunks', '5', '--chunk-ms', '200']);
  const s = await startStack({ config: CONFIG(slow.url), workers: 4, threads: 256, broker: false });
  try {
    // one request first, so every lazily made thing of a warm pool exists
    await streams(s.port, 'bench', ['-c', '4', '-n', '8']);
    const idle = pool.pss(s.procs.fcgi.pid);
    let peak = idle;
    let samples = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        const v = pool.pss(s.procs.fcgi.pid);
        samples++;
        if (v.kib > peak.kib) peak = v;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const j = await streams(s.port, 'bench', ['-c', String(HOLD), '--hold']);
    running = false;
    await sampler;
    await stopProc(slow.h, { timeoutMs: 5000 });
    const m = /max concurrent streams (\d+)/.exec(fs.readFileSync(slow.h.logPath, 'utf8'));
    results.hold = {
      streams: HOLD, errors: j.errors, max_concurrent_at_upstream: m ? Number(m[1]) : null, wall_ms: j.wall_ms, total_p99_us: j.total_p99_us,
      processes: peak.procs, samples,
      idle_pss_kib: idle.kib, peak_pss_kib: peak.kib,
      added_kib_per_stream: Math.round((peak.kib - idle.kib) / HOLD),
      peak_kib_per_stream: Math.round(peak.kib / HOLD),
    };
  } finally {
    await stopStack(s);
  }
}

// Tool events (docs/tool-events.md): a streamed request whose model asks
// for tools twice (mcp-demo add, then echo) and then answers, with tool
// events off and on, interleaved in one run (off/on, then on/off, ...) so
// noise falls on both. The upstream is a stateless script keyed on how many
// tool results the request already carries.
async function figEvents() {
  const n = QUICK ? 60 : 200;
  log(`tool events: ${n} two-round streamed tool loops with events off, ${n} with them on, interleaved`);
  const up = await fakeUpstream();
  up.handle((rec) => {
    const done = (rec.body.messages || []).filter((m) => m.role === 'tool').length;
    if (done === 0) return { sse: toolCallChunks([{ name: 'demo__add', arguments: { a: 2, b: 3 } }]) };
    if (done === 1) return { sse: toolCallChunks([{ name: 'demo__echo', arguments: { text: 'hi' } }]) };
    return { sse: textChunks(['It is ', '5.']) };
  });
  const s = await startStack({ config: `
backends:
  loop: {kind: openai, base_url: ${up.baseURL}, api_key: sk-bench}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: loop, backend: loop, model: loop-model, mcp_servers: [demo]}
`, workers: 1, threads: 4 });
  const one = async (on) => {
    const t0 = performance.now();
    const r = await sseRequest(`${s.baseURL}/chat/completions`,
      { model: 'loop', stream: true, messages: [{ role: 'user', content: 'add' }] },
      { headers: on ? { 'X-Aiproxy-Tool-Events': '1' } : {} });
    const us = (performance.now() - t0) * 1000;
    const evs = chunksOf(r).filter((c) => c.aiproxy_tool_event).length;
    if (r.status !== 200 || !r.done || evs !== (on ? 4 : 0))
      throw new Error(`tool loop (events ${on ? 'on' : 'off'}): status ${r.status}, ${evs} events: ${r.text.slice(0, 500)}`);
    return { us, bytes: Buffer.byteLength(r.text) };
  };
  try {
    for (let i = 0; i < 5; i++) { await one(false); await one(true); }   // warm
    const got = { off: [], on: [] };
    for (let i = 0; i < n; i++) {
      const order = i % 2 ? [true, false] : [false, true];
      for (const on of order) got[on ? 'on' : 'off'].push(await one(on));
    }
    const sum = (v) => ({ p50_us: pctOf(v.map((x) => x.us), 0.5), p99_us: pctOf(v.map((x) => x.us), 0.99),
                          bytes: v[0].bytes });
    const off = sum(got.off);
    const on = sum(got.on);
    results.events = { requests: n, off, on, p50_ratio: on.p50_us / off.p50_us,
                       added_p50_us: on.p50_us - off.p50_us, added_bytes: on.bytes - off.bytes };
  } finally {
    await stopStack(s);
    await up.close();
  }
}

// Figure 8: what plain CGI costs a request (issue 14). The same Apache, the
// same upstream, one connection: mod_proxy_fcgi to a running responder pool
// versus mod_cgid starting aiproxy.cgi for every request (exec, one Redis
// connection, the registry read once, the config parsed, exit).
async function figCgi(up) {
  log(`CGI cost: wrk -c1 3s x3, Apache mod_proxy_fcgi vs mod_cgid running aiproxy-fcgi (plain CGI) ` +
      `vs mod_cgid running aiproxy-cgi (the CGI front, to its pool)`);
  const fcgi = await startStack({ config: CONFIG(up.url), webserver: 'apache', workers: 1, threads: 4, broker: false });
  const cgi = await startStack({ config: CONFIG(up.url), webserver: 'apache-cgi', redisUrl: fcgi.redisUrl,
                                 broker: false, prefix: 'aiproxy-cgi:' });
  const front = await startStack({ config: CONFIG(up.url), webserver: 'apache-cgi-front', redisUrl: fcgi.redisUrl,
                                   broker: false, prefix: 'aiproxy-front:' });
  try {
    const url = (s) => `${s.baseURL}/chat/completions`;
    await wrk(url(fcgi), { conns: 1, secs: 1 });     // warm all paths (the front's pool is up)
    await wrk(url(cgi), { conns: 1, secs: 1 });
    await wrk(url(front), { conns: 1, secs: 1 });
    const a = [];
    const b = [];
    const c = [];
    for (let i = 0; i < 3; i++) {                     // interleaved: all see the same machine
      a.push(await wrk(url(fcgi), { conns: 1, secs: 3 }));
      b.push(await wrk(url(cgi), { conns: 1, secs: 3 }));
      c.push(await wrk(url(front), { conns: 1, secs: 3 }));
    }
    const pf = combine(a);
    const pc = combine(b);
    const pt = combine(c);
    results.cgi = { proxy_fcgi: pf, cgi: pc, added_p50_us: pc.p50_us - pf.p50_us,
                    added_p99_us: pc.p99_us - pf.p99_us,
                    front: pt, front_added_p50_us: pt.p50_us - pf.p50_us,
                    front_added_p99_us: pt.p99_us - pf.p99_us };
  } finally {
    await stopStack(front);
    await stopStack(cgi);
    await stopStack(fcgi);
  }
}

// /mcp tools/call of demo's echo through nginx -> responder -> Redis -> broker
// -> mcp-demo, against the same call on a direct stdio session to mcp-demo
// (newline-delimited JSON-RPC), interleaved one by one on one connection each.
async function figMcp(stack) {
  const n = QUICK ? 300 : 1000;
  log(`/mcp tools/call: ${n} echo calls through nginx + responder + Redis + broker, interleaved with as many on a direct stdio session`);
  const demo = spawn(path.join(BIN, 'mcp-demo'), [], { stdio: ['pipe', 'pipe', 'ignore'] });
  let buf = '';
  const waiting = new Map();
  demo.stdout.setEncoding('utf8');
  demo.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let m;
      try { m = JSON.parse(line); } catch { continue; }
      const w = waiting.get(m.id);
      if (w) { waiting.delete(m.id); w(m); }
    }
  });
  let nextId = 1;
  const direct = (method, params) => new Promise((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    demo.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = `${stack.url}/mcp`;
  const hdr = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  try {
    await direct('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
    demo.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const init = await new Promise((resolve, reject) => {
      const r = http.request(url, { method: 'POST', agent, headers: hdr }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['mcp-session-id']));
      });
      r.on('error', reject);
      r.end(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize',
                             params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }));
    });
    if (!init) throw new Error('/mcp initialize gave no Mcp-Session-Id');
    const sh = { ...hdr, 'mcp-session-id': init, 'mcp-protocol-version': '2025-06-18' };
    const call = async (i) => {
      const r = await req(agent, url, { method: 'POST', headers: sh, body: JSON.stringify({
        jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'demo__echo', arguments: { text: `x${i}` } } }) });
      if (r.status !== 200 || !r.body.includes(`x${i}`)) throw new Error(`/mcp tools/call: ${r.status} ${r.body.slice(0, 300)}`);
    };
    for (let i = 0; i < 20; i++) { await call(i); await direct('tools/call', { name: 'echo', arguments: { text: 'w' } }); }
    const dt = [], mt = [];
    for (let i = 0; i < n; i++) {
      let t0 = process.hrtime.bigint();
      await direct('tools/call', { name: 'echo', arguments: { text: `x${i}` } });
      dt.push(Number(process.hrtime.bigint() - t0) / 1000);
      t0 = process.hrtime.bigint();
      await call(i);
      mt.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const d50 = pctOf(dt, 0.5), d99 = pctOf(dt, 0.99), m50 = pctOf(mt, 0.5), m99 = pctOf(mt, 0.99);
    results.mcp = { calls: n, direct_p50_us: d50, direct_p99_us: d99, mcp_p50_us: m50, mcp_p99_us: m99,
                    added_p50_us: m50 - d50, added_p99_us: m99 - d99 };
  } finally {
    agent.destroy();
    demo.stdin.end();
    demo.kill('SIGTERM');
  }
}

// Issue 19: what metrics, the JSON access log and tracing cost together on
// pass-through: a stack with all three on (AIPROXY_METRICS=1,
// AIPROXY_LOG_FORMAT=json, OTEL_EXPORTER_OTLP_ENDPOINT at a sink here that
// answers 200 to POST /v1/traces) against one with all off, same responders,
// interleaved rounds at 32 and 1 connections. A setting the build does not
// know yet is ignored: the figure measures whatever is on.
async function startTraceSink() {
  const sink = { posts: 0 };
  sink.server = http.createServer((rq, rs) => {
    rq.resume();
    rq.on('end', () => {
      if (rq.method === 'POST' && rq.url === '/v1/traces') sink.posts++;
      rs.writeHead(rq.method === 'POST' && rq.url === '/v1/traces' ? 200 : 404,
                   { 'content-type': 'application/json' });
      rs.end('{}');
    });
  });
  await new Promise((r) => sink.server.listen(0, '127.0.0.1', r));
  sink.url = `http://127.0.0.1:${sink.server.address().port}`;
  return sink;
}

async function figObs(up) {
  log('cost of observability: metrics + JSON log + tracing on vs all off, 3 interleaved rounds, -c32 and -c1');
  const sink = await startTraceSink();
  const common = { config: CONFIG(up.url), workers: PASS_WORKERS, threads: PASS_THREADS, broker: false };
  const on = await startStack({ ...common, env: { AIPROXY_METRICS: '1', AIPROXY_LOG_FORMAT: 'json',
                                                  OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } });
  const off = await startStack({ ...common, env: { AIPROXY_METRICS: '0', AIPROXY_LOG_FORMAT: null,
                                                   OTEL_EXPORTER_OTLP_ENDPOINT: null } });
  try {
    // metrics really are on in one and off in the other
    const mOn = await req(undefined, `${on.url}/metrics`);
    const mOff = await req(undefined, `${off.url}/metrics`);
    if (mOn.status !== 200 || mOff.status !== 404)
      problems.push(`obs: /metrics answered ${mOn.status} (on) and ${mOff.status} (off)`);
    await wrk(`${on.baseURL}/chat/completions`, { secs: 1 });
    await wrk(`${off.baseURL}/chat/completions`, { secs: 1 });
    const rounds = async (opts, n) => {
      const got = { on: [], off: [] };
      for (let r = 0; r < n; r++) {
        // the order alternates, so a drift of the machine falls on both
        const order = r % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]];
        for (const [name, s] of order) got[name].push(await wrk(`${s.baseURL}/chat/completions`, opts));
      }
      return { on: combine(got.on), off: combine(got.off) };
    };
    const many = await rounds({ secs: QUICK ? 1 : 2 }, 3);
    const one = await rounds({ conns: 1, secs: 1 }, 6);
    results.obs = {
      rounds: 3, one_rounds: 6, many, one, trace_posts: sink.posts,
      rps_ratio: many.on.rps / many.off.rps,
      added_p50_us: many.on.p50_us - many.off.p50_us,
      one_rps_ratio: one.on.rps / one.off.rps,
      one_added_p50_us: one.on.p50_us - one.off.p50_us,
    };
  } finally {
    await stopStack(on);
    await stopStack(off);
    await new Promise((r) => sink.server.close(r));
  }
}

// Issue 19 item 5: what tracing costs the pass-through. Two stacks of the
// same config, one exporting spans (OTLP/HTTP) to a local receiver that only
// counts them, one with tracing off; wrk -c32 then -c1, alternated, each
// figure the median of the rounds.
async function figTrace(up) {
  const rounds = QUICK ? 1 : 3;
  let posts = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { posts++; res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{}'); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  log(`traces: pass-through with tracing off vs on (every request sampled), ${rounds} round(s) of wrk -c32 and -c1`);
  const opts = { config: CONFIG(up.url), workers: PASS_WORKERS, threads: PASS_THREADS };
  const off = await startStack(opts);
  const on = await startStack({ ...opts, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${srv.address().port}` } });
  try {
    const got = { off32: [], on32: [], off1: [], on1: [] };
    await wrk(`${off.baseURL}/chat/completions`, { secs: 1 });
    await wrk(`${on.baseURL}/chat/completions`, { secs: 1 });
    for (let i = 0; i < rounds; i++) {
      for (const [k, s] of i % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]])
        got[`${k}32`].push(await wrk(`${s.baseURL}/chat/completions`));
      for (const [k, s] of i % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]])
        got[`${k}1`].push(await wrk(`${s.baseURL}/chat/completions`, { conns: 1, secs: 3 }));
    }
    const med = (v, f) => pctOf(v.map((r) => r[f]), 0.5);
    const fig = (k) => ({ rps: med(got[k], 'rps'), p50_us: med(got[k], 'p50_us'), p99_us: med(got[k], 'p99_us') });
    const r = { off: fig('off32'), on: fig('on32'), off1: fig('off1'), on1: fig('on1') };
    await waitFor(() => posts > 0, { timeoutMs: 10000, what: 'spans at the OTLP receiver' });
    results.trace = { rounds, ...r, otlp_posts: posts, rps_ratio: r.on.rps / r.off.rps,
                      added_p50_us_1conn: r.on1.p50_us - r.off1.p50_us };
  } finally {
    await stopStack(on);
    await stopStack(off);
    await new Promise((r) => srv.close(r));
  }
}

async function stopStack(s) {
  const i = stacks.indexOf(s);
  if (i >= 0) stacks.splice(i, 1);
  try { await s.stop(); } catch (e) { problems.push(e.message.slice(0, 2000)); }
}

// ---- report ----------------------------------------------------------------

const us = (v) => (v === undefined || v === null ? '-' : v >= 10000 ? `${(v / 1000).toFixed(1)} ms` : `${Math.round(v)} µs`);
const sgn = (v) => (v >= 0 ? `+${us(v)}` : `-${us(-v)}`);

function table() {
  const rows = [];
  const row = (figure, what, base, ours, delta, goal) => rows.push([figure, what, base, ours, delta, goal]);
  const p = results.pass;
  if (p) {
    row(`1 pass-through (${p.responders})`, 'requests/s', p.direct.rps.toFixed(0), p.proxied.rps.toFixed(0),
        `x${p.rps_ratio.toFixed(2)}`, '>= 10000');
    row('', 'p50 latency', us(p.direct.p50_us), us(p.proxied.p50_us), sgn(p.added_p50_us), '');
    row('', 'p99 latency', us(p.direct.p99_us), us(p.proxied.p99_us), sgn(p.added_p99_us), '< +1 ms');
    for (const [k, what] of [['plain', '1e design floor (nginx, libfcgi, curl)'], ['json', '1f floor + json-c round trip']]) {
      const f = p.floor && p.floor[k];
      if (!f) continue;
      row(what, 'requests/s (base: floor)', f.c32.rps.toFixed(0), p.proxied.rps.toFixed(0),
          `x${(p.proxied.rps / f.c32.rps).toFixed(2)}`, k === 'json' ? '>= x0.9' : '');
      row('', 'p50, 1 conn (base: floor)', us(f.c1.p50_us), us(p.one_connection.proxied.p50_us),
          sgn(p.one_connection.proxied.p50_us - f.c1.p50_us), k === 'json' ? '<= +40 µs' : '');
    }
    if (p.spread && p.rounds > 1) {
      // the spread over the rounds: a figure is only as good as it
      const sp = (k) => `${Math.min(...p.spread[k].rps)}-${Math.max(...p.spread[k].rps)}`;
      const sp1 = (k) => `${Math.min(...p.spread[k].c1_p50_us)}-${Math.max(...p.spread[k].c1_p50_us)}`;
      row(`1e/1f spread (${p.rounds} rounds)`, 'requests/s: floor+json | aiproxy', sp('json'), sp('proxied'), '', '');
      row('', 'p50 µs, 1 conn: floor+json | aiproxy', sp1('json'), sp1('proxied'), '', '');
    }
    const o = p.one_connection;
    row('1b same, 1 connection', 'p50 latency', us(o.direct.p50_us), us(o.proxied.p50_us), sgn(o.added_p50_us), '');
    row('', 'p99 latency', us(o.direct.p99_us), us(o.proxied.p99_us), sgn(o.added_p99_us), '');
  }
  const rs = results.responses;
  if (rs) {
    row('1c Responses vs chat (-c32)', 'requests/s', rs.chat_rps.toFixed(0), rs.responses_rps.toFixed(0),
        `x${rs.rps_ratio.toFixed(2)}`, 'within 10 %');
    row('', 'p50 latency', us(rs.chat_p50_us), us(rs.responses_p50_us), sgn(rs.added_p50_us), '');
    row('1d same, 1 connection', 'p50 latency', us(rs.chat1_p50_us), us(rs.responses1_p50_us), sgn(rs.added1_p50_us), '');
  }
  const t = results.tools;
  if (t) {
    row('2 tool round trip (echo)', 'p50', us(t.direct_p50_us), us(t.broker_p50_us), sgn(t.added_p50_us), '< +150 µs');
    row('', 'p99', us(t.direct_p99_us), us(t.broker_p99_us), sgn(t.added_p99_us), '');
    if (t.pingpong) {
      row('2b added p50 vs bare Redis pub/sub ping-pong', 'p50 (base: ping-pong)', us(t.pingpong.p50_us), us(t.added_p50_us),
          `x${(t.added_p50_us / t.pingpong.p50_us).toFixed(2)}`, '<= x1.3');
    }
  }
  const s = results.ttft;
  if (s) {
    row('3 streaming TTFT (32 streams)', 'p50', us(s.direct.ttft_p50_us), us(s.proxied.ttft_p50_us), sgn(s.added_p50_us), '');
    row('', 'p99', us(s.direct.ttft_p99_us), us(s.proxied.ttft_p99_us), sgn(s.added_p99_us), '< +1 ms');
    const o = s.one;
    row('3b same, 1 stream', 'p50', us(o.direct.ttft_p50_us), us(o.proxied.ttft_p50_us), sgn(o.added_p50_us), '');
    row('', 'p99', us(o.direct.ttft_p99_us), us(o.proxied.ttft_p99_us), sgn(o.added_p99_us), '< +1 ms');
  }
  const g = results.prop;
  if (g) {
    row(`4 propagation (${g.edits} PUTs)`, 'p50 (base: PUT)', us(g.put_p50_us), us(g.seen_p50_us),
        sgn(g.seen_p50_us - g.put_p50_us), '');
    row('', 'p99 (base: PUT)', us(g.put_p99_us), us(g.seen_p99_us), sgn(g.seen_p99_us - g.put_p99_us), '< 100 ms');
  }
  const a = results.auth;
  if (a) {
    row(`5 auth, static key (${a.rounds} rounds)`, 'p50 (base: no auth)', us(a.none.p50_us), us(a.static.p50_us), sgn(a.static_added_p50_us), '< +50 µs');
    row('', 'requests/s', a.none.rps.toFixed(0), a.static.rps.toFixed(0), `x${a.static_rps_ratio.toFixed(2)}`, '');
    row(`5 auth, apiman probe, warm (${a.rounds} rounds)`, 'p50 (base: no auth)', us(a.none.p50_us), us(a.apiman.p50_us), sgn(a.apiman_added_p50_us), '< +50 µs');
    row('', 'requests/s', a.none.rps.toFixed(0), a.apiman.rps.toFixed(0), `x${a.apiman_rps_ratio.toFixed(2)}`, '');
    const o = a.one_connection;
    row('5b auth, 1 connection, static', 'p50 (base: no auth)', us(o.none.p50_us), us(o.static.p50_us), sgn(o.static_added_p50_us), '< +50 µs');
    row('5b auth, 1 connection, apiman', 'p50 (base: no auth)', us(o.none.p50_us), us(o.apiman.p50_us), sgn(o.apiman_added_p50_us), '< +50 µs');
  }
  const m = results.hold;
  if (m) {
    const mib = (k) => `${(k / 1024).toFixed(1)} MiB`;
    row(`6 ${m.streams} slow streams (-w 4 -t 256)`, `pool PSS (base: idle)`, mib(m.idle_pss_kib), mib(m.peak_pss_kib),
        `+${mib(m.peak_pss_kib - m.idle_pss_kib)}`, '< 1024 MiB');
    row('', 'per stream', '', `${m.peak_kib_per_stream} KiB`, `+${m.added_kib_per_stream} KiB`, '~1 MiB');
    row('', 'errors', '', String(m.errors), '', '0');
    row('', 'streams open at once', String(m.streams), String(m.max_concurrent_at_upstream), '', '');
  }
  const ev = results.events;
  if (ev) {
    row(`7 tool events, 2-round streamed loop (${ev.requests}x)`, 'p50 (base: events off)', us(ev.off.p50_us), us(ev.on.p50_us),
        `x${ev.p50_ratio.toFixed(2)}`, '');
    row('', 'p99 (base: events off)', us(ev.off.p99_us), us(ev.on.p99_us), sgn(ev.on.p99_us - ev.off.p99_us), '');
    row('', 'bytes per answer', String(ev.off.bytes), String(ev.on.bytes), `+${ev.added_bytes}`, '');
  }
  const c = results.cgi;
  if (c) {
    row('8 CGI cost, Apache, 1 connection', 'p50 (base: mod_proxy_fcgi)', us(c.proxy_fcgi.p50_us), us(c.cgi.p50_us),
        sgn(c.added_p50_us), '< +5 ms');
    row('', 'p99 (base: mod_proxy_fcgi)', us(c.proxy_fcgi.p99_us), us(c.cgi.p99_us), sgn(c.added_p99_us), '');
    row('', 'requests/s', c.proxy_fcgi.rps.toFixed(0), c.cgi.rps.toFixed(0), `x${(c.cgi.rps / c.proxy_fcgi.rps).toFixed(2)}`, '');
    if (c.front) {
      row('8b CGI front (aiproxy-cgi), 1 conn', 'p50 (base: mod_proxy_fcgi)', us(c.proxy_fcgi.p50_us), us(c.front.p50_us),
          sgn(c.front_added_p50_us), '< +5 ms');
      row('', 'p99 (base: mod_proxy_fcgi)', us(c.proxy_fcgi.p99_us), us(c.front.p99_us), sgn(c.front_added_p99_us), '');
      row('', 'requests/s', c.proxy_fcgi.rps.toFixed(0), c.front.rps.toFixed(0), `x${(c.front.rps / c.proxy_fcgi.rps).toFixed(2)}`, '');
    }
  }
  const mc = results.mcp;
  if (mc) {
    row(`9 /mcp tools/call echo (${mc.calls}x, 1 conn)`, 'p50 (base: direct stdio session)', us(mc.direct_p50_us), us(mc.mcp_p50_us),
        sgn(mc.added_p50_us), '');
    row('', 'p99 (base: direct stdio session)', us(mc.direct_p99_us), us(mc.mcp_p99_us), sgn(mc.added_p99_us), '');
  }
  const ob = results.obs;
  if (ob) {
    row(`10 observability on (${ob.rounds} rounds, -c32)`, 'requests/s (base: all off)', ob.many.off.rps.toFixed(0),
        ob.many.on.rps.toFixed(0), `x${ob.rps_ratio.toFixed(3)}`, '>= x0.97');
    row('', 'p50 (base: all off)', us(ob.many.off.p50_us), us(ob.many.on.p50_us), sgn(ob.added_p50_us), '');
    row(`10b same, 1 connection (${ob.one_rounds} rounds)`, 'p50 (base: all off)', us(ob.one.off.p50_us), us(ob.one.on.p50_us),
        sgn(ob.one_added_p50_us), '< +20 µs');
    row('', 'requests/s (base: all off)', ob.one.off.rps.toFixed(0), ob.one.on.rps.toFixed(0),
        `x${ob.one_rps_ratio.toFixed(3)}`, '');
  }
  const tr = results.trace;
  if (tr) {
    row('11 pass-through, traces on (base: off)', 'requests/s', tr.off.rps.toFixed(0), tr.on.rps.toFixed(0),
        `x${tr.rps_ratio.toFixed(3)}`, '>= x0.97');
    row('', 'p50, 1 connection', us(tr.off1.p50_us), us(tr.on1.p50_us), sgn(tr.added_p50_us_1conn), '< +20 µs');
  }
  limitsRows(results.limits, row, us, sgn);
  fleetRows(results.fleet, row, us);
  connsRows(results.conns, row);
  const head = ['figure', 'measure', 'baseline', 'aiproxy', 'diff/ratio', 'goal'];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

async function main() {
  const up = await startUpstream();
  let main = null;
  try {
    if (want('pass') || want('tools') || want('ttft') || want('prop') || want('auth') || want('mcp') ||
        want('responses')) {
      main = await startStack({ config: CONFIG(up.url), workers: PASS_WORKERS, threads: PASS_THREADS,
                                env: { ADMIN_API_KEY: 'bench-admin' } });
      main.upUrl = up.url;
    }
    const steps = [
      ['pass', () => figPass(up, main)],
      ['responses', () => figResponses(main)],
      ['tools', () => figTools(main)],
      ['ttft', () => figTtft(up, main)],
      ['prop', () => figProp(main)],
      ['auth', () => figAuth(up, main)],
      ['hold', () => figHold()],
      ['events', () => figEvents()],
      ['cgi', () => figCgi(up)],
      ['mcp', () => figMcp(main)],
      ['obs', () => figObs(up)],
      ['trace', () => figTrace(up)],
      ['limits', () => figLimits({ up, CONFIG, startStack, stopStack, wrk, combine, results, problems, log,
                                   WRK_SECS, PASS_WORKERS, PASS_THREADS })],
      ['fleet', () => figFleet({ startStack, stopStack, startUpstream, streams, req, log, problems, results, QUICK })],
      ['conns', () => figConns({ startStack, stopStack, log, problems, results })],
    ];
    for (const [name, fn] of steps) {
      if (!want(name)) continue;
      try {
        await fn();
      } catch (e) {
        problems.push(`${name}: ${e.message.slice(0, 3000)}`);
      }
    }
  } finally {
    for (const s of [...stacks].reverse()) await stopStack(s);
    for (const p of started) await stopProc(p, { timeoutMs: 5000 });
  }
  const out = { when: new Date().toISOString(), results, errors: problems };
  const text = table();
  process.stdout.write(`\n${text}\n\n`);
  if (OUT) {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
    process.stdout.write(`bench: figures written to ${OUT}\n`);
  }
  if (problems.length) {
    process.stdout.write(`bench: ${problems.length} error(s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exitCode = 1;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack || e}\n`);
  process.exit(1);
});

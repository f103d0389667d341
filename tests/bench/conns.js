'use strict';
// conns.js — figure 14 of `make bench` (issue 20 item 1): the Redis
// connections of one host sized for 1,000 streams (-w 4 -t 256) while
// BENCH_CONNS (default 1000) tool-using streams are held open at once.
//
// Each streamed request's model asks for demo__echo of the request's own tag;
// its second turn (the answer) starts streaming and is then held until every
// request has reached it, so all of them have made a tool round and are open
// together. CLIENT LIST is sampled all along; the responders' connections
// are told apart by their CLIENT SETNAME (aiproxy-rsp:<pid>:cmd|sub|watch).
// The baseline is the per-thread design this replaced, estimated with its own
// rule (one registry connection per thread, two more per thread that served
// a tool: issue 20 measured 660 for a 2x128 pool with 200 tool requests);
// with BENCH_CONNS_BASE_BIN=<bin dir of such a build> the same run is made
// on it first and its Redis clients are printed beside. Nothing fails on
// slowness; a failed request or a wrong echo goes to ctx.problems.
const { fakeUpstream, toolCallChunks, textChunks } = require('../integration/lib/fake-upstream');
const { sseRequest } = require('../integration/lib/sse-client');
const { redisCommand } = require('../integration/lib/redis');
const { waitFor } = require('../integration/lib/util');

const N = Number(process.env.BENCH_CONNS || 1000);
const WORKERS = 4, THREADS = 256;

const CONFIG = (loopUrl) => `
backends:
  loop: {kind: openai, base_url: ${loopUrl}, api_key: sk-bench}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, timeout: 30}
assistants:
  - {name: tool, backend: loop, model: loop-model, mcp_servers: [demo]}
`;

// {total, responders: n, byPid: {pid: n}, roles: {cmd, sub, watch}} from CLIENT LIST.
function census(list) {
  const out = { total: 0, responders: 0, byPid: {}, roles: { cmd: 0, sub: 0, watch: 0 } };
  for (const line of String(list).split('\n')) {
    if (!line.trim()) continue;
    out.total++;
    const m = / name=aiproxy-rsp:(\d+):(\w+) /.exec(` ${line} `);
    if (!m) continue;
    out.responders++;
    out.byPid[m[1]] = (out.byPid[m[1]] || 0) + 1;
    out.roles[m[2]] = (out.roles[m[2]] || 0) + 1;
  }
  return out;
}

const sse = (res, events) => {
  for (const ev of events) res.write(`data: ${JSON.stringify(ev)}\n\n`);
};

// One run: a host, N held tool streams, the census. Resolves the figures.
async function measure(ctx) {
  let second = 0, release;
  const gate = new Promise((r) => { release = r; });
  const loop = await fakeUpstream();
  loop.handle((rec, res) => {
    const msgs = (rec.body && rec.body.messages) || [];
    const tool = msgs.find((m) => m.role === 'tool');
    if (!tool) {
      const tag = msgs.filter((m) => m.role === 'user').at(-1).content;
      return { sse: toolCallChunks([{ name: 'demo__echo', arguments: { text: tag } }]) };
    }
    const evs = textChunks([String(tool.content), ' done']);
    if (tool.content === 'warm') return { sse: evs };
    // the answer: its first chunk now, the rest once every stream is here
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    sse(res, evs.slice(0, 2));
    second++;
    gate.then(() => { sse(res, evs.slice(2)); res.end('data: [DONE]\n\n'); });
    return undefined;
  });
  const s = await ctx.startStack({ config: CONFIG(loop.baseURL), workers: WORKERS, threads: THREADS });
  const sock = s.redisSock;
  let running = true, samples = 0, peak = null;
  const sampler = (async () => {
    while (running) {
      try {
        const c = census(await redisCommand(sock, 'CLIENT', 'LIST'));
        samples++;
        if (!peak || c.responders > peak.responders) peak = c;
      } catch (_) { /* stopping */ }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    // warm: one tool request, so the broker and the demo server are up
    const w = await sseRequest(`${s.baseURL}/chat/completions`,
      { model: 'tool', stream: true, messages: [{ role: 'user', content: 'warm' }] }, { timeoutMs: 30000 });
    if (w.status !== 200) throw new Error(`warm-up request: ${w.status} ${w.text.slice(0, 300)}`);
    const idle = census(await redisCommand(sock, 'CLIENT', 'LIST'));
    const t0 = performance.now();
    const tags = Array.from({ length: N }, (_, i) => `c${i}`);
    const pending = tags.map((tag) => sseRequest(`${s.baseURL}/chat/completions`,
      { model: 'tool', stream: true, messages: [{ role: 'user', content: tag }] }, { timeoutMs: 120000 })
      .catch((e) => ({ status: 0, text: String(e) })));
    let all = true;
    try {
      await waitFor(() => second >= N, { timeoutMs: 90000, intervalMs: 50, what: `${N} streams held after their tool round` });
    } catch (e) { all = false; ctx.problems.push(`conns: ${e.message} (${second} reached)`); }
    const held = census(await redisCommand(sock, 'CLIENT', 'LIST'));
    const ready_ms = Math.round(performance.now() - t0);
    release();
    const res = await Promise.all(pending);
    running = false;
    await sampler;
    let ok = 0;
    res.forEach((r, i) => {
      const text = (r.events || []).map((e) => {
        const j = e && e.json;
        return (j && j.choices && j.choices[0] && j.choices[0].delta && j.choices[0].delta.content) || '';
      }).join('');
      if (r.status === 200 && r.done && text === `${tags[i]} done`) ok++;
    });
    if (ok !== N) ctx.problems.push(`conns: ${N - ok} of ${N} held tool streams failed or got another's echo`);
    if (peak && peak.responders < held.responders) peak = held;
    return { all_held: all, ok, ready_ms, samples, idle, held, peak };
  } finally {
    running = false;
    await sampler;
    await ctx.stopStack(s);
    await loop.close();
  }
}

async function figConns(ctx) {
  const r = { streams: N, workers: WORKERS, threads: THREADS, old_estimate: 3 * N };
  const baseBin = process.env.BENCH_CONNS_BASE_BIN;
  if (baseBin) {
    // the same run on other binaries (e.g. a build of the per-thread design):
    // their Redis clients in all, for the baseline column
    const keep = process.env.AIPROXY_BIN_DIR;
    ctx.log(`conns: baseline on ${baseBin}`);
    process.env.AIPROXY_BIN_DIR = baseBin;
    try { r.base = await measure(ctx); } finally { process.env.AIPROXY_BIN_DIR = keep; }
  }
  ctx.log(`conns: ${N} tool-using streams held open on one host, responders -w ${WORKERS} -t ${THREADS}`);
  Object.assign(r, await measure(ctx));
  ctx.results.conns = r;
}

// Table rows: row(figure, measure, baseline, aiproxy, diff, goal).
function connsRows(c, row) {
  if (!c) return;
  const per = (x) => Object.values(x.byPid).join('/');
  row(`14 Redis connections, ${c.streams} held tool streams (-w ${c.workers} -t ${c.threads})`,
      'responders (base: per-thread design, est.)', c.old_estimate ? `~${c.old_estimate}` : '-',
      String(c.held.responders), `per worker ${per(c.held)}`, '<= 24');
  row('', 'peak over the run / idle', '', `${c.peak.responders} / ${c.idle.responders}`,
      `cmd ${c.peak.roles.cmd}, sub ${c.peak.roles.sub}, watch ${c.peak.roles.watch}`, '');
  row('', 'all clients of Redis, held (base: BENCH_CONNS_BASE_BIN)', c.base ? String(c.base.held.total) : '-',
      String(c.held.total), c.base ? `x${(c.held.total / c.base.held.total).toFixed(3)}` : '', '');
  row('', 'streams answered with their own echo', String(c.streams), String(c.ok), '', String(c.streams));
}

module.exports = { figConns, connsRows };

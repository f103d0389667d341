'use strict';
// fleet.js — figure 12 of `make bench` (issue 20 item 5): a simulated fleet.
//
// One Redis, N "hosts" on this machine (BENCH_FLEET_HOSTS, default 4), each
// its own nginx + responder pool (-w 1 -t 8) on its own sockets and port, all
// on the same Redis and prefix, and two mcp-broker processes (started with
// hosts 0 and 1). Every host gets the same load at once:
//   - streams held back to back (a slow upstream: 5 chunks 200 ms apart),
//   - a steady tool-call load (streamed requests whose model asks for
//     demo__echo with a unique text, then answers),
//   - admin edits: a PUT of an assistant's description on host 0, then every
//     host polled until it serves the new value (propagation per host).
// Mid-run the broker owning the demo server is SIGKILLed: its calls must go
// to the other broker (after its lease lapses) and none may run twice;
// mcp-demo's MCP_DEMO_CALL_LOG counts executions. Redis connections are
// counted (INFO clients; per host by matching unix socket peers with ss -xp)
// at idle and under load. The baseline is one host alone with the load of
// one fleet host, in the same run, before the other hosts start.
// Nothing fails on slowness; an error (a failed request, a call run twice,
// a lost edit) goes to ctx.problems.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { stopProc, isRunning } = require('../integration/lib/procs');
const { waitFor, mkTmpDir } = require('../integration/lib/util');
const { redisCommand } = require('../integration/lib/redis');
const { fakeUpstream, toolCallChunks, textChunks } = require('../integration/lib/fake-upstream');
const { sseRequest } = require('../integration/lib/sse-client');

const HOSTS = Math.max(2, Number(process.env.BENCH_FLEET_HOSTS || 4));
const STREAMS = 3;        // held streams per host, back to back
const TOOLERS = 2;        // concurrent tool-call requests per host
const EDIT_GAP_MS = 200;  // pause between two admin edits

const pct = (v, p) => {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) * p)];
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// connected_clients of INFO clients.
async function clients(sock) {
  const m = /connected_clients:(\d+)/.exec(String(await redisCommand(sock, 'INFO', 'clients')));
  return m ? Number(m[1]) : null;
}

// pid -> descendants (and itself), from /proc/<pid>/task/*/children.
function tree(root) {
  const seen = new Set();
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    if (!p || seen.has(p)) continue;
    seen.add(p);
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${p}/task`); } catch (_) { continue; }
    for (const t of tids) {
      try {
        const s = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        if (s) todo.push(...s.split(/\s+/).map(Number));
      } catch (_) { /* gone */ }
    }
  }
  return seen;
}

// Redis connections per owner: {total, by: {name: n}, other}. Every
// connection to the Redis socket has a server end (local address: the socket
// path) whose peer inode is the client end; ss -xp names the client end's pid.
async function connections(sock, owners) {
  const total = await clients(sock);
  let text = '';
  try { text = execFileSync('ss', ['-xpn'], { encoding: 'utf8', maxBuffer: 64 << 20 }); } catch (_) { return { total }; }
  const rows = text.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((r) => r.length >= 8);
  const peers = new Set(rows.filter((r) => r[4] === sock).map((r) => r[7]));
  const by = {};
  let named = 0;
  const pidOwner = new Map();
  for (const [name, pids] of Object.entries(owners)) for (const p of pids) pidOwner.set(p, name);
  for (const r of rows) {
    if (!peers.has(r[5])) continue;
    const m = /pid=(\d+)/.exec(r.slice(8).join(' '));
    const who = m ? pidOwner.get(Number(m[1])) : undefined;
    if (!who) continue;
    by[who] = (by[who] || 0) + 1;
    named++;
  }
  return { total, by, other: total - named };
}

const CONFIG = (slowUrl, loopUrl, callLog) => `
backends:
  slow: {kind: openai, base_url: ${slowUrl}, api_key: sk-bench}
  loop: {kind: openai, base_url: ${loopUrl}, api_key: sk-bench}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, timeout: 5, env: {MCP_DEMO_CALL_LOG: ${callLog}}}
assistants:
  - {name: bench, backend: slow, model: bench-model}
  - {name: tool, backend: loop, model: loop-model, mcp_servers: [demo]}
  - {name: prop, backend: slow, model: bench-model, description: v0}
`;

// Drives `hosts` for secs seconds; midway calls onMid(). Resolves the phase's
// figures. tools: the shared per-tag bookkeeping of the fake upstream.
async function drive(ctx, hosts, secs, tools, { onMid } = {}) {
  const until = performance.now() + secs * 1000;
  const tool = { lat: [], ok: 0, failed: 0, made: 0 };
  const seq = { n: 0 };
  const toolLoop = async (s, w) => {
    while (performance.now() < until) {
      const tag = `f${tools.run}-${s.fleetIndex}-${w}-${++seq.n}`;
      tool.made++;
      const t0 = performance.now();
      let r = null;
      try {
        r = await sseRequest(`${s.baseURL}/chat/completions`,
          { model: 'tool', stream: true, messages: [{ role: 'user', content: tag }] }, { timeoutMs: 30000 });
      } catch (e) { r = { status: 0, text: String(e) }; }
      if (r.status === 200 && r.done) { tool.ok++; tool.lat.push((performance.now() - t0) * 1000); } else {
        tool.failed++;
        ctx.problems.push(`fleet: tool request ${tag} on host ${s.fleetIndex}: ${r.status} ${String(r.text).slice(0, 200)}`);
      }
    }
  };
  const streamRuns = hosts.map((s) => ctx.streams(s.port, 'bench',
    ['-c', String(STREAMS), '-n', String(STREAMS * Math.max(1, Math.round(secs)))]));
  // admin edits on host 0, each polled on every host until served
  const prop = hosts.map(() => []);
  let edits = 0, lost = 0;
  const editLoop = async () => {
    const admin = { authorization: 'Bearer bench-admin', 'content-type': 'application/json' };
    while (performance.now() < until) {
      const desc = `r${tools.run}e${++edits}`;
      const t0 = performance.now();
      const put = await ctx.req(undefined, `${hosts[0].url}/admin/assistants/prop`, {
        method: 'PUT', headers: admin, body: JSON.stringify({ backend: 'slow', model: 'bench-model', description: desc }) });
      if (put.status !== 200 && put.status !== 201) {
        ctx.problems.push(`fleet: admin PUT answered ${put.status}: ${put.body.slice(0, 200)}`);
        return;
      }
      await Promise.all(hosts.map(async (s, i) => {
        try {
          await waitFor(async () => {
            const g = await ctx.req(undefined, `${s.url}/v1/models/prop`);
            return g.status === 200 && JSON.parse(g.body).description === desc;
          }, { timeoutMs: 10000, intervalMs: 0, what: `host ${i} to serve ${desc}` });
          prop[i].push((performance.now() - t0) * 1000);
        } catch (e) {
          lost++;
          ctx.problems.push(`fleet: ${e.message.slice(0, 200)}`);
        }
      }));
      await sleep(EDIT_GAP_MS);
    }
  };
  const mid = onMid ? (async () => { await sleep(secs * 333); await onMid(); })() : null;
  const t0 = performance.now();
  const loops = [];
  for (const s of hosts) for (let w = 0; w < TOOLERS; w++) loops.push(toolLoop(s, w));
  const [st] = await Promise.all([Promise.all(streamRuns), Promise.all(loops), editLoop(), mid]);
  const wall = (performance.now() - t0) / 1000;
  const sreq = st.reduce((a, j) => a + j.requests, 0);
  const allProp = prop.flat();
  return {
    hosts: hosts.length, secs: wall,
    tool: { requests: tool.made, ok: tool.ok, failed: tool.failed, rps: tool.ok / wall,
            p50_us: pct(tool.lat, 0.5), p99_us: pct(tool.lat, 0.99) },
    streams: { requests: sreq, errors: st.reduce((a, j) => a + j.errors, 0), rps: sreq / wall,
               ttft_p50_us: pct(st.map((j) => j.ttft_p50_us), 0.5), ttft_p99_us: Math.max(...st.map((j) => j.ttft_p99_us)) },
    prop: { edits, lost, p50_us: pct(allProp, 0.5), p99_us: pct(allProp, 0.99),
            hosts: prop.map((v) => ({ n: v.length, p50_us: pct(v, 0.5), p99_us: pct(v, 0.99) })) },
  };
}

async function figFleet(ctx) {
  const secs = ctx.QUICK ? 14 : 24;   // the kill at a third leaves time for the takeover (lease 3 s, call timeout 5 s)
  const baseSecs = ctx.QUICK ? 5 : 10;
  ctx.log(`fleet: ${HOSTS} hosts (-w 1 -t 8 each) on one Redis, 2 brokers; per host ${STREAMS} held streams, ` +
          `${TOOLERS} tool-call loops, admin edits on host 0; baseline 1 host ${baseSecs}s, fleet ${secs}s, a broker SIGKILLed midway`);
  const dir = mkTmpDir('fleet');
  const callLog = path.join(dir, 'calls.log');
  // a broker running as root starts its servers as AIPROXY_MCP_USER (nobody):
  // they must reach the log
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(callLog, '', { mode: 0o666 });
  fs.chmodSync(callLog, 0o666);
  const slow = await ctx.startUpstream(['--chunks', '5', '--chunk-ms', '200']);
  // the tool model: asks for demo__echo with the user's text, then answers;
  // what the tool result said is kept per text
  const tools = { run: 0, result: new Map(), asked: 0 };
  const loop = await fakeUpstream();     // records (that parses the body); the record is dropped here
  loop.handle((rec) => {
    loop.requests.length = 0;
    const msgs = (rec.body && rec.body.messages) || [];
    const tag = String((msgs.find((m) => m.role === 'user') || {}).content || '');
    const res = msgs.find((m) => m.role === 'tool');
    if (!res) {
      tools.asked++;
      return { sse: toolCallChunks([{ name: 'demo__echo', arguments: { text: tag } }]) };
    }
    const text = typeof res.content === 'string' ? res.content : JSON.stringify(res.content);
    tools.result.set(tag, text);
    return { sse: textChunks(['done']) };
  });
  const config = CONFIG(slow.url, loop.baseURL, callLog);
  const hosts = [];
  const start = async (i, broker) => {
    const s = await ctx.startStack({ config, workers: 1, threads: 8, broker,
                                     redisUrl: i ? hosts[0].redisUrl : undefined,
                                     env: { ADMIN_API_KEY: 'bench-admin' } });
    s.fleetIndex = i;
    hosts.push(s);
    return s;
  };
  const owners = () => {
    const o = {};
    hosts.forEach((s, i) => { o[`host ${i}`] = [...tree(s.procs.fcgi.pid)]; });
    hosts.forEach((s, i) => { if (s.procs.broker && isRunning(s.procs.broker)) o[`broker ${i}`] = [...tree(s.procs.broker.pid)]; });
    return o;
  };
  try {
    const h0 = await start(0, true);
    const sock = h0.redisSock;
    // warm: one tool request, one stream
    await sseRequest(`${h0.baseURL}/chat/completions`, { model: 'tool', stream: true, messages: [{ role: 'user', content: 'warm' }] });
    await ctx.streams(h0.port, 'bench', ['-c', '1', '-n', '1']);
    const conns = { base_idle: await connections(sock, owners()) };
    ctx.log('fleet: baseline, one host');
    tools.run = 1;
    const base = await drive(ctx, [h0], baseSecs, tools);
    conns.base_load = await connections(sock, owners());
    for (let i = 1; i < HOSTS; i++) await start(i, i === 1);
    await waitFor(async () => (await redisCommand(sock, 'KEYS', `${h0.prefix}broker:*`))
      .filter((k) => k !== `${h0.prefix}broker:autostart`).length >= 2, { timeoutMs: 20000, what: 'two brokers to announce themselves' });
    for (const s of hosts.slice(1)) {
      await sseRequest(`${s.baseURL}/chat/completions`, { model: 'tool', stream: true, messages: [{ role: 'user', content: 'warm' }] });
    }
    conns.fleet_idle = await connections(sock, owners());
    // the broker to kill: the demo server's lease holder
    const kill = {};
    const onMid = async () => {
      const id = await redisCommand(sock, 'GET', `${h0.prefix}mcp:owner:demo`);
      const victim = hosts.find((s) => s.procs.broker && s.logs('broker').includes(`broker ${id} `));
      if (!victim) { ctx.problems.push(`fleet: no broker owns demo (owner ${id})`); return; }
      conns.fleet_load = await connections(sock, owners());
      kill.host = victim.fleetIndex;
      const t0 = performance.now();
      await stopProc(victim.procs.broker, { signal: 'SIGKILL', timeoutMs: 5000 });
      try {
        await waitFor(async () => {
          const now = await redisCommand(sock, 'GET', `${h0.prefix}mcp:owner:demo`);
          return now && now !== id;
        }, { timeoutMs: 20000, intervalMs: 50, what: 'another broker to take the demo server' });
        kill.takeover_ms = Math.round(performance.now() - t0);
      } catch (e) { ctx.problems.push(`fleet: ${e.message}`); }
    };
    ctx.log(`fleet: ${HOSTS} hosts`);
    tools.run = 2;
    const fleet = await drive(ctx, hosts, secs, tools, { onMid });
    // executions at the MCP server against what the model asked and got
    const runs = new Map();
    const lines = fs.existsSync(callLog) ? fs.readFileSync(callLog, 'utf8').split('\n') : [];
    for (const l of lines) if (l.startsWith('echo f2-')) runs.set(l.slice(5), (runs.get(l.slice(5)) || 0) + 1);
    let answered = 0, errors = 0, erroredButRan = 0;
    for (const [tag, text] of tools.result) {
      if (!tag.startsWith('f2-')) continue;
      if (text === tag) answered++;
      else { errors++; if (runs.get(tag)) erroredButRan++; }
    }
    const made = [...tools.result.keys()].filter((t) => t.startsWith('f2-')).length;
    const dups = [...runs.values()].filter((n) => n > 1).length;
    kill.calls = { made, answered, errors, executed: runs.size, duplicates: dups, errored_but_ran: erroredButRan };
    if (dups) ctx.problems.push(`fleet: ${dups} tool calls ran twice at the MCP server`);
    ctx.results.fleet = { hosts: HOSTS, per_host: { streams: STREAMS, tool_loops: TOOLERS, workers: 1, threads: 8 },
                          base, fleet, kill, conns,
                          tool_rps_ratio: fleet.tool.rps / base.tool.rps,
                          tool_p50_ratio: fleet.tool.p50_us / base.tool.p50_us,
                          stream_rps_ratio: fleet.streams.rps / base.streams.rps };
  } finally {
    for (const s of [...hosts].reverse()) await ctx.stopStack(s);
    await stopProc(slow.h, { timeoutMs: 5000 });
    await loop.close();
    if (!process.env.AIPROXY_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Table rows of the fleet figure: row(figure, measure, baseline, aiproxy, diff, goal).
function fleetRows(f, row, us) {
  if (!f) return;
  const b = f.base, g = f.fleet;
  const perHost = (c, n) => {
    if (!c) return '-';
    if (!c.by) return `~${Math.round(c.total / n)} each`;
    const h = Array.from({ length: n }, (_, i) => c.by[`host ${i}`] || 0).join('/');
    const b = Object.keys(c.by).filter((k) => k.startsWith('broker')).map((k) => c.by[k]).join('+');
    return `hosts ${h}, brokers ${b || 0}`;
  };
  row(`13 fleet: ${f.hosts} hosts vs 1 (same load per host)`, 'tool requests/s',
      b.tool.rps.toFixed(1), g.tool.rps.toFixed(1), `x${f.tool_rps_ratio.toFixed(2)}`, '(one machine: shared cores)');
  row('', 'tool request p50 / p99', `${us(b.tool.p50_us)} / ${us(b.tool.p99_us)}`,
      `${us(g.tool.p50_us)} / ${us(g.tool.p99_us)}`, `x${f.tool_p50_ratio.toFixed(2)}`, '');
  row('', 'streams/s (TTFT p50)', `${b.streams.rps.toFixed(1)} (${us(b.streams.ttft_p50_us)})`,
      `${g.streams.rps.toFixed(1)} (${us(g.streams.ttft_p50_us)})`, `x${f.stream_rps_ratio.toFixed(2)}`, '');
  row('', `propagation p50 / p99 (${b.prop.edits} / ${g.prop.edits} edits)`, `${us(b.prop.p50_us)} / ${us(b.prop.p99_us)}`,
      `${us(g.prop.p50_us)} / ${us(g.prop.p99_us)}`, `lost ${g.prop.lost}`, 'p99 < 100 ms');
  g.prop.hosts.forEach((h, i) => row('', `  host ${i} p50 / p99`, '', `${us(h.p50_us)} / ${us(h.p99_us)}`, '', '< 100 ms'));
  const k = f.kill;
  if (k && k.calls) {
    row('', `broker of host ${k.host} SIGKILLed: calls made / answered`, '', `${k.calls.made} / ${k.calls.answered}`,
        `${k.calls.errors} failed, ${k.calls.errored_but_ran} ran`, '0 lost');
    row('', 'executed at server / ran twice', '', `${k.calls.executed} / ${k.calls.duplicates}`,
        k.takeover_ms !== undefined ? `takeover ${k.takeover_ms} ms` : '', '0 twice');
  }
  const c = f.conns;
  const tot = (x) => (x ? String(x.total) : '-');
  row('', 'Redis connections idle (per host)', `${tot(c.base_idle)} (${perHost(c.base_idle, 1)})`,
      `${tot(c.fleet_idle)} (${perHost(c.fleet_idle, f.hosts)})`, '', '');
  row('', 'Redis connections, load (per host)', `${tot(c.base_load)} (${perHost(c.base_load, 1)})`,
      `${tot(c.fleet_load)} (${perHost(c.fleet_load, f.hosts)})`, '', '');
}

module.exports = { figFleet, fleetRows };

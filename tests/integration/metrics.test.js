'use strict';
// Issue 19 items 1 and 2: GET /metrics of a 2-worker responder pool and the
// broker's own listener, read with a real Prometheus text parser
// (parse-prometheus-text-format). A scripted run (N completions, streams
// among them, M tool calls through mcp-demo, T tokens from the fake
// upstream, some 401 and 404) moves the counters by exactly that, whichever
// worker answers the scrape; histograms are consistent (+Inf == _count);
// a worker killed and re-forked loses none of the host's counts; the
// loopback rule, the token rule and AIPROXY_METRICS=0. docs/observability.md.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const parsePrometheus = require('parse-prometheus-text-format');
const h = require('./lib');
const { fcgiOpen } = require('./lib/fcgi-client');

const KEY = 'sk-test-client';
const CONFIG = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-upstream-secret
    timeout: 30
mcp_servers:
  demo:
    transport: stdio
    command: \${MCP_DEMO}
assistants:
  - name: plain
    backend: fake
    model: up-model
  - name: tooly
    backend: fake
    model: up-model
    mcp_servers: [demo]
proxy_api_keys:
  - ${KEY}
`;

// The exposition parsed twice: as typed families (validates every line,
// counters and gauges), and with histograms read as untyped so that every
// _bucket/_sum/_count sample keeps its labels (the parser folds labelled
// histogram series into one).
function parse(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const typed = parsePrometheus(text);
  const names = typed.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, 'each family once, contiguous');
  const flat = parsePrometheus(text.replace(/^# TYPE (\S+) histogram$/mg, '# TYPE $1 untyped'));
  const samples = {};
  for (const f of flat) (samples[f.name] ||= []).push(...f.metrics);
  return { typed, samples };
}

// The sum of a family's samples whose labels include `match`.
function total(m, name, match = {}) {
  let s = 0;
  for (const x of m.samples[name] || []) {
    const l = x.labels || {};
    if (Object.entries(match).every(([k, v]) => l[k] === v)) s += Number(x.value);
  }
  return s;
}

// Every histogram series: buckets ascending and cumulative, +Inf == _count.
function checkHistograms(m) {
  for (const f of m.typed.filter((x) => x.type === 'HISTOGRAM')) {
    const series = new Map();
    for (const b of m.samples[`${f.name}_bucket`] || []) {
      const { le, ...rest } = b.labels;
      const k = JSON.stringify(rest);
      if (!series.has(k)) series.set(k, []);
      series.get(k).push([le, Number(b.value)]);
    }
    for (const [k, buckets] of series) {
      const les = buckets.map(([le]) => (le === '+Inf' ? Infinity : Number(le)));
      for (let i = 1; i < les.length; i++) {
        assert.ok(les[i] > les[i - 1], `${f.name} ${k}: le ascending`);
        assert.ok(buckets[i][1] >= buckets[i - 1][1], `${f.name} ${k}: cumulative`);
      }
      assert.equal(les[les.length - 1], Infinity, `${f.name} ${k}: ends with +Inf`);
      const labels = JSON.parse(k);
      assert.equal(buckets[buckets.length - 1][1], total(m, `${f.name}_count`, labels),
                   `${f.name} ${k}: +Inf == _count`);
    }
  }
}

async function scrape(stack, headers = {}) {
  const res = await h.request(`${stack.url}/metrics`, { headers });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const m = parse(res.text);
  checkHistograms(m);
  return m;
}

// A request straight to the responder's FastCGI socket, as a web server
// would pass it from a client at `addr`.
async function fcgiGet(stack, path, addr, headers = {}) {
  const p = { REQUEST_METHOD: 'GET', REQUEST_URI: path, SCRIPT_NAME: path, REMOTE_ADDR: addr,
              SERVER_PROTOCOL: 'HTTP/1.1', CONTENT_LENGTH: '0' };
  for (const [k, v] of Object.entries(headers)) p[`HTTP_${k.toUpperCase().replace(/-/g, '_')}`] = v;
  const c = fcgiOpen(stack.fcgiSock, p);
  c.endStdin();
  try { return await c.stdout; } finally { c.destroy(); }
}

const CHAT = { route: '/v1/chat/completions' };
const USAGE_S = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };

describe('GET /metrics across a 2-worker pool', () => {
  let up, stack, client, brokerPort;

  before(async () => {
    up = await h.fakeUpstream();
    brokerPort = await h.freePort();
    stack = await h.startStack({ config: CONFIG, upstream: up, workers: 2, threads: 4,
                                 env: { AIPROXY_BROKER_METRICS: `127.0.0.1:${brokerPort}` } });
    client = stack.openai();
  });
  after(async () => { await stack?.stop(); await up?.close(); });

  test('a scripted run moves the counters by exactly what it did', async () => {
    const m0 = await scrape(stack);
    const N = 4, S = 2;
    // N plain completions (11 + 7 tokens each, the fake's default usage)
    for (let i = 0; i < N; i++) {
      up.enqueue({ json: h.completion({ content: `answer ${i}` }) });
      const r = await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.choices[0].message.content, `answer ${i}`);
    }
    // S streams, 5 + 3 tokens each
    for (let i = 0; i < S; i++) {
      up.enqueue({ sse: h.textChunks(['str', 'eam'], { usage: USAGE_S }) });
      const st = await client.chat.completions.create({ model: 'plain', stream: true,
        stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
      let text = '';
      for await (const c of st) text += c.choices[0]?.delta?.content || '';
      assert.equal(text, 'stream');
    }
    // one tool loop: round 0 calls add and echo (M = 2), then the answer; two turns of 11 + 7
    up.enqueue({ json: h.completion({ tool_calls: [
      { id: 'c1', name: 'demo__add', arguments: { a: 2, b: 3 } },
      { id: 'c2', name: 'demo__echo', arguments: { text: 'hi' } }] }) });
    up.enqueue({ json: h.completion({ content: 'It is 5.' }) });
    const t = await client.chat.completions.create({ model: 'tooly', messages: [{ role: 'user', content: 'add' }] });
    assert.equal(t.choices[0].message.content, 'It is 5.');
    // refusals: 3 bad keys (401), 2 unknown routes (404)
    for (let i = 0; i < 3; i++) {
      const r = await h.request(`${stack.url}/v1/chat/completions`, { method: 'POST',
        headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'plain', messages: [{ role: 'user', content: 'x' }] }) });
      assert.equal(r.status, 401);
    }
    for (let i = 0; i < 2; i++)
      assert.equal((await h.request(`${stack.url}/no/such/route`)).status, 404);

    const m1 = await scrape(stack);
    const d = (name, match) => total(m1, name, match) - total(m0, name, match);
    assert.equal(d('aiproxy_requests_total', { ...CHAT, assistant: 'plain', status: '2xx' }), N + S);
    assert.equal(d('aiproxy_requests_total', { ...CHAT, assistant: 'tooly', status: '2xx' }), 1);
    assert.equal(d('aiproxy_requests_total', { ...CHAT, status: '4xx' }), 3);
    assert.equal(d('aiproxy_requests_total', { route: 'unmatched', status: '4xx' }), 2);
    assert.equal(d('aiproxy_refused_total', { reason: '401' }), 3);
    assert.equal(d('aiproxy_refused_total', { reason: '404' }), 2);
    assert.equal(d('aiproxy_tokens_total', { assistant: 'plain', backend: 'fake', type: 'prompt' }), N * 11 + S * 5);
    assert.equal(d('aiproxy_tokens_total', { assistant: 'plain', backend: 'fake', type: 'completion' }), N * 7 + S * 3);
    assert.equal(d('aiproxy_tokens_total', { assistant: 'tooly', type: 'prompt' }), 22);
    assert.equal(d('aiproxy_tokens_total', { assistant: 'tooly', type: 'completion' }), 14);
    assert.equal(d('aiproxy_tool_calls_total', { server: 'demo', tool: 'add', outcome: 'ok' }), 1);
    assert.equal(d('aiproxy_tool_calls_total', { server: 'demo', tool: 'echo', outcome: 'ok' }), 1);
    assert.equal(d('aiproxy_tool_calls_total', {}), 2);
    assert.equal(d('aiproxy_tool_call_duration_seconds_count', { server: 'demo' }), 2);
    assert.equal(d('aiproxy_upstream_turn_duration_seconds_count', { backend: 'fake' }), N + S + 2);
    assert.equal(d('aiproxy_ttft_seconds_count', { assistant: 'plain' }), S);
    assert.equal(d('aiproxy_tool_rounds_count', {}), N + S + 1);
    assert.equal(d('aiproxy_request_duration_seconds_count', CHAT), N + S + 1 + 3);
    assert.equal(total(m1, 'aiproxy_pool_threads_total'), 8, 'both workers\' threads');
    assert.equal(total(m1, 'aiproxy_redis_up'), 1);
    assert.ok(total(m1, 'aiproxy_registry_version') >= 1);
    // the registry is read without a round trip while nothing moves (the
    // worker's watcher): a change message makes the next request read it
    await stack.redis('PUBLISH', `${stack.prefix}reg:changed`, '{"version":0,"kind":"all","name":"","op":"put"}');
    up.enqueue({ json: h.completion({ content: 'after the change' }) });
    await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] });
    const m2 = await scrape(stack);
    assert.ok(total(m2, 'aiproxy_redis_round_trips_total') > total(m0, 'aiproxy_redis_round_trips_total'));
    assert.ok(total(m1, 'aiproxy_pool_threads_busy') >= 1, 'the scrape itself is being served');
    // no label carries a key, the upstream's secret or the caller
    assert.doesNotMatch(JSON.stringify(m1.samples), /sk-test-client|sk-wrong|sk-upstream-secret/);
  });

  test('every scrape shows the host-wide sums, whichever worker answers', async () => {
    const chat = [];
    for (let i = 0; i < 12; i++) {
      const m = await scrape(stack);
      chat.push(total(m, 'aiproxy_requests_total', CHAT));
      assert.equal(total(m, 'aiproxy_pool_threads_total'), 8);
    }
    assert.equal(new Set(chat).size, 1, `the same count from every scrape: ${chat}`);
    // 8 threads can only be both workers' 4: each scrape sums every worker's slots
  });

  test('a worker killed and re-forked loses none of the counts', async () => {
    const before = total(await scrape(stack), 'aiproxy_requests_total', CHAT);
    const master = stack.procs.fcgi.pid;
    const kids = require('node:fs').readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
      .trim().split(/\s+/).map(Number);
    assert.equal(kids.length, 2);
    process.kill(kids[0], 'SIGKILL');
    await h.waitFor(() => {
      const now = require('node:fs').readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
        .trim().split(/\s+/).map(Number);
      return now.length === 2 && !now.includes(kids[0]);
    }, { timeoutMs: 10000, what: 'the master to re-fork the worker' });
    await h.waitFor(async () => total(await scrape(stack), 'aiproxy_pool_threads_total') === 8,
                    { timeoutMs: 10000, what: 'the new worker\'s threads' });
    const m = await scrape(stack);
    assert.equal(total(m, 'aiproxy_requests_total', CHAT), before);
  });

  test('loopback only by default: another address gets 403', async () => {
    const far = await fcgiGet(stack, '/metrics', '10.1.2.3');
    assert.equal(far.status, 403);
    assert.equal(far.json.error.code, 'metrics_forbidden');
    for (const addr of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const near = await fcgiGet(stack, '/metrics', addr);
      assert.equal(near.status, 200, addr);
      parse(near.body);
    }
  });

  test('the broker\'s listener: sessions and calls', async () => {
    const res = await h.request(`http://127.0.0.1:${brokerPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const m = parse(res.text);
    checkHistograms(m);
    assert.equal(total(m, 'aiproxy_broker_sessions', { server: 'demo', state: 'ready' }), 1);
    assert.equal(total(m, 'aiproxy_broker_calls_total', { server: 'demo', outcome: 'ok' }), 2);
    assert.equal(total(m, 'aiproxy_broker_call_duration_seconds_count', { server: 'demo' }), 2);
    assert.equal(total(m, 'aiproxy_broker_calls_in_flight'), 0);
    assert.ok(total(m, 'aiproxy_broker_restarts_total', { server: 'demo' }) >= 0);
    assert.equal((await h.request(`http://127.0.0.1:${brokerPort}/other`)).status, 404);
  });

  // conf/grafana-aiproxy.json and docs/observability.md against what the
  // responder and the broker really expose
  test('the Grafana dashboard and the docs name only metrics that exist, and all of them', async () => {
    const fs = require('node:fs');
    const path = require('node:path');
    const fams = [...(await scrape(stack)).typed,
      ...parse((await h.request(`http://127.0.0.1:${brokerPort}/metrics`)).text).typed];
    const names = new Set();
    for (const f of fams) {
      names.add(f.name);
      if (f.type === 'HISTOGRAM') for (const x of ['_bucket', '_sum', '_count']) names.add(f.name + x);
    }
    const dash = JSON.parse(fs.readFileSync(path.join(h.REPO_ROOT, 'conf', 'grafana-aiproxy.json'), 'utf8'));
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 10);
    const used = new Set();
    for (const e of exprs) {
      for (const m of e.match(/\baiproxy_[a-z_]+/g) || []) {
        assert.ok(names.has(m), `the dashboard uses ${m}, which nothing exposes`);
        used.add(m);
      }
    }
    for (const want of ['aiproxy_requests_total', 'aiproxy_ttft_seconds_bucket', 'aiproxy_tokens_total',
      'aiproxy_tool_calls_total', 'aiproxy_pool_threads_busy', 'aiproxy_broker_sessions',
      'aiproxy_broker_restarts_total']) assert.ok(used.has(want), `the dashboard shows ${want}`);
    const doc = fs.readFileSync(path.join(h.REPO_ROOT, 'docs', 'observability.md'), 'utf8');
    for (const f of fams) assert.ok(doc.includes(`\`${f.name}\``), `docs/observability.md documents ${f.name}`);
  });

  test('a tools/call on the /mcp endpoint counts as a tool call too', async () => {
    const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const m0 = await scrape(stack);
    const client = new Client({ name: 'metrics-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${KEY}` } } });
    await client.connect(transport);
    try {
      const r = await client.callTool({ name: 'demo__echo', arguments: { text: 'counted' } });
      assert.match(r.content[0].text, /counted/);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
    const m1 = await scrape(stack);
    const match = { server: 'demo', tool: 'echo', outcome: 'ok' };
    assert.equal(total(m1, 'aiproxy_tool_calls_total', match) - total(m0, 'aiproxy_tool_calls_total', match), 1);
    assert.equal(total(m1, 'aiproxy_requests_total', { route: '/mcp', status: '2xx' }) -
                 total(m0, 'aiproxy_requests_total', { route: '/mcp', status: '2xx' }) >= 2, true);
  });
});

// How tool calls end, as the responder and the broker count them.
const OUTCOMES = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
mcp_servers:
  demo:
    command: \${MCP_DEMO}
    args: [--test-tools]
    timeout: 1
assistants:
  - name: tooly
    backend: fake
    model: up-model
    mcp_servers: [demo]
`;

describe('tool call outcomes', () => {
  let up, stack, brokerPort;
  before(async () => {
    up = await h.fakeUpstream();
    brokerPort = await h.freePort();
    stack = await h.startStack({ config: OUTCOMES, upstream: up,
                                 env: { AIPROXY_BROKER_METRICS: `127.0.0.1:${brokerPort}` } });
  });
  after(async () => { await stack?.stop(); await up?.close(); });

  // one tool round with `calls`, then an answer
  async function round(calls) {
    up.enqueue({ json: h.completion({ tool_calls: calls.map((c, i) => ({ id: `c${i}`, ...c })) }) });
    up.enqueue({ json: h.completion({ content: 'done' }) });
    const r = await stack.openai().chat.completions.create({ model: 'tooly', messages: [{ role: 'user', content: 'go' }] });
    assert.equal(r.choices[0].message.content, 'done');
  }
  const broker = async () => parse((await h.request(`http://127.0.0.1:${brokerPort}/metrics`)).text);

  test('ok, tool_error, timeout and server_down, and the restart that follows a crash', async () => {
    const m0 = await scrape(stack);
    await round([{ name: 'demo__echo', arguments: { text: 'a' } },
                 { name: 'demo__add', arguments: { a: 'x' } },      // the tool says it failed
                 { name: 'demo__nope', arguments: {} }]);           // no such tool: never sent
    await round([{ name: 'demo__hang', arguments: {} }]);           // past the 1 s timeout
    await round([{ name: 'demo__crash', arguments: {} }]);          // the session dies under it
    const m1 = await scrape(stack);
    const d = (match) => total(m1, 'aiproxy_tool_calls_total', match) - total(m0, 'aiproxy_tool_calls_total', match);
    assert.equal(d({ server: 'demo', tool: 'echo', outcome: 'ok' }), 1);
    assert.equal(d({ server: 'demo', tool: 'add', outcome: 'tool_error' }), 1);
    assert.equal(d({ server: '', tool: '', outcome: 'tool_error' }), 1, 'a made-up name is no label');
    assert.equal(d({ server: 'demo', tool: 'hang', outcome: 'timeout' }), 1);
    assert.equal(d({ server: 'demo', tool: 'crash', outcome: 'server_down' }), 1);
    assert.equal(d({}), 5);
    const b = await broker();
    assert.equal(total(b, 'aiproxy_broker_calls_total', { server: 'demo', outcome: 'ok' }), 1);
    assert.equal(total(b, 'aiproxy_broker_calls_total', { server: 'demo', outcome: 'tool_error' }), 1);
    assert.equal(total(b, 'aiproxy_broker_calls_total', { server: 'demo', outcome: 'server_down' }), 1);
    assert.equal(total(b, 'aiproxy_broker_calls_total', { server: 'demo' }), 4, 'the hang: timeout or cancelled');
    await h.waitFor(async () => total(await broker(), 'aiproxy_broker_restarts_total', { server: 'demo' }) >= 1 &&
                                total(await broker(), 'aiproxy_broker_sessions', { server: 'demo', state: 'ready' }) === 1,
                    { timeoutMs: 15000, what: 'the crashed session to be restarted and counted' });
  });
});

describe('GET /metrics settings', () => {
  let up;
  before(async () => { up = await h.fakeUpstream(); });
  after(async () => { await up?.close(); });

  test('AIPROXY_METRICS_TOKEN: a bearer token from anywhere, nothing without it', async () => {
    const stack = await h.startStack({ config: CONFIG, upstream: up, broker: false,
                                       env: { AIPROXY_METRICS_TOKEN: 'scrape-secret-1' } });
    try {
      const none = await h.request(`${stack.url}/metrics`);
      assert.equal(none.status, 401);
      assert.equal(none.json.error.code, 'metrics_unauthorized');
      assert.doesNotMatch(none.text, /scrape-secret-1/);
      const wrong = await h.request(`${stack.url}/metrics`, { headers: { authorization: 'Bearer scrape-secret-2' } });
      assert.equal(wrong.status, 401);
      const far = await fcgiGet(stack, '/metrics', '10.1.2.3', { authorization: 'Bearer scrape-secret-1' });
      assert.equal(far.status, 200);
      parse(far.body);
      await scrape(stack, { authorization: 'Bearer scrape-secret-1' });
    } finally { await stack.stop(); }
  });

  test('CGI mode (one process per request, no master): what it can, without a crash', async () => {
    const { execFileSync } = require('node:child_process');
    const path = require('node:path');
    const stack = await h.startStack({ config: CONFIG, upstream: up, broker: false });
    try {
      const cgi = (extra = {}) => execFileSync(path.join(h.binDir(), 'aiproxy-fcgi'), [], {
        input: '', encoding: 'utf8', timeout: 20000,
        env: { ...stack.env(), GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', REQUEST_URI: '/metrics',
               REMOTE_ADDR: '127.0.0.1', ...extra } });
      const out = cgi();
      assert.match(out, /^Status: 200/);
      const m = parse(out.slice(out.indexOf('\r\n\r\n') + 4));
      assert.equal(total(m, 'aiproxy_redis_up'), 1);
      assert.ok(total(m, 'aiproxy_registry_version') >= 1);
      assert.match(cgi({ REMOTE_ADDR: '10.9.9.9' }), /^Status: 403/);
      assert.match(cgi({ AIPROXY_METRICS: '0' }), /^Status: 404/);
    } finally { await stack.stop(); }
  });

  test('AIPROXY_METRICS=0: no route, nothing counted', async () => {
    const stack = await h.startStack({ config: CONFIG, upstream: up, broker: false,
                                       env: { AIPROXY_METRICS: '0' } });
    try {
      const r = await h.request(`${stack.url}/metrics`);
      assert.equal(r.status, 404);
      assert.equal(r.json.error.code, 'unknown_route');
      assert.equal((await h.request(`${stack.url}/health`)).status, 200);
    } finally { await stack.stop(); }
  });
});

'use strict';
// Issue 20 item 1: a responder's Redis connections depend on its worker
// processes, not on their threads. 64 tool-using requests are held open at
// once on a -w 2 -t 48 stack (first in the tool wait, then in the model's
// final turn); all along, CLIENT LIST is sampled and the connections the
// responders named (CLIENT SETNAME aiproxy-rsp:<pid>:cmd|sub|watch) must stay
// within workers x (pool + 1 subscriber + 1 watcher). Every request must get
// its own answer back: each asks for an echo of its own tag beside a sleep,
// so a reply handed to the wrong thread by the per-process subscriber shows.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, fakeUpstream, completion, waitFor, request } = require('./lib');

const CONFIG = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-up
mcp_servers:
  demo:
    command: \${MCP_DEMO}
    args: [--test-tools]
assistants:
  - name: helper
    backend: fake
    model: up-model
    mcp_servers: [demo]
proxy_api_keys: [sk-test-client]
`;

const N = 64, WORKERS = 2, THREADS = 48, POOL = 3, SLEEP_MS = 1500;

// {pid: {cmd, sub, watch}} of the responders' named connections.
function parseClients(list) {
  const by = {};
  for (const line of list.split('\n')) {
    const m = / name=aiproxy-rsp:(\d+):(\w+) /.exec(` ${line} `);
    if (!m) continue;
    by[m[1]] = by[m[1]] || { cmd: 0, sub: 0, watch: 0 };
    by[m[1]][m[2]] = (by[m[1]][m[2]] || 0) + 1;
  }
  return by;
}

test(`${N} held tool-using requests on -w ${WORKERS} -t ${THREADS}: Redis connections bounded per worker`, async (t) => {
  const up = await fakeUpstream();
  const stack = await startStack({
    config: CONFIG, upstream: up, workers: WORKERS, threads: THREADS,
    env: { AIPROXY_REDIS_POOL: String(POOL), AIPROXY_RESERVE_THREADS: '0' },
  });
  let sampling = true;
  const samples = [];
  t.after(async () => { sampling = false; await stack.stop(); await up.close(); });

  // Turn 1 of every request waits until all N are in (so their tool waits
  // overlap), turn 2 until all N are back from their tools.
  let first = 0, second = 0, openFirst, openSecond;
  const gate1 = new Promise((r) => { openFirst = r; });
  const gate2 = new Promise((r) => { openSecond = r; });
  const answer = (res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  up.handle((rec, res) => {
    const msgs = (rec.body && rec.body.messages) || [];
    const tools = msgs.filter((m) => m.role === 'tool');
    if (tools.length === 0) {
      const tag = msgs.filter((m) => m.role === 'user').at(-1).content;
      first++;
      gate1.then(() => answer(res, completion({ tool_calls: [
        { id: 'call_0', name: 'demo__echo', arguments: { text: tag } },
        { id: 'call_1', name: 'demo__sleep', arguments: { ms: SLEEP_MS } }] })));
      return undefined;
    }
    second++;
    gate2.then(() => answer(res, completion({ content: tools.map((m) => m.content).join(' | ') })));
    return undefined;
  });

  const sampler = (async () => {
    while (sampling) {
      try { samples.push(parseClients(await stack.redis('CLIENT', 'LIST'))); } catch (_) { /* stopping */ }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const tags = Array.from({ length: N }, (_, i) => `tag-${i}-${Math.random().toString(36).slice(2, 8)}`);
  const pending = tags.map((tag) => request(`${stack.url}/v1/chat/completions`, {
    method: 'POST', timeoutMs: 120000,
    headers: { authorization: 'Bearer sk-test-client' },
    body: { model: 'helper', messages: [{ role: 'user', content: tag }] },
  }));

  await waitFor(() => first === N, { timeoutMs: 60000, what: `all ${N} requests at the model` });
  openFirst();
  await waitFor(() => second === N, { timeoutMs: 60000, what: `all ${N} requests back from their tools` });
  // all N held open at once, each having made its tool round: count now
  const held = parseClients(await stack.redis('CLIENT', 'LIST'));
  openSecond();
  const res = await Promise.all(pending);
  sampling = false;
  await sampler;

  for (let i = 0; i < N; i++) {
    assert.equal(res[i].status, 200, res[i].text);
    assert.equal(res[i].json.choices[0].message.content, `${tags[i]} | slept ${SLEEP_MS} ms`);
  }
  const pids = Object.keys(held);
  assert.ok(pids.length >= 1 && pids.length <= WORKERS, `responder processes with Redis: ${pids}`);
  assert.ok(Object.values(held).some((c) => c.sub === 1), 'a worker subscribed for tool replies');
  samples.push(held);
  let most = 0;
  for (const s of samples) {
    let total = 0;
    for (const [pid, c] of Object.entries(s)) {
      assert.ok(c.cmd <= POOL, `pid ${pid}: ${c.cmd} command connections (pool ${POOL})`);
      assert.ok(c.sub <= 1 && c.watch <= 1, `pid ${pid}: ${JSON.stringify(c)}`);
      total += c.cmd + c.sub + c.watch;
    }
    assert.ok(Object.keys(s).length <= WORKERS, `processes: ${Object.keys(s)}`);
    assert.ok(total <= WORKERS * (POOL + 2), `${total} connections > ${WORKERS} x (${POOL} + 2)`);
    most = Math.max(most, total);
  }
  t.diagnostic(`most responder connections seen: ${most} over ${samples.length} samples ` +
               `(${N} requests, ${WORKERS * THREADS} threads; one per thread would be ${N}+)`);
});

'use strict';
// Issue 11 (B): Redis faults heal themselves, without restarting a daemon.
// One stack (nginx → responders → Redis → mcp-broker → mcp-demo); after each
// fault — every connection killed (CLIENT KILL), Redis restarted empty, Redis
// SIGKILLed and started again — a plain chat, a tool call and an admin edit
// all work within a bounded wait. Also: a tool call the client walks away
// from is cancelled at the MCP server, and the admin API creates entries in
// an empty registry (a responder started without -c).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./lib');
const { stopProc } = require('./lib/procs');

const ADMIN = 'admin-key-redis-faults-0123';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo:
    command: \${MCP_DEMO}
    args: [--test-tools]
assistants:
  - {name: helper, backend: fake, model: up-model, mcp_servers: [demo]}
proxy_api_keys: [sk-test-client]
`;

// The upstream, order-free: "add" asks for demo__add(2,3), "hang" for
// demo__hang; a turn with tool results answers with their text; else "hi".
function scriptUpstream(up) {
  up.handle((rec) => {
    const msgs = rec.body.messages || [];
    const tools = msgs.filter((m) => m.role === 'tool');
    if (tools.length) return { json: h.completion({ content: tools.map((m) => m.content).join(' | ') }) };
    const last = msgs.filter((m) => m.role === 'user').at(-1);
    if (last && last.content === 'add') {
      return { json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__add', arguments: { a: 2, b: 3 } }] }) };
    }
    if (last && last.content === 'hang') {
      return { json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__hang', arguments: {} }] }) };
    }
    return { json: h.completion({ content: 'hi' }) };
  });
}

function chat(stack, content, opts) {
  return stack.openai().chat.completions.create(
    { model: 'helper', messages: [{ role: 'user', content }] }, opts);
}

function admin(stack, method, p, body) {
  return h.request(`${stack.url}${p}`, { method, headers: { authorization: `Bearer ${ADMIN}` }, body });
}

async function modelIds(stack) {
  const r = await h.request(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-client' } });
  assert.equal(r.status, 200, r.text);
  return r.json.data.map((m) => m.id);
}

// After a fault: chat answers within a bounded wait; then, at once, a tool
// call and an admin edit work too.
async function assertHealed(stack, tag) {
  await h.waitFor(async () => {
    try { return (await chat(stack, 'hello')).choices[0].message.content === 'hi'; } catch (_) { return false; }
  }, { timeoutMs: 15000, what: `chat to work again after ${tag}` });
  const r = await chat(stack, 'add');
  assert.equal(r.choices[0].message.content, '5');
  const name = `extra-${tag}`;
  const put = await admin(stack, 'PUT', `/admin/assistants/${name}`, { backend: 'fake', model: 'm2' });
  assert.equal(put.status, 201, put.text);
  assert.ok((await modelIds(stack)).includes(name));
}

// Lines that say a daemon wrote the registry back.
function reseeds(stack) {
  return (stack.logs('fcgi') + stack.logs('broker')).split('\n').filter((l) => /re-seeded it from the config/.test(l));
}

test('Redis faults heal without restarting a daemon', async (t) => {
  const up = await h.fakeUpstream();
  scriptUpstream(up);
  const stack = await h.startStack({ config: CONFIG, upstream: up, threads: 4, env: { ADMIN_API_KEY: ADMIN } });
  t.after(async () => { try { await stack.stop(); } finally { await up.close(); } });

  await t.test('baseline: chat, a tool call and an admin edit', async () => {
    await assertHealed(stack, 'start');
  });

  await t.test('a call the client walks away from is cancelled at the MCP server', async () => {
    const ac = new AbortController();
    const pending = chat(stack, 'hang', { signal: ac.signal }).then(() => null, (e) => e);
    await h.waitFor(() => /mcp-demo: hang\(\) called/.test(stack.logs('broker')),
                    { timeoutMs: 10000, what: 'the demo server to run hang()' });
    ac.abort();
    assert.ok(await pending, 'the aborted request must not succeed');
    // the demo logs each notifications/cancelled it receives; the server's
    // own timeout (300 s) is far away, so this one came from the responder
    await h.waitFor(() => /mcp-demo: cancelled .*"requestId".*the client went away/.test(stack.logs('broker')),
                    { timeoutMs: 10000, what: 'notifications/cancelled to reach the demo server' });
    assert.match(stack.logs('broker'), /abandoned by the responder: cancelled/);
  });

  await t.test('CLIENT KILL of every connection: the next requests work at once', async () => {
    await stack.redis('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await stack.redis('CLIENT', 'KILL', 'TYPE', 'normal');
    // no retry loop here: each thread's first request after the reset must
    // succeed (4 threads; a few rounds reach all of them)
    for (let i = 0; i < 8; i++) {
      const r = await chat(stack, 'add');
      assert.equal(r.choices[0].message.content, '5', `tool call ${i}`);
    }
    const put = await admin(stack, 'PUT', '/admin/assistants/after-kill', { backend: 'fake', model: 'm3' });
    assert.equal(put.status, 201, put.text);
    assert.equal((await chat(stack, 'hello')).choices[0].message.content, 'hi');
  });

  await t.test('Redis restarted empty: the registry is written back once', async () => {
    const before = reseeds(stack).length;
    await stack.killRedis();
    await stack.startRedis();
    await assertHealed(stack, 'restart');
    assert.equal(reseeds(stack).length - before, 1, reseeds(stack).join('\n'));
    // what the config does not name is gone with the old Redis (no persistence here)
    assert.ok(!(await modelIds(stack)).includes('after-kill'));
    assert.ok((await modelIds(stack)).includes('helper'));
  });

  await t.test('Redis SIGKILLed, then started again', async () => {
    // a few rounds: the broker's reconnect may meet the dying Redis (a
    // connection reset while connecting), which once hung it for good
    for (let i = 0; i < 4; i++) {
      await stopProc(stack.procs.redis, { signal: 'SIGKILL', timeoutMs: 5000 });
      await stack.startRedis();
      await h.waitFor(async () => (await stack.redis('PUBSUB', 'NUMSUB', `${stack.prefix}mcp:calls`))[1] > 0,
                      { timeoutMs: 15000, what: `the broker to subscribe again (round ${i})` });
    }
    await assertHealed(stack, 'sigkill');
  });

  await t.test('admin API on an empty registry (responder without -c): PUT creates', async () => {
    await stopProc(stack.procs.fcgi, { timeoutMs: 10000 });
    stack.spawn('fcgi', path.join(stack.bin, 'aiproxy-fcgi'),
                ['-s', `unix:${stack.fcgiSock}`, '-w', '1', '-t', '2']);
    await stack.waitHealthy();
    const keys = await stack.redis('KEYS', `${stack.prefix}reg:*`);
    await stack.redis('DEL', ...keys);
    // deleted behind the API's back (no change message): the worker's
    // watcher notices on its next tick (REGWATCH_TICK_MS), not at once
    let v1;
    await h.waitFor(async () => {
      v1 = await h.request(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-client' } });
      return v1.status === 503;
    }, { timeoutMs: 10000, intervalMs: 100, what: '/v1/models to see the registry gone' });
    h.assertOpenAIError(assert, v1, 503, { messageMatch: /no registry/ });
    const put = await admin(stack, 'PUT', '/admin/backends/fresh', { kind: 'openai', base_url: up.baseURL, api_key: 'k' });
    assert.equal(put.status, 201, put.text);
    const got = await admin(stack, 'GET', '/admin/backends/fresh');
    assert.equal(got.status, 200, got.text);
    assert.equal(await stack.redis('GET', `${stack.prefix}reg:version`), '1');
  });
});

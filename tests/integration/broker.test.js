'use strict';
// Issue 3: the mcp-broker with the demo MCP server over stdio, driven through
// the real tool loop (openai client → nginx → responder → Redis → broker →
// mcp-demo and back), plus its failure modes: a crashing server, a tool that
// never answers, a broker killed mid-call, no broker at all, and bad
// messages on the calls channel.
const test = require('node:test');
const assert = require('node:assert/strict');
const { performance } = require('node:perf_hooks');
const { startStack, fakeUpstream, completion, waitFor, SANITIZER_PATTERNS } = require('./lib');

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
  slow:
    command: \${MCP_DEMO}
    args: [--test-tools]
    timeout: 2
  ghost:
    command: /nonexistent/mcp-server-binary
assistants:
  - name: helper
    backend: fake
    model: up-model
    mcp_servers: [demo]
  - name: slowpoke
    backend: fake
    model: up-model
    mcp_servers: [slow]
  - name: haunted
    backend: fake
    model: up-model
    mcp_servers: [ghost]
proxy_api_keys: [sk-test-client]
`;

// The upstream asks for `calls` in one turn, then answers with the text of
// the tool messages it was given (so the test sees what the loop fed back).
function askForTools(up, calls) {
  up.enqueue({ json: completion({ tool_calls: calls.map((c, i) =>
    ({ id: `call_${i}`, name: c.name, arguments: c.args })) }) });
}

function scriptToolTurn(up, calls) {
  askForTools(up, calls);
  up.enqueue((rec) => {
    const tools = rec.body.messages.filter((m) => m.role === 'tool');
    return { json: completion({ content: tools.map((m) => m.content).join(' | ') }) };
  });
}

async function ask(stack, model = 'helper') {
  const client = stack.openai();
  return client.chat.completions.create({ model, messages: [{ role: 'user', content: 'go' }] });
}

test('broker over stdio with the demo server', async (t) => {
  const up = await fakeUpstream();
  const stack = await startStack({ config: CONFIG, upstream: up });
  t.after(async () => { await stack.stop(); await up.close(); });

  await t.test('catalog is written and add(2,3) comes back as 5', async () => {
    scriptToolTurn(up, [{ name: 'demo__add', args: { a: 2, b: 3 } }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, '5');
    assert.equal(r.choices[0].finish_reason, 'stop');
    const cat = JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo'));
    assert.equal(cat.status, 'ready');
    const names = cat.tools.map((x) => x.name).sort();
    // the demo paginates tools/list two a page: all nine arrived
    assert.deepEqual(names, ['add', 'ask', 'crash', 'echo', 'hang', 'notify', 'progress', 'sleep', 'uppercase']);
    assert.equal(typeof cat.updated, 'number');
    const offered = up.requests.at(-2).body.tools.map((x) => x.function.name);
    assert.ok(offered.includes('demo__uppercase'), offered.join(','));
  });

  // Concurrency, told apart from a serial run by what a serial run cannot do:
  // finish two 1 s sleeps in less than their 2 s sum (a wide margin for a
  // loaded machine). The floor allows for the two clocks' granularity.
  await t.test('two sleep(1000) calls of one turn run concurrently', async () => {
    const before = up.requests.length;
    scriptToolTurn(up, [{ name: 'demo__sleep', args: { ms: 1000 } }, { name: 'demo__sleep', args: { ms: 1000 } }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, 'slept 1000 ms | slept 1000 ms');
    const first = up.requests[before], second = up.requests[before + 1];
    const toolTime = second.at - first.finishedAt;
    assert.ok(toolTime >= 990, `tools took ${toolTime} ms, less than one sleep`);
    assert.ok(toolTime < 2 * 1000, `tools took ${toolTime} ms: not run concurrently (sum is 2000 ms)`);
  });

  await t.test('uppercase, unknown tool and bad arguments reach the model as text', async () => {
    scriptToolTurn(up, [{ name: 'demo__uppercase', args: { text: 'abc' } },
                        { name: 'demo__add', args: { a: 'x' } }]);
    const r = await ask(stack);
    const [upper, bad] = r.choices[0].message.content.split(' | ');
    assert.equal(upper, 'ABC');
    assert.match(bad, /^\[tool error\] add needs numbers/);
  });

  await t.test('a server that crashes: tool error at once, restarted later', async () => {
    scriptToolTurn(up, [{ name: 'demo__crash', args: {} }]);
    const t0 = performance.now();
    const r = await ask(stack);
    assert.match(r.choices[0].message.content, /^\[tool error\] .*demo.*(exited with status 3|died)/);
    assert.ok(performance.now() - t0 < 5000);
    await waitFor(() => /mcp server 'demo': ready/.test(stack.logs('broker').split('died:').at(-1)),
                  { timeoutMs: 10000, what: 'the demo server to be restarted' });
    // the responders read the catalog in Redis, written just after that log
    // line: wait for what they see, not for what the broker printed
    await waitFor(async () => JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo') || '{}').status === 'ready',
                  { timeoutMs: 10000, what: 'the demo catalog to say ready again' });
    scriptToolTurn(up, [{ name: 'demo__echo', args: { text: 'back again' } }]);
    const r2 = await ask(stack);
    assert.equal(r2.choices[0].message.content, 'back again');
  });

  await t.test('list_changed makes the broker list the tools again', async () => {
    const catBefore = JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo')).updated;
    scriptToolTurn(up, [{ name: 'demo__notify', args: {} }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, 'notified');
    await waitFor(async () => JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo')).updated > catBefore,
                  { timeoutMs: 5000, what: 'the catalog to be rewritten' });
  });

  await t.test('server requests are answered at once: ping, roots/list, sampling (refused: no messages), elicitation (declined)', async () => {
    scriptToolTurn(up, [{ name: 'demo__ask', args: { method: 'ping' } },
                        { name: 'demo__ask', args: { method: 'roots/list' } },
                        { name: 'demo__ask', args: { method: 'sampling/createMessage' } },
                        { name: 'demo__ask', args: { method: 'elicitation/create' } }]);
    const r = await ask(stack);
    const text = r.choices[0].message.content;
    assert.ok(!text.includes("[tool error]"), text);
    const [ping, roots, sampling, elicit] = text.split(' | ').map((x) => JSON.parse(x));
    assert.deepEqual(ping, { result: {} });
    assert.deepEqual(roots, { result: { roots: [] } });
    // handed to the assistant, whose backend is not asked: the params have no messages
    assert.equal(sampling.error.code, -32603, JSON.stringify(sampling));
    assert.match(sampling.error.message, /sampling/, JSON.stringify(sampling));
    assert.deepEqual(elicit, { result: { action: 'decline' } });
  });

  await t.test('a tool that never answers: timed out, and the server is told', async () => {
    scriptToolTurn(up, [{ name: 'slow__hang', args: {} }]);
    const r = await ask(stack, 'slowpoke');
    assert.match(r.choices[0].message.content, /^\[tool error\] .*timed out/);
    await waitFor(() => /mcp-demo: cancelled .*"requestId"/.test(stack.logs('broker')),
                  { timeoutMs: 5000, what: 'notifications/cancelled to reach the server' });
  });

  await t.test('a server that cannot start: 502 naming it', async () => {
    const r = await ask(stack, 'haunted').then(() => null, (e) => e);
    assert.ok(r, 'expected an error');
    assert.equal(r.status, 502);
    assert.match(r.message, /ghost/);
    assert.match(r.message, /nonexistent|no such file/i);
  });

  await t.test('malformed messages on the calls channel are ignored, the broker lives', async () => {
    for (const m of ['nope', '{}', '{"v":1,"op":"call","id":"x"}', '[1,2]']) {
      const n = await stack.redis('PUBLISH', 'aiproxy:mcp:calls', m);
      assert.equal(n, 1);
    }
    scriptToolTurn(up, [{ name: 'demo__add', args: { a: 40, b: 2 } }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, '42');
    assert.match(stack.logs('broker'), /ignored a malformed request/);
  });

  await t.test('the owner lease and liveness key are in Redis', async () => {
    const owner = await stack.redis('GET', 'aiproxy:mcp:owner:demo');
    assert.match(owner, /^[0-9a-f]{32}$/);
    assert.equal(await stack.redis('EXISTS', `aiproxy:broker:${owner}`), 1);
  });

  await t.test('SIGTERM: children reaped, lease and liveness released, exit 0', async () => {
    const owner = await stack.redis('GET', 'aiproxy:mcp:owner:demo');
    const info = await stack.killBroker({ signal: 'SIGTERM' });
    assert.equal(stack.procs.broker.exitInfo && stack.procs.broker.exitInfo.code, 0,
                 JSON.stringify(stack.procs.broker.exitInfo || info));
    assert.equal(await stack.redis('EXISTS', 'aiproxy:mcp:owner:demo'), 0);
    assert.equal(await stack.redis('EXISTS', `aiproxy:broker:${owner}`), 0);
    assert.match(stack.logs('broker'), /stdin closed, exiting/);
  });

  await t.test('no broker: fails fast with "mcp-broker is not running"', async () => {
    // the catalog is still in Redis, so the model is asked; the call then fails
    askForTools(up, [{ name: 'demo__add', args: { a: 1, b: 1 } }]);
    const t0 = performance.now();
    const e = await ask(stack).then(() => null, (x) => x);
    const took = performance.now() - t0;
    assert.ok(e, 'expected an error');
    assert.equal(e.status, 503);
    assert.match(e.message, /mcp-broker is not running/);
    // the call waits up to AIPROXY_BROKER_WAIT_MS (2 s) for a broker to listen
    assert.ok(took < 2000 + 1000, `took ${took} ms`);
    assert.equal(up.pending(), 0);
  });

  await t.test('broker back: works again without touching the responders', async () => {
    stack.startBroker();
    await stack.waitBroker();
    scriptToolTurn(up, [{ name: 'demo__add', args: { a: 2, b: 2 } }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, '4');
  });

  await t.test('broker killed mid-call: the request ends with an error, no hang', async () => {
    askForTools(up, [{ name: 'demo__sleep', args: { ms: 20000 } }]);
    const asked = up.requests.length;
    const t0 = performance.now();
    const pending = ask(stack).then(() => null, (x) => x);
    await waitFor(() => up.requests.length > asked && up.requests.at(-1).finishedAt,
                  { timeoutMs: 5000, what: 'the model to ask for the tool' });
    await waitFor(async () => (await stack.redis('EXISTS', 'aiproxy:mcp:owner:demo')) === 1,
                  { timeoutMs: 5000, what: 'the broker to own demo' });
    await stack.killBroker({ signal: 'SIGKILL' });
    const e = await pending;
    const took = performance.now() - t0;
    assert.ok(took < 10000, `took ${took} ms (the tool would sleep 20 s)`);
    assert.ok(e, 'expected an error');
    assert.equal(e.status, 503);
    assert.match(e.message, /mcp-broker is not running/);
    stack.startBroker(); // stop() expects one to end cleanly
    await stack.waitBroker();
  });
});

test('two brokers on one Redis: one owner per server, takeover when it dies', async (t) => {
  const path = require('node:path');
  const { stopProc } = require('./lib/procs');
  const up = await fakeUpstream();
  const stack = await startStack({ config: CONFIG, upstream: up });
  const second = stack.spawn('broker2', path.join(stack.bin, 'mcp-broker'), []);
  t.after(async () => {
    await stopProc(second);
    const log2 = require('node:fs').readFileSync(path.join(stack.dir, 'broker2.log'), 'utf8');
    await stack.stop();
    await up.close();
    for (const pat of SANITIZER_PATTERNS) assert.ok(!log2.includes(pat), `broker2.log: ${pat}\n${log2}`);
  });
  await waitFor(async () => (await stack.redis('KEYS', 'aiproxy:broker:*')).length === 2,
                { timeoutMs: 10000, what: 'both brokers to announce themselves' });

  const fs = require('node:fs');
  const logOf = (name) => fs.readFileSync(path.join(stack.dir, `${name}.log`), 'utf8');
  const idOf = (name) => (logOf(name).match(/broker ([0-9a-f]{32}) listening/) || [])[1];
  const starts = () => ['broker', 'broker2'].map((n) => (logOf(n).match(/mcp server 'demo': started/g) || []).length);

  for (let i = 0; i < 5; i++) {
    scriptToolTurn(up, [{ name: 'demo__add', args: { a: i, b: 10 } }, { name: 'demo__echo', args: { text: `e${i}` } }]);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, `${i + 10} | e${i}`);
  }
  const [a, b] = starts();
  assert.equal(a + b, 1, `demo started ${a} + ${b} times: both brokers ran it`);

  const owner = await stack.redis('GET', 'aiproxy:mcp:owner:demo');
  const ownerName = idOf('broker') === owner ? 'broker' : 'broker2';
  assert.equal(idOf(ownerName), owner);
  if (ownerName === 'broker') await stack.killBroker({ signal: 'SIGKILL' });
  else await stopProc(second, { signal: 'SIGKILL' });
  // the survivor takes over once the dead owner's liveness key has expired
  await waitFor(async () => (await stack.redis('EXISTS', `aiproxy:broker:${owner}`)) === 0,
                { timeoutMs: 10000, what: 'the dead owner\'s liveness key to expire' });
  scriptToolTurn(up, [{ name: 'demo__add', args: { a: 20, b: 22 } }]);
  const r = await ask(stack);
  assert.equal(r.choices[0].message.content, '42');
  const now = await stack.redis('GET', 'aiproxy:mcp:owner:demo');
  assert.notEqual(now, owner);
  if (ownerName === 'broker') { // stop() expects its broker to end cleanly
    stack.startBroker();
    await stack.waitBroker();
  }
});

test('registry changes: a changed server restarts with its new settings', async (t) => {
  const path = require('node:path');
  const { request } = require('./lib');
  const up = await fakeUpstream();
  // the admin API may set a stdio command only from the operator's list (issue 11)
  const stack = await startStack({ config: CONFIG, upstream: up, env: {
    ADMIN_API_KEY: 'adm-key-1', AIPROXY_MCP_COMMANDS: path.join(require('./lib').binDir(), 'mcp-demo') } });
  t.after(async () => { await stack.stop(); await up.close(); });

  scriptToolTurn(up, [{ name: 'demo__sleep', args: { ms: 1 } }]);
  assert.equal((await ask(stack)).choices[0].message.content, 'slept 1 ms');
  const before = JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo'));
  assert.ok(before.tools.some((x) => x.name === 'sleep'));

  const r = await request(`${stack.url}/admin/mcp/demo`, {
    method: 'PUT', headers: { authorization: 'Bearer adm-key-1' },
    body: { transport: 'stdio', command: path.join(stack.bin, 'mcp-demo'), args: [] },
  });
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => {
    const cat = JSON.parse(await stack.redis('GET', 'aiproxy:mcp:catalog:demo'));
    return cat.updated > before.updated && !cat.tools.some((x) => x.name === 'sleep');
  }, { timeoutMs: 10000, what: 'the catalog of the restarted server (without test tools)' });
  const log = stack.logs('broker');
  assert.match(log, /settings changed in the registry/);
  assert.match(log, /mcp-demo: stdin closed, exiting/); // the old child ended cleanly
  assert.equal((log.match(/mcp server 'demo': started/g) || []).length, 2);
  scriptToolTurn(up, [{ name: 'demo__add', args: { a: 1, b: 2 } }]);
  assert.equal((await ask(stack)).choices[0].message.content, '3');
});

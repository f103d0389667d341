'use strict';
// Issue 12, item 6: the broker's event loop never waits for Redis. The
// broker reaches Redis through a proxy that, once armed, holds back every
// answer on the connection that asks for the registry version. While the
// registry answer is held, a tool call on a session that is already running
// must complete. Ordering, not time: a loop that blocked on the read could
// serve the call only after the read ended, and with the answer held the
// read can end only by the broker giving up and asking again on a new
// connection (the old blocking read did, after its 2 s timeout), which goes
// through the proxy before the call can be answered. So when the call is
// answered, the version must have been asked for exactly once. Once
// released, the read completes and a server not seen before is served.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { startStack, fakeUpstream, completion, waitFor } = require('./lib');
const { startProc } = require('./lib/procs');

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo: {command: \${MCP_DEMO}}
  other: {command: \${MCP_DEMO}}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
  - {name: helper2, backend: fake, model: m, mcp_servers: [other]}
proxy_api_keys: [sk-test-client]
`;

// A unix-socket proxy to Redis. After arm(), the first connection that sends
// a command naming `marker` gets Redis's answers held back until release();
// `hits` counts every such command (on any connection) since arm().
function redisProxy(sockPath, target, marker) {
  const conns = new Set();
  const p = { armed: false, hits: 0, released: false, heldConn: null };
  const server = net.createServer((client) => {
    const up = net.createConnection(target);
    const c = { holding: false, held: [], client };
    conns.add(c);
    client.on('data', (d) => {
      if (p.armed && d.includes(marker)) {
        p.hits++;                      // every read of the version from now on
        if (!p.heldConn) { c.holding = true; p.heldConn = c; }
      }
      up.write(d);
    });
    up.on('data', (d) => { if (c.holding) c.held.push(d); else client.write(d); });
    const end = () => { conns.delete(c); client.destroy(); up.destroy(); };
    client.on('close', end); up.on('close', end);
    client.on('error', end); up.on('error', end);
  });
  p.arm = () => { p.armed = true; };
  p.release = () => {
    p.released = true;
    p.armed = false;
    for (const c of conns) {
      c.holding = false;
      for (const d of c.held) c.client.write(d);
      c.held = [];
    }
  };
  p.listen = () => new Promise((resolve) => server.listen(sockPath, resolve));
  p.close = () => new Promise((resolve) => { for (const c of conns) c.client.destroy(); server.close(resolve); });
  return p;
}

function toolTurn(up, name, args) {
  up.enqueue({ json: completion({ tool_calls: [{ id: 'call_0', name, arguments: args }] }) });
  up.enqueue((rec) => ({ json: completion({
    content: rec.body.messages.filter((m) => m.role === 'tool').map((m) => m.content).join(' | ') }) }));
}

test('a slow registry answer holds up no session: the loop is not blocked', async (t) => {
  const up = await fakeUpstream();
  const stack = await startStack({ config: CONFIG, upstream: up, broker: false });
  const proxySock = path.join(stack.dir, 'proxy.sock');
  const proxy = redisProxy(proxySock, stack.redisSock, 'reg:version');
  await proxy.listen();
  // the stack's broker, but on Redis through the proxy (stop() stops it)
  const h = startProc('broker', path.join(stack.bin, 'mcp-broker'), ['-c', stack.configPath], {
    env: stack.env({ REDIS_URL: `unix://${proxySock}` }), cwd: stack.dir,
    logPath: path.join(stack.dir, 'broker.log'),
  });
  stack.procs.broker = h;
  stack.history.push(h);
  t.after(async () => { proxy.release(); await stack.stop(); await proxy.close(); await up.close(); });
  await stack.waitBroker();
  const ask = (model) => stack.openai().chat.completions.create({
    model, messages: [{ role: 'user', content: 'go' }] });

  // a running session
  toolTurn(up, 'demo__add', { a: 2, b: 3 });
  assert.equal((await ask('helper')).choices[0].message.content, '5');

  // a registry change is announced; the broker's registry read is held
  proxy.arm();
  await stack.redis('PUBLISH', 'aiproxy:reg:changed', '{"version":1,"kind":"all","name":"","op":"test"}');
  await waitFor(() => proxy.hits === 1, { timeoutMs: 10000, what: 'the broker to read the registry' });

  // a tool call on the running session completes meanwhile ...
  toolTurn(up, 'demo__add', { a: 20, b: 22 });
  const r = await ask('helper');
  assert.equal(r.choices[0].message.content, '42');
  // ... while Redis's answer is still held, and the broker still waits for it
  assert.equal(proxy.released, false);
  assert.equal(proxy.hits, 1,
               'the broker gave up on the registry read and read again before it served the call: its loop was blocked');

  // released: the read completes; a server not seen before is looked up in
  // the registry and served
  proxy.release();
  toolTurn(up, 'other__add', { a: 1, b: 1 });
  assert.equal((await ask('helper2')).choices[0].message.content, '2');
  assert.doesNotMatch(stack.logs('broker'), /registry changed but cannot be read|registry: /);
});

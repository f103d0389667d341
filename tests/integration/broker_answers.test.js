'use strict';
// Issue 20, item 3: the broker PUBLISHes calls' answers on a connection of
// their own that sent CLIENT REPLY OFF (no ":1" to wake the broker for, per
// call). It is optional: killed, answers go on the command connection at
// once, and the next beat opens it again.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, fakeUpstream, completion, waitFor } = require('./lib');

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo: {command: \${MCP_DEMO}}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
proxy_api_keys: [sk-test-client]
`;

function toolTurn(up, name, args) {
  up.enqueue({ json: completion({ tool_calls: [{ id: 'call_0', name, arguments: args }] }) });
  up.enqueue((rec) => ({ json: completion({
    content: rec.body.messages.filter((m) => m.role === 'tool').map((m) => m.content).join(' | ') }) }));
}

// The ids of Redis clients named `name` (CLIENT LIST).
async function clientIds(stack, name) {
  const list = String(await stack.redis('CLIENT', 'LIST'));
  return list.split('\n').filter((l) => l.includes(` name=${name} `))
    .map((l) => /(?:^|\s)id=(\d+)/.exec(l)[1]);
}

test('answers go on their own REPLY OFF connection; killed, they go on and it comes back', async (t) => {
  const up = await fakeUpstream();
  const stack = await startStack({ config: CONFIG, upstream: up });
  t.after(async () => { await stack.stop(); await up.close(); });
  const ask = () => stack.openai().chat.completions.create({
    model: 'helper', messages: [{ role: 'user', content: 'go' }] });

  toolTurn(up, 'demo__add', { a: 2, b: 3 });
  assert.equal((await ask()).choices[0].message.content, '5');
  const ids = await clientIds(stack, 'mcp-broker-answers');
  assert.equal(ids.length, 1, 'one answer connection');

  // killed: the next answer takes the command connection
  await stack.redis('CLIENT', 'KILL', 'ID', ids[0]);
  await waitFor(async () => (await clientIds(stack, 'mcp-broker-answers')).every((id) => id !== ids[0]),
                { timeoutMs: 10000, what: 'Redis to close the answer connection' });
  toolTurn(up, 'demo__add', { a: 20, b: 22 });
  assert.equal((await ask()).choices[0].message.content, '42');

  // ... and a beat later there is a new one, which answers
  await waitFor(async () => (await clientIds(stack, 'mcp-broker-answers')).some((id) => id !== ids[0]),
                { timeoutMs: 10000, what: 'the broker to open a new answer connection' });
  toolTurn(up, 'demo__add', { a: 1, b: 1 });
  assert.equal((await ask()).choices[0].message.content, '2');
  assert.equal((await clientIds(stack, 'mcp-broker-answers')).length, 1);
  assert.doesNotMatch(stack.logs('broker'), /lost Redis|cannot reach Redis/);
});

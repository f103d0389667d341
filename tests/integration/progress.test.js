'use strict';
// Issue 13 item 2, "done when": MCP progress extends a tool call's deadline.
// Through nginx, a tool that reports progress every second for 30 s with a
// 10 s server timeout completes with its result; the same tool reporting
// nothing gives the model "[tool error] … timed out after 10 s" after about
// 10 s. And a third-party server's progress (server-everything's
// trigger-long-running-operation) is relayed by the broker on the call's
// reply channel in Redis, before its answer (docs/broker-protocol.md).
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');
const h = require('./lib');
const fs = require('node:fs');
const { NODE22, EVERYTHING, startEverything } = require('./lib/everything');
const { stopProc } = require('./lib/procs');

// The model: asks for demo__progress with the arguments named by the user's
// message, then repeats the tool's text as its answer.
const ARGS = {
  loud: { seconds: 30, every_ms: 1000 },
  silent: { seconds: 30, every_ms: 1000, silent: true },
};

test('progress keeps a 30 s tool alive past its 10 s timeout; silence times it out at 10 s', { timeout: 120000 }, async (t) => {
  const up = await h.fakeUpstream();
  const stack = await h.startStack({
    upstream: up,
    config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, args: [--test-tools], timeout: 10}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
`,
  });
  t.after(async () => { await stack.stop(); await up.close(); });
  up.handle((rec) => {
    const tool = rec.body.messages.find((m) => m.role === 'tool');
    if (tool) return { json: h.completion({ content: tool.content }) };
    const which = rec.body.messages.find((m) => m.role === 'user').content;
    return { json: h.completion({ tool_calls: [{ id: `call_${which}`, name: 'demo__progress', arguments: ARGS[which] }] }) };
  });
  const client = stack.openai({ timeout: 100000 });
  const ask = async (which) => {
    const t0 = performance.now();
    const r = await client.chat.completions.create({ model: 'helper', messages: [{ role: 'user', content: which }] });
    return { text: r.choices[0].message.content, ms: performance.now() - t0 };
  };
  // both at once: they share the broker and the demo server, as real calls do
  const [loud, silent] = await Promise.all([ask('loud'), ask('silent')]);

  assert.equal(loud.text, 'progressed 30000 ms with 30 progress reports', loud.text);
  assert.match(silent.text, /^\[tool error\] tool 'progress'.* timed out after 10 s/, silent.text);
  assert.ok(silent.ms >= 9000, `the silent call gave up after ${silent.ms} ms, before its 10 s timeout`);
  assert.ok(silent.ms < loud.ms, 'the silent call ended before the one that reported progress');
});

test('server-everything: its progress is relayed on the call\'s reply channel, before the answer (stdio, streamable HTTP)', { timeout: 120000 }, async (t) => {
  const dir = h.mkTmpDir('progress-everything');
  const shttp = await startEverything('streamableHttp', dir);
  const stack = await h.startStack({
    config: `
mcp_servers:
  ev: {transport: stdio, command: ${NODE22}, args: [${EVERYTHING}, stdio], timeout: 30}
  ev_http: {transport: streamable-http, url: "http://127.0.0.1:${shttp.port}/mcp", timeout: 30}
`,
  });
  const channel = `${stack.prefix}mcp:reply:progress-test`;
  const sub = await h.redisSubscribe(stack.redisSock, channel);
  t.after(async () => {
    sub.close();
    await stack.stop();
    await stopProc(shttp.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const server of ['ev', 'ev_http']) {
    await t.test(server, async () => {
      const id = crypto.randomBytes(16).toString('hex');
      const call = {
        v: 1, op: 'call', id, reply: channel, server, tool: 'trigger-long-running-operation',
        args: { duration: 2, steps: 4 }, deadline: Date.now() + 60000,
      };
      assert.equal(await stack.redis('PUBLISH', `${stack.prefix}mcp:calls`, JSON.stringify(call)), 1);
      const mine = () => sub.messages.map((m) => JSON.parse(m)).filter((m) => m.id === id);
      await h.waitFor(() => mine().some((m) => 'ok' in m),
                      { timeoutMs: 60000, what: `the answer from ${server} on the reply channel` });
      const msgs = mine();
      const answer = msgs.findIndex((m) => 'ok' in m);
      assert.equal(msgs[answer].ok, true, JSON.stringify(msgs[answer]));
      assert.match(msgs[answer].result.content[0].text, /Long running operation completed/);
      const reports = msgs.slice(0, answer);
      assert.ok(reports.length >= 2, `progress reports before the answer: ${JSON.stringify(reports)}`);
      for (const r of reports) {
        assert.equal(r.progress.total, 4);
        assert.ok(r.left_ms > 0 && r.left_ms <= 60000, JSON.stringify(r));
      }
      const steps = reports.map((r) => r.progress.progress);
      assert.deepEqual(steps, [...steps].sort((a, b) => a - b), `progress goes up: ${steps}`);
      assert.equal(msgs.length, answer + 1, 'nothing of the call after its answer');
    });
  }
});

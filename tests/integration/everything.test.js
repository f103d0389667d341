'use strict';
// Issue 3, "done when": a third-party MCP server through the whole gateway.
// The openai client asks an assistant wired to @modelcontextprotocol/
// server-everything; the scripted upstream asks for its get-sum tool; the
// broker runs it over stdio, legacy SSE and streamable HTTP; the upstream is
// handed the sum and answers with it.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');
const { NODE22, EVERYTHING, startEverything } = require('./lib/everything');
const fs = require('node:fs');
const { stopProc } = require('./lib/procs');

test('server-everything get-sum through the real loop, over all three transports', { timeout: 180000 }, async (t) => {
  const dir = h.mkTmpDir('everything');
  const sse = await startEverything('sse', dir);
  const shttp = await startEverything('streamableHttp', dir);
  const up = await h.fakeUpstream();
  const stack = await h.startStack({
    upstream: up,
    config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  ev_stdio: {transport: stdio, command: ${NODE22}, args: [${EVERYTHING}, stdio], timeout: 30}
  ev_sse: {transport: sse, url: "http://127.0.0.1:${sse.port}/sse", timeout: 30}
  ev_http: {transport: streamable-http, url: "http://127.0.0.1:${shttp.port}/mcp", timeout: 30}
assistants:
  - {name: stdio-ev, backend: fake, model: m, mcp_servers: [ev_stdio]}
  - {name: sse-ev, backend: fake, model: m, mcp_servers: [ev_sse]}
  - {name: http-ev, backend: fake, model: m, mcp_servers: [ev_http]}
`,
  });
  t.after(async () => {
    await stack.stop();
    await up.close();
    await stopProc(sse.proc);
    await stopProc(shttp.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [assistant, server] of [['stdio-ev', 'ev_stdio'], ['sse-ev', 'ev_sse'], ['http-ev', 'ev_http']]) {
    await t.test(`${server}: "add 2 and 3" is answered with the tool's 5`, async () => {
      const tool = `${server}__get-sum`;
      up.enqueue((rec) => {
        const offered = (rec.body.tools || []).map((x) => x.function.name);
        assert.ok(offered.includes(tool), `tools offered: ${offered}`);
        return { json: h.completion({ tool_calls: [{ id: 'call_1', name: tool, arguments: { a: 2, b: 3 } }] }) };
      });
      up.enqueue((rec) => {
        const result = rec.body.messages.find((m) => m.role === 'tool' && m.tool_call_id === 'call_1');
        assert.ok(result, 'no tool result was fed back');
        return { json: h.completion({ content: `The tool said: ${result.content}` }) };
      });
      const r = await stack.openai().chat.completions.create({
        model: assistant, messages: [{ role: 'user', content: 'add 2 and 3' }],
      });
      const text = r.choices[0].message.content;
      assert.match(text, /^The tool said: .*\b5\b/, text);
      assert.doesNotMatch(text, /tool error/, text);
      assert.equal(r.choices[0].finish_reason, 'stop');
    });
  }
});

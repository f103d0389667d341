'use strict';
// Issue 19 item 5: OpenTelemetry traces of the tool loop. Through nginx with
// the real broker and mcp-demo, a two-round tool loop under a client's
// traceparent reaches a test OTLP/HTTP receiver as one trace: the request's
// span, a "chat" span per upstream turn, an "execute_tool" span per call and
// the broker's "tools/call" span under each, with the GenAI attributes; the
// upstream and the MCP server get the trace context. Also: a collector that
// is down costs nothing, and tracing off sends no trace context anywhere.
// docs/traces.md.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib');

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
    args: [--trace-tool]
assistants:
  - name: tooly
    backend: fake
    model: up-model
    mcp_servers: [demo]
`;

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const USER = [{ role: 'user', content: 'what is your trace context? then add 2 and 3' }];
const USAGE = [
  { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  { prompt_tokens: 23, completion_tokens: 4, total_tokens: 27 },
  { prompt_tokens: 31, completion_tokens: 5, total_tokens: 36 },
];

// A test OTLP/HTTP receiver: every span POSTed to /v1/traces, flattened, with
// its resource's service.name.
async function otlpReceiver() {
  const spans = [];
  const posts = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      posts.push({ path: req.url, headers: req.headers });
      try {
        const doc = JSON.parse(body);
        for (const rs of doc.resourceSpans || []) {
          const svc = (rs.resource?.attributes || []).find((a) => a.key === 'service.name');
          for (const ss of rs.scopeSpans || [])
            for (const s of ss.spans || [])
              spans.push({ ...s, service: svc?.value?.stringValue, attrs: attrsOf(s) });
        }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{}');
      } catch (e) {
        res.writeHead(400);
        res.end();
      }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    spans,
    posts,
    close: () => new Promise((r) => srv.close(r)),
  };
}

// {key: value} of a span's attributes, int64 strings as numbers.
function attrsOf(s) {
  const o = {};
  for (const a of s.attributes || []) {
    const v = a.value || {};
    o[a.key] = 'intValue' in v ? Number(v.intValue) : 'stringValue' in v ? v.stringValue
      : 'boolValue' in v ? v.boolValue : v.doubleValue;
  }
  return o;
}

// The upstream's side: round 0 asks for tracectx (it answers the call's
// _meta.traceparent), round 1 for add, then the model answers.
function script() {
  up.enqueue({ json: h.completion({ usage: USAGE[0], tool_calls: [
    { id: 'call_tc', name: 'demo__tracectx', arguments: {} }] }) });
  up.enqueue({ json: h.completion({ usage: USAGE[1], tool_calls: [
    { id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 3 } }] }) });
  up.enqueue({ json: h.completion({ usage: USAGE[2], content: 'It is 5.' }) });
}

const inTrace = (spans, traceId) => spans.filter((s) => s.traceId === traceId);

let up, otlp, stack;

before(async () => {
  up = await h.fakeUpstream();
  otlp = await otlpReceiver();
  stack = await h.startStack({
    config: CONFIG, upstream: up,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
           OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-secret' },
  });
});
after(async () => { await stack?.stop(); await up?.close(); await otlp?.close(); });

describe('traces on', () => {
  test('a two-round tool loop is one trace: request, 3 chat, 2 execute_tool and 2 broker tools/call spans, linked', async () => {
    const first = up.requests.length;
    script();
    const res = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any',
                 traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=opaque' },
      body: JSON.stringify({ model: 'tooly', messages: USER }),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, 'It is 5.');

    const all = await h.waitFor(() => {
      const t = inTrace(otlp.spans, TRACE);
      return t.length >= 8 && t;
    }, { what: '8 spans of the client trace at the OTLP receiver', timeoutMs: 20000 });
    assert.equal(all.length, 8, JSON.stringify(all.map((s) => s.name)));
    // the collector's header went with every POST
    assert.ok(otlp.posts.every((p) => p.path === '/v1/traces' &&
                                  p.headers.authorization === 'Bearer collector-secret'));

    const reqSpan = all.filter((s) => s.kind === 2);
    assert.equal(reqSpan.length, 1);
    const root = reqSpan[0];
    assert.equal(root.name, 'POST /v1/chat/completions');
    assert.equal(root.parentSpanId, CLIENT_SPAN);
    assert.equal(root.service, 'aiproxy-fcgi');
    assert.equal(root.attrs['http.request.method'], 'POST');
    assert.equal(root.attrs['http.response.status_code'], 200);
    assert.equal(root.attrs['gen_ai.agent.name'], 'tooly');

    const chats = all.filter((s) => s.name === 'chat up-model')
      .sort((a, b) => a.attrs['aiproxy.turn'] - b.attrs['aiproxy.turn']);
    assert.equal(chats.length, 3);
    chats.forEach((c, i) => {
      assert.equal(c.kind, 3);
      assert.equal(c.parentSpanId, root.spanId);
      assert.equal(c.attrs['gen_ai.operation.name'], 'chat');
      assert.equal(c.attrs['gen_ai.provider.name'], 'openai');
      assert.equal(c.attrs['gen_ai.request.model'], 'up-model');
      assert.equal(c.attrs['gen_ai.usage.input_tokens'], USAGE[i].prompt_tokens);
      assert.equal(c.attrs['gen_ai.usage.output_tokens'], USAGE[i].completion_tokens);
      assert.equal(c.attrs['server.address'], '127.0.0.1');
      assert.equal(typeof c.attrs['server.port'], 'number');
      // the upstream request of turn i carried that turn's span
      const rec = up.requests[first + i];
      assert.equal(rec.headers.traceparent, `00-${TRACE}-${c.spanId}-01`);
      assert.equal(rec.headers.tracestate, 'vendor=opaque');
      // nothing secret in a span
      assert.ok(!JSON.stringify(c).includes('sk-upstream-secret'));
    });
    assert.equal(chats[2].attrs['gen_ai.response.finish_reasons'], 'stop');

    const tools = all.filter((s) => s.name.startsWith('execute_tool '));
    assert.deepEqual(tools.map((s) => s.name).sort(), ['execute_tool add', 'execute_tool tracectx']);
    for (const t of tools) {
      assert.equal(t.kind, 1);
      assert.equal(t.parentSpanId, root.spanId);
      assert.equal(t.attrs['gen_ai.operation.name'], 'execute_tool');
      assert.equal(t.attrs['mcp.method.name'], 'tools/call');
      assert.equal(t.attrs['aiproxy.mcp.server'], 'demo');
      assert.equal(t.attrs['gen_ai.tool.call.id'], t.name.endsWith('add') ? 'call_add' : 'call_tc');
    }

    const broker = all.filter((s) => s.service === 'mcp-broker');
    assert.deepEqual(broker.map((s) => s.name).sort(), ['tools/call add', 'tools/call tracectx']);
    for (const b of broker) {
      const tool = b.name.split(' ')[1];
      assert.equal(b.kind, 3);
      assert.equal(b.attrs['mcp.method.name'], 'tools/call');
      assert.equal(b.attrs['gen_ai.tool.name'], tool);
      assert.match(b.attrs['jsonrpc.request.id'], /^[0-9]+$/);
      assert.equal(b.parentSpanId, tools.find((t) => t.name === `execute_tool ${tool}`).spanId);
    }
    // the MCP server got the broker span's context in params._meta
    const tc = broker.find((s) => s.name === 'tools/call tracectx');
    const toolMsg = up.requests[first + 1].body.messages.find((m) => m.role === 'tool');
    assert.equal(toolMsg.content, `00-${TRACE}-${tc.spanId}-01`);
  });

  test('without a traceparent the request starts a trace of its own, which the upstream joins', async () => {
    const first = up.requests.length;
    up.enqueue({ json: h.completion({ content: 'hi' }) });
    const res = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any' },
      body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200, res.text);
    const tp = up.requests[first].headers.traceparent;
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tp || '');
    assert.ok(m, `upstream traceparent ${tp}`);
    const spans = await h.waitFor(() => {
      const t = inTrace(otlp.spans, m[1]);
      return t.length >= 2 && t;
    }, { what: 'the new trace at the receiver', timeoutMs: 20000 });
    const root = spans.find((s) => s.kind === 2);
    assert.equal(root.parentSpanId ?? '', '');
    assert.equal(spans.find((s) => s.kind === 3).spanId, m[2]);
  });

  test('a client trace that is not sampled is passed on (not sampled) and records nothing', async () => {
    const unsampled = 'aaaabbbbccccddddeeeeffff00001111';
    const first = up.requests.length;
    up.enqueue({ json: h.completion({ content: 'hi' }) });
    let res = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any',
                 traceparent: `00-${unsampled}-${CLIENT_SPAN}-00` },
      body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200, res.text);
    assert.match(up.requests[first].headers.traceparent, new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`));
    // a sampled request after it: once its spans are in, the first one's
    // would be too (one worker exports in order)
    const marker = '0123456789abcdef0123456789abcdef';
    up.enqueue({ json: h.completion({ content: 'hi' }) });
    res = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any',
                 traceparent: `00-${marker}-${CLIENT_SPAN}-01` },
      body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200, res.text);
    await h.waitFor(() => inTrace(otlp.spans, marker).length >= 2, { what: 'the marker trace', timeoutMs: 20000 });
    assert.deepEqual(inTrace(otlp.spans, unsampled), []);
  });

  test('a streamed completion gets the same spans, with gen_ai.request.stream and the streamed usage', async () => {
    const trace = '11112222333344445555666677778888';
    const first = up.requests.length;
    up.enqueue({ sse: h.textChunks(['It is ', '5.'],
                                   { usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }) });
    const r = await h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'tooly', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { traceparent: `00-${trace}-${CLIENT_SPAN}-01` } });
    assert.equal(r.status, 200);
    assert.equal(h.contentOf(r), 'It is 5.');
    const spans = await h.waitFor(() => {
      const t = inTrace(otlp.spans, trace);
      return t.length >= 2 && t;
    }, { what: 'the streamed request\'s spans', timeoutMs: 20000 });
    const chat = spans.find((x) => x.kind === 3);
    const root = spans.find((x) => x.kind === 2);
    assert.equal(chat.parentSpanId, root.spanId);
    assert.equal(chat.attrs['gen_ai.request.stream'], true);
    assert.equal(chat.attrs['gen_ai.usage.input_tokens'], 3);
    assert.equal(chat.attrs['gen_ai.usage.output_tokens'], 2);
    assert.equal(up.requests[first].headers.traceparent, `00-${trace}-${chat.spanId}-01`);
  });

  test('routes without the agent get their request span too; an ill-formed traceparent starts a new trace', async () => {
    const res = await h.request(`${stack.baseURL}/models`, {
      headers: { Authorization: 'Bearer sk-any', traceparent: `00-${TRACE.toUpperCase()}-${CLIENT_SPAN}-01` },
    });
    assert.equal(res.status, 200);
    const s = await h.waitFor(() => otlp.spans.find((x) => x.name === 'GET /v1/models'),
                              { what: 'the GET /v1/models span', timeoutMs: 20000 });
    assert.notEqual(s.traceId, TRACE.toUpperCase());
    assert.notEqual(s.traceId, TRACE);
    assert.equal(s.parentSpanId ?? '', '');
    assert.equal(s.attrs['http.response.status_code'], 200);
  });
});

describe('collector down', () => {
  test('requests succeed and the stack stops at once', async () => {
    const up2 = await h.fakeUpstream();
    const port = await h.closedPort();
    const s2 = await h.startStack({
      config: CONFIG, upstream: up2,
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces` },
    });
    try {
      for (let i = 0; i < 3; i++) {
        up2.enqueue({ json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__add', arguments: { a: 1, b: 2 } }] }) });
        up2.enqueue({ json: h.completion({ content: 'three' }) });
        const res = await h.request(`${s2.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any' },
          body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'add' }] }),
        });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.choices[0].message.content, 'three');
      }
      assert.match(s2.logs('fcgi'), /traces: on/);
      assert.match(s2.logs('broker'), /traces: on/);
    } finally {
      await s2.stop();   // throws when a process needed SIGKILL
      await up2.close();
    }
  });
});

describe('collector hangs', () => {
  test('a POST the collector never answers does not hold up the stop', async () => {
    const up4 = await h.fakeUpstream();
    const held = [];
    const srv = http.createServer((req) => { held.push(req); });   // never answers
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const s4 = await h.startStack({
      config: CONFIG, upstream: up4,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${srv.address().port}` },
    });
    try {
      up4.enqueue({ json: h.completion({ content: 'hi' }) });
      const res = await h.request(`${s4.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any' },
        body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 200, res.text);
      // the responder's exporter is stuck in its POST
      await h.waitFor(() => held.length > 0, { what: 'a POST at the hanging collector', timeoutMs: 20000 });
    } finally {
      await s4.stop();   // throws when a process needed SIGKILL (10 s)
      await up4.close();
      for (const r of held) r.socket.destroy();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('traces off', () => {
  test('no trace context goes to the upstream or the MCP server, the client\'s neither', async () => {
    const up3 = await h.fakeUpstream();
    const s3 = await h.startStack({ config: CONFIG, upstream: up3 });
    try {
      up3.enqueue({ json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__tracectx', arguments: {} }] }) });
      up3.enqueue({ json: h.completion({ content: 'done' }) });
      const res = await h.request(`${s3.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-any',
                   traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=opaque' },
        body: JSON.stringify({ model: 'tooly', messages: [{ role: 'user', content: 'tc' }] }),
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(up3.requests.length, 2);
      for (const r of up3.requests) {
        assert.equal(r.headers.traceparent, undefined);
        assert.equal(r.headers.tracestate, undefined);
      }
      const toolMsg = up3.requests[1].body.messages.find((m) => m.role === 'tool');
      assert.equal(toolMsg.content, 'none');
    } finally {
      await s3.stop();
      await up3.close();
    }
  });
});

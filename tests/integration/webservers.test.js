'use strict';
// Issue 8: the same representative suite behind every web server aiproxy
// ships a config for (conf/nginx, conf/apache, conf/lighttpd), each started
// from its template by startStack({webserver}): models and a completion
// through the openai client with a Bearer key, a tool loop through the broker
// and mcp-demo, streaming that reaches the client chunk by chunk, OpenAI-shaped
// 400/401/404/405/413, and a client hang-up that closes the upstream transfer.
// The CGI kinds (issue 14: Apache mod_cgid, lighttpd mod_cgi, and a shared
// host configured through .htaccess alone, CGI and mod_fcgid) run the same
// suite, one process per request. Then the responder pool under load: SIGKILL one worker, only its requests
// fail, a new worker appears and serves.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./lib');
const { stopProc } = require('./lib/procs');

function dechunk(s) {
  let out = '';
  for (let i = 0; i < s.length;) {
    const eol = s.indexOf('\r\n', i);
    const n = parseInt(s.slice(i, eol), 16);
    if (!(n > 0)) break;
    out += s.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
  return out;
}

// One raw HTTP/1.1 exchange (requests node's client would refuse to send):
// resolves {status, headers, body, json, raw} when the server closes or the
// answer (Content-Length) is complete.
function rawHttp(port, text, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    let raw = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      const s = raw.toString('latin1');
      const sep = s.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const lines = s.slice(0, sep).split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const isHead = text.startsWith('HEAD ');
      const len = headers['content-length'] !== undefined && !isHead ? Number(headers['content-length']) : null;
      let body = s.slice(sep + 4);
      if (len !== null && Buffer.byteLength(body, 'latin1') < len) return;
      if (len === null && !isHead && !sock.destroyed && !ended) return;
      if (/chunked/i.test(headers['transfer-encoding'] || '')) body = dechunk(body);
      done = true;
      clearTimeout(timer);
      sock.destroy();
      let json = null;
      try { json = JSON.parse(body); } catch (_) { /* not JSON */ }
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body, json, raw: s });
    };
    let ended = false;
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer in ${timeoutMs} ms: ${raw}`)); }, timeoutMs);
    sock.on('data', (d) => { raw = Buffer.concat([raw, d]); finish(); });
    sock.on('end', () => { ended = true; finish(); });
    sock.on('close', () => { ended = true; finish(); if (!done) { clearTimeout(timer); reject(new Error(`closed without an answer: ${raw}`)); } });
    sock.on('error', () => {});
  });
}

const KEY = 'sk-webserver-static-1';
const MAX_BODY = 4096;

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-upstream, timeout: 30}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: helper, backend: fake, model: up-model-1}
  - {name: tooly, backend: fake, model: up-model-2, mcp_servers: [demo]}
proxy_api_keys:
  - ${KEY}
`;

const USER = [{ role: 'user', content: 'hello' }];
const AUTH = { authorization: `Bearer ${KEY}` };

// The upstream asks for add(2,3) (found by name suffix among the tools it was
// offered), then answers with what the tool returned.
const toolScript = (streaming) => (rec) => {
  const add = (rec.body.tools || []).map((t) => t.function.name).find((n) => n.endsWith('add'));
  const results = rec.body.messages.filter((m) => m.role === 'tool');
  if (results.length === 0) {
    if (!add) return { status: 400, json: h.errorBody('no add tool offered') };
    const calls = [{ name: add, arguments: { a: 2, b: 3 } }];
    return streaming ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) };
  }
  const c = results[0].content;
  const answer = `sum=${/\b5\b/.test(typeof c === 'string' ? c : JSON.stringify(c)) ? 5 : '?'}`;
  return streaming ? { sse: h.textChunks(['sum=', answer.slice(4)]) } : { json: h.completion({ content: answer }) };
};

for (const webserver of h.WEBSERVERS) {
  describe(`behind ${webserver}`, () => {
    let up;
    let stack;
    let client;
    const url = () => `${stack.baseURL}/chat/completions`;
    const post = (body, headers = AUTH) => h.request(url(), { method: 'POST', headers, body });

    before(async () => {
      up = await h.fakeUpstream();
      stack = await h.startStack({ config: CONFIG, upstream: up, webserver, workers: 2, threads: 3,
                                   env: { AIPROXY_MAX_BODY: String(MAX_BODY) } });
      client = stack.openai({ apiKey: KEY });
    });
    after(async () => {
      if (stack) await stack.stop();
      if (up) await up.close();
    });

    test('the Bearer key reaches the responder: models listed with it, 401 without', async () => {
      const list = await client.models.list();
      assert.deepEqual(list.data.map((m) => m.id).sort(), ['helper', 'tooly']);
      const r = await h.request(`${stack.url}/v1/models`);
      h.assertOpenAIError(assert, r, 401, { type: 'authentication_error' });
      const bad = await h.request(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-wrong' } });
      h.assertOpenAIError(assert, bad, 401, { type: 'authentication_error' });
    });

    test('a completion through the openai client', async () => {
      up.enqueue({ json: h.completion({ content: `hello from behind ${webserver}` }) });
      const res = await client.chat.completions.create({ model: 'helper', messages: USER });
      assert.equal(res.choices[0].message.content, `hello from behind ${webserver}`);
      assert.equal(res.model, 'helper');
      assert.equal(up.requests.at(-1).body.model, 'up-model-1');
    });

    test('a tool loop through the broker and mcp-demo, plain and streamed', async () => {
      up.handle(toolScript(false));
      try {
        const res = await client.chat.completions.create({ model: 'tooly', messages: USER });
        assert.equal(res.choices[0].message.content, 'sum=5');
      } finally { up.handle(null); }
      up.handle(toolScript(true));
      try {
        const s = await h.sseRequest(url(), { model: 'tooly', messages: USER, stream: true },
          { headers: AUTH });
        assert.equal(s.status, 200, s.text);
        assert.ok(s.done, 'the stream ends with [DONE]');
        assert.equal(h.contentOf(s), 'sum=5');
      } finally { up.handle(null); }
    });

    test('each streamed chunk reaches the client before the upstream sends the next one', async () => {
      const parts = ['first', ' second', ' third', ' fourth'];
      up.enqueue({ sse: h.textChunks(parts), delayMs: 150 });
      const before = up.requests.length;
      const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true }, { headers: AUTH });
      assert.equal(s.status, 200, s.text);
      assert.match(s.headers['content-type'] || '', /text\/event-stream/);
      assert.ok(s.done);
      assert.equal(h.contentOf(s), parts.join(''));
      const rec = up.requests[before];
      // rec.sent[i]: when the upstream wrote event i (0 = role chunk); same clock.
      const first = s.events.find((e) => e.json && e.json.choices[0]?.delta?.content);
      assert.ok(first.at < rec.sent[2],
                `first content arrived ${(first.at - rec.sent[1]).toFixed(1)} ms after the upstream sent ` +
                `it, after the upstream had already sent the next one: ${webserver} buffers`);
      assert.ok(first.at < rec.finishedAt, 'content arrived before the upstream finished');
    });

    test('errors keep their OpenAI shape: 400, 404, 405, 413', async () => {
      let r = await post({ model: 'helper' });
      const e = h.assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
      assert.match(e.message, /messages/);
      r = await post({ model: 'no-such-assistant', messages: USER });
      h.assertOpenAIError(assert, r, 404, { type: 'invalid_request_error' });
      r = await h.request(`${stack.url}/v1/nothing-here`, { headers: AUTH });
      h.assertOpenAIError(assert, r, 404, { type: 'invalid_request_error' });
      r = await h.request(url(), { headers: AUTH });
      h.assertOpenAIError(assert, r, 405, { type: 'invalid_request_error' });
      r = await h.request(`${stack.url}/v1/models`, { method: 'DELETE', headers: AUTH });
      h.assertOpenAIError(assert, r, 405, { type: 'invalid_request_error' });
      const seen = up.requests.length;
      r = await post({ model: 'helper', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY * 5) }] });
      h.assertOpenAIError(assert, r, 413, { type: 'invalid_request_error' });
      assert.equal(up.requests.length, seen, 'no error reached the upstream');
      up.enqueue({ json: h.completion({ content: 'still serving' }) });
      const ok = await client.chat.completions.create({ model: 'helper', messages: USER });
      assert.equal(ok.choices[0].message.content, 'still serving');
    });

    test("the web server's own errors keep the OpenAI shape; HEAD /health is GET without a body", async () => {
      const port = Number(new URL(stack.url).port);
      // On a shared host (.htaccess only) a request Apache refuses before it
      // maps it to the account's directory gets the host's error page: only
      // the .htaccess's own ErrorDocuments are the account's (cgi.test.js).
      const hostOwned = webserver.startsWith('apache-htaccess');
      const shaped = (r, what) => {
        if (hostOwned) return;
        assert.match(r.headers['content-type'] || '', /application\/json/, `${what}: ${r.raw.slice(0, 300)}`);
        h.assertOpenAIError(assert, { status: r.status, json: r.json, text: r.body }, r.status, {});
      };
      let r = await rawHttp(port, 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
      assert.equal(r.status, 400, r.raw.slice(0, 300));
      shaped(r, 'a header line without a colon');
      r = await rawHttp(port, 'TRACE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 405, r.raw.slice(0, 300));
      shaped(r, 'TRACE');
      r = await rawHttp(port, 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.ok(r.status >= 400 && r.status < 500, r.raw.slice(0, 300));
      shaped(r, 'CONNECT');
      r = await rawHttp(port, `GET /${'a'.repeat(70000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok([414, 431].includes(r.status), r.raw.slice(0, 300));   // lighttpd counts the URI as a header
      shaped(r, 'a 70000-byte URI');
      if (webserver === 'nginx') {   // nginx refuses it itself: the 413 keeps each route's shape
        const big = 'x'.repeat(MAX_BODY * 5);
        r = await h.request(`${stack.url}/v1/messages`, { method: 'POST', body: big,
          headers: { 'x-api-key': KEY, 'content-type': 'application/json' } });
        assert.equal(r.status, 413, r.text);
        assert.equal(r.json.type, 'error');
        assert.equal(r.json.error.type, 'request_too_large');
      }
      r = await rawHttp(port, 'HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200, r.raw.slice(0, 300));
      assert.equal(r.body, '', 'HEAD has no body');
      assert.match(r.headers['content-type'] || '', /application\/json/);
      const get = await h.request(`${stack.url}/health`);
      assert.equal(get.status, 200);
    });

    // (the web server starts the responders itself in the spawn and CGI kinds)
    if (!['apache-fcgid', 'lighttpd-spawn', ...h.CGI_WEBSERVERS].includes(webserver)) {
      test('with the responders down, the web server answers 502/503 in OpenAI\'s shape', async () => {
        await stopProc(stack.procs.fcgi, { timeoutMs: 10000 });
        try {
          const r = await h.request(`${stack.url}/v1/models`, { headers: AUTH });
          assert.ok([502, 503].includes(r.status), `${r.status}: ${r.text.slice(0, 300)}`);
          const e = h.assertOpenAIError(assert, r, r.status, { type: 'server_error' });
          assert.ok(e.code, 'a code names the failure');
        } finally {
          await stack.restartResponders();
        }
        const list = await client.models.list();
        assert.ok(list.data.length > 0);
      });
    }

    test('a client that hangs up mid-stream closes the upstream transfer', async () => {
      const parts = Array.from({ length: 100 }, (_, i) => `p${i} `);
      up.enqueue({ sse: h.textChunks(parts), delayMs: 100 });
      const before = up.requests.length;
      const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true },
        { headers: AUTH, stopWhen: (ev) => !!(ev.json && ev.json.choices[0]?.delta?.content) });
      assert.ok(s.stopped, 'we hung up after the first content chunk');
      const rec = up.requests[before];
      await up.waitClosed(rec, 15000);
      assert.ok(rec.aborted, 'the upstream connection closed before the answer was complete');
      assert.ok(rec.sent.length < parts.length, 'the upstream did not have to send everything');
      up.enqueue({ json: h.completion({ content: 'next one works' }) });
      const res = await client.chat.completions.create({ model: 'helper', messages: USER });
      assert.equal(res.choices[0].message.content, 'next one works');
    });
  });
}

describe('responder pool: a worker killed under load', () => {
  const WORKERS = 2;
  const THREADS = 2;
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, broker: false,
                                 workers: WORKERS, threads: THREADS });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('only the requests the worker held fail; a new worker replaces it and serves', async () => {
    const workers = stack.responderPids();
    assert.equal(workers.length, WORKERS, `workers: ${workers}`);
    // As many slow streams as the pool has threads: every thread holds one,
    // so each worker holds exactly THREADS of them.
    const n = WORKERS * THREADS;
    const parts = Array.from({ length: 40 }, (_, i) => `c${i} `);
    for (let i = 0; i < n; i++) up.enqueue({ sse: h.textChunks(parts), delayMs: 100 });
    const counts = new Array(n).fill(0);
    const streams = counts.map((_, i) => h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'helper', messages: USER, stream: true },
      { headers: AUTH,
        stopWhen: (ev) => { if (ev.json && ev.json.choices[0]?.delta?.content) counts[i]++; return false; } })
      .then((s) => ({ ok: s.status === 200 && s.done && h.contentOf(s) === parts.join(''), s }),
            (err) => ({ ok: false, err })));
    // Every stream under way for a while (the pool restarts a slot at most
    // once per second; these workers started before the streams did).
    await h.waitFor(() => counts.every((c) => c >= 10),
                    { timeoutMs: 20000, what: `${n} streams to be under way` });
    const victim = workers[0];
    process.kill(victim, 'SIGKILL');
    const replaced = await h.waitFor(() => {
      const now = stack.responderPids();
      return now.length === WORKERS && !now.includes(victim) && now;
    }, { timeoutMs: 1000, what: 'the pool to replace the killed worker within a second' });
    assert.ok(replaced.includes(workers[1]), 'the other worker was left alone');
    const results = await Promise.all(streams);
    const failed = results.filter((r) => !r.ok).length;
    assert.equal(failed, THREADS,
                 `exactly the ${THREADS} streams the killed worker held fail; ` +
                 `results: ${results.map((r) => (r.ok ? 'ok' : 'failed')).join(', ')}`);
    assert.match(stack.logs('fcgi'), new RegExp(`worker ${victim} killed by signal 9; replacing it`));
    // New requests are served, by either worker.
    for (let i = 0; i < n; i++) {
      up.enqueue({ json: h.completion({ content: `after ${i}` }) });
      const res = await stack.openai({ apiKey: KEY }).chat.completions.create({ model: 'helper', messages: USER });
      assert.equal(res.choices[0].message.content, `after ${i}`);
    }
  });
});

describe('responder pool: signals while workers start', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, broker: false, workers: 2, threads: 2 });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  // A new worker used to unblock every signal right after fork and block
  // them again only later: a SIGHUP (log rotation) the master forwarded in
  // that gap killed it. Here the master gets a SIGHUP every millisecond
  // while it replaces killed workers, so it forwards one to each new worker
  // at once; none may die of it.
  test('a SIGHUP storm while workers are replaced kills none of them', async () => {
    const master = stack.procs.fcgi.child.pid;
    const storm = setInterval(() => { try { process.kill(master, 'SIGHUP'); } catch (_) { /* gone */ } }, 1);
    try {
      for (let round = 0; round < 3; round++) {
        // both workers up (an earlier test may have left one being replaced)
        await h.waitFor(() => stack.responderPids().length === 2,
          { timeoutMs: 10000, what: `two workers (have ${stack.responderPids()})` });
        const before = stack.responderPids();
        process.kill(before[round % 2], 'SIGKILL');
        await h.waitFor(() => {
          const now = stack.responderPids();
          return now.length === 2 && !now.includes(before[round % 2]);
        }, { timeoutMs: 10000, what: 'the master to replace the killed worker' });
        // the new worker lives through more forwarded SIGHUPs
        const settled = Date.now() + 300;
        await h.waitFor(() => Date.now() > settled, { timeoutMs: 5000, what: 'a storm of SIGHUPs' });
      }
    } finally {
      clearInterval(storm);
    }
    assert.doesNotMatch(stack.logs('fcgi'), /killed by signal 1;/, 'a worker died of SIGHUP');
    up.enqueue({ json: h.completion({ content: 'alive' }) });
    const res = await stack.openai({ apiKey: KEY }).chat.completions.create({ model: 'helper', messages: USER });
    assert.equal(res.choices[0].message.content, 'alive');
  });
});

describe('lighttpd spawning the responders: one that dies is replaced', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, broker: false, webserver: 'lighttpd-spawn',
                                 workers: 2, threads: 2 });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('SIGKILL one spawned responder: requests keep succeeding, lighttpd starts a new one', async () => {
    const spawned = stack.responderPids();
    assert.equal(spawned.length, 2, `spawned: ${spawned}`);
    process.kill(spawned[0], 'SIGKILL');
    const client = stack.openai({ apiKey: KEY });
    for (let i = 0; i < 6; i++) {
      up.enqueue({ json: h.completion({ content: `served ${i}` }) });
      const res = await client.chat.completions.create({ model: 'helper', messages: USER });
      assert.equal(res.choices[0].message.content, `served ${i}`);
    }
    const now = await h.waitFor(() => {
      const pids = stack.responderPids();
      return pids.length === 2 && !pids.includes(spawned[0]) && pids;
    }, { timeoutMs: 10000, what: 'lighttpd to spawn a replacement responder' });
    // Until the replacement serves, lighttpd may not count it as one of its
    // backends: stopping lighttpd then would leave it behind, orphaned.
    const fresh = now.find((p) => !spawned.includes(p));
    await h.waitFor(() => new RegExp(`worker ${fresh} serving`).test(stack.logs('lighttpd')),
                    { timeoutMs: 10000, what: `the replacement responder ${fresh} to serve` });
  });
});

'use strict';
// Whatever a client sends, the responder answers with a clear OpenAI-shaped
// error (or a real answer) and never crashes, hangs or leaks: a few hundred
// malformed requests from a fixed seed (so a failure replays the same way)
// through nginx into the sanitizer-built responders; stop() then fails the
// test on any ASan/UBSan/LSan report or crash.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const h = require('./lib');

const SEED = 20261125;
const ROUNDS = 300;

// mulberry32: small, deterministic PRNG.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = { model: 'helper', messages: [{ role: 'user', content: 'hi' }] };

// Each maker returns a body (string or Buffer) that must NOT be a valid
// request, so the answer must be a 4xx before any upstream call.
function makers(r) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const junk = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const deep = (n, open, close) => open.repeat(n) + close.repeat(n);
  const s = JSON.stringify(VALID);
  return [
    () => junk(1 + Math.floor(r() * 200)),
    () => s.slice(0, Math.floor(r() * (s.length - 1))),                  // truncated JSON
    () => deep(10 + Math.floor(r() * 5000), '[', ']'),
    () => `{"model":"helper","messages":${deep(200 + Math.floor(r() * 3000), '[', ']')}}`,
    () => JSON.stringify({ ...VALID, model: pick([null, 1, [], {}, true, '']) }),
    () => JSON.stringify({ ...VALID, messages: pick([null, 'x', {}, [], [1], [null], [{}], [{ role: 7 }],
      [{ role: 'wizard', content: 'x' }], [{ role: 'user', content: 5 }]]) }),
    () => JSON.stringify({ ...VALID, stream: pick(['yes', 1, {}, []]) }),
    () => JSON.stringify({ ...VALID, temperature: pick(['hot', [], {}]) }),
    () => JSON.stringify({ ...VALID, max_tokens: pick([1.5, 'many', -0.5, {}]) }),
    () => JSON.stringify({ ...VALID, stop: pick([1, [1, 2], {}]) }),
    () => JSON.stringify({ ...VALID, tools: pick(['x', 1, {}]) }),
    () => JSON.stringify({ ...VALID, model: 'no-such-assistant-' + Math.floor(r() * 1e6) }),
    () => Buffer.concat([Buffer.from('{"model":"helper","messages":[{"role":"user","content":"'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0xa0]), Buffer.from('"}]}')]),
    () => s + s,                                                          // trailing junk
    () => '"' + 'a'.repeat(Math.floor(r() * 5000)),                     // unterminated string
    () => JSON.stringify(VALID).replace('}]', '}],"temperature":1e999999'),   // infinity has no JSON spelling
  ];
}

describe('hostile input never crashes a responder', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    up.handle(() => ({ json: h.completion({ content: 'ok' }) }));
    stack = await h.startStack({
      config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, timeout: 10}
assistants:
  - {name: helper, backend: fake, model: m}
`,
      upstream: up, broker: false, threads: 4, env: { AIPROXY_MAX_BODY: '65536' },
    });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test(`${ROUNDS} malformed bodies: each a 4xx in OpenAI's shape, none reaches the upstream`, async () => {
    const r = rng(SEED);
    const make = makers(r);
    for (let i = 0; i < ROUNDS; i++) {
      const k = Math.floor(r() * make.length);
      const body = make[k]();
      const res = await h.request(`${stack.url}/v1/chat/completions`, {
        method: 'POST', body: Buffer.isBuffer(body) ? body : Buffer.from(body),
        headers: { 'content-type': pick(r, ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) },
      });
      assert.ok(res.status >= 400 && res.status < 500, `case ${k} round ${i}: status ${res.status}: ${res.text.slice(0, 200)}`);
      assert.ok(res.json && res.json.error && typeof res.json.error.message === 'string' &&
        'type' in res.json.error && 'param' in res.json.error && 'code' in res.json.error,
      `case ${k} round ${i}: not an OpenAI error: ${res.text.slice(0, 200)}`);
    }
    assert.equal(up.requests.length, 0, 'a malformed request reached the upstream');
    const ok = await stack.openai().chat.completions.create(VALID);
    assert.equal(ok.choices[0].message.content, 'ok');
  });

  test('odd methods, paths and query strings are answered, never dropped', async () => {
    const cases = [
      ['DELETE', '/v1/chat/completions', 405], ['PUT', '/v1/models', 405], ['PATCH', '/health', 405],
      ['GET', '/v1/../../etc/passwd', 404], ['GET', '/v1/models/' + 'x'.repeat(3000), 404],
      ['GET', '/v1/models?apikey=%zz%&&==&' + 'q='.repeat(200), 200], ['GET', '/%00', 404],
      ['GET', '/v1/models/%2e%2e%2f', 404], ['OPTIONS', '/v1/chat/completions', 405],
    ];
    for (const [method, path, want] of cases) {
      const res = await h.request(`${stack.url}${path}`, { method });
      if (want === 404 && res.status === 400) continue;   // nginx may refuse a path itself
      assert.equal(res.status, want, `${method} ${path.slice(0, 60)}: ${res.text.slice(0, 200)}`);
      if (want >= 400) h.assertOpenAIError(assert, res, want, {});
    }
  });

  test('a client that sends half a body and hangs up leaves the responders serving', async () => {
    const port = Number(new URL(stack.url).port);
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => {
          sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            'Content-Length: 5000\r\n\r\n{"model":"helper","mess');
          sock.end();
          sock.destroy();
          resolve();
        });
        sock.on('error', resolve);
      });
    }
    // every thread must be free again: as many concurrent valid requests as threads
    const all = await Promise.all(Array.from({ length: 4 }, () => stack.openai().chat.completions.create(VALID)));
    for (const a of all) assert.equal(a.choices[0].message.content, 'ok');
  });
});

function pick(r, xs) {
  return xs[Math.floor(r() * xs.length)];
}

// Issue 11: a slow or greedy client cannot take the pool. A small pool (one
// worker of 8 threads, 2 of them kept for short requests) behind nginx.
describe('a slow or greedy client cannot take the pool', () => {
  const http = require('node:http');
  const { performance } = require('node:perf_hooks');
  const { fcgiOpen } = require('./lib/fcgi-client');
  const KEY = 'sk-hostile-pool-1';
  const ADMIN = 'adm-hostile-pool-1';
  const THREADS = 8;
  const RESERVE = 2;
  const QUEUE_WAIT_MS = 300;
  const AUTH = { authorization: `Bearer ${KEY}` };
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({
      config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, timeout: 60}
assistants:
  - {name: helper, backend: fake, model: m}
proxy_api_keys:
  - ${KEY}
`,
      upstream: up, broker: false, workers: 1, threads: THREADS,
      env: { AIPROXY_RESERVE_THREADS: String(RESERVE), AIPROXY_QUEUE_WAIT_MS: String(QUEUE_WAIT_MS),
             ADMIN_API_KEY: ADMIN },
    });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  const timed = async (fn) => {
    const t0 = performance.now();
    const res = await fn();
    return { res, ms: performance.now() - t0 };
  };
  const chat = (headers = AUTH) => h.request(`${stack.url}/v1/chat/completions`, {
    method: 'POST', headers, body: { model: 'helper', messages: [{ role: 'user', content: 'hi' }] },
    timeoutMs: 60000,
  });

  test('300 slow-body connections without a key leave /health and a keyed chat answering', async () => {
    up.handle(() => ({ json: h.completion({ content: 'ok' }) }));
    const port = Number(new URL(stack.url).port);
    const socks = [];
    try {
      await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
                  'Content-Length: 100000\r\n\r\n{"model":"helper",', resolve);
        });
        s.on('error', reject);
        socks.push(s);
      })));
      const figures = [];
      for (let i = 0; i < 5; i++) {
        const health = await timed(() => h.request(`${stack.url}/health`, { timeoutMs: 60000 }));
        assert.equal(health.res.status, 200, health.res.text);
        const c = await timed(() => chat());
        assert.equal(c.res.status, 200, c.res.text);
        assert.equal(c.res.json.choices[0].message.content, 'ok');
        figures.push(`health ${health.ms.toFixed(1)} ms, chat ${c.ms.toFixed(1)} ms`);
        // A pool-wide stall is tens of seconds; a served request takes milliseconds.
        assert.ok(health.ms < 1000 && c.ms < 1000, `with 300 slow uploads open: ${figures.join('; ')}`);
      }
      console.log(`# 300 slow-body connections open: ${figures.join('; ')}`);
    } finally {
      for (const s of socks) s.destroy();
      up.handle(null);
    }
  });

  test('the responder answers a keyless request from its headers, before the body arrives', async () => {
    const cases = [
      ['/v1/chat/completions', (r) => h.assertOpenAIError(assert, { status: r.status, json: r.json, text: r.body }, 401,
        { type: 'authentication_error' })],
      ['/v1/messages', (r) => { assert.equal(r.status, 401); assert.equal(r.json.type, 'error'); }],
      ['/admin/assistants/x', (r) => h.assertOpenAIError(assert, { status: r.status, json: r.json, text: r.body }, 401,
        { type: 'authentication_error' })],
    ];
    for (const [path, check] of cases) {
      const c = fcgiOpen(stack.fcgiSock, {
        REQUEST_METHOD: path.startsWith('/admin') ? 'PUT' : 'POST', REQUEST_URI: path,
        SCRIPT_NAME: '', PATH_INFO: path, QUERY_STRING: '', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: '100000', SERVER_PROTOCOL: 'HTTP/1.1',
      });
      try {
        c.write('{"model":"helper",');   // a slow client: 18 of 100000 bytes, then nothing
        let timer;
        const r = await Promise.race([c.stdout, new Promise((resolve) => { timer = setTimeout(resolve, 10000, null); })]);
        clearTimeout(timer);
        assert.ok(r, `${path}: no answer within 10 s while the body was incomplete (the responder waits for it)`);
        check(r);
      } finally {
        c.destroy();
      }
    }
  });

  // A request refused from its headers leaves its kept-alive FastCGI
  // connection usable: the body the web server already sent is drained, not
  // left to poison the connection, and the connection is not closed under
  // the web server (nginx hands the next request to a cached connection and
  // answers 502, without retry for a POST, when we close it meanwhile).
  test('a keyless POST refused with 401 keeps its FastCGI connection for the next request', async () => {
    const base = { SCRIPT_NAME: '', QUERY_STRING: '', SERVER_PROTOCOL: 'HTTP/1.1', CONTENT_TYPE: 'application/json' };
    const body = JSON.stringify({ model: 'helper', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    const p = { ...base, REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', PATH_INFO: '/v1/chat/completions',
      CONTENT_LENGTH: String(Buffer.byteLength(body)) };
    const c = fcgiOpen(stack.fcgiSock, p);
    try {
      await c.write(body);
      c.endStdin();
      assert.equal((await c.stdout).status, 401);
      const second = await c.again({ ...base, REQUEST_METHOD: 'GET', REQUEST_URI: '/health', PATH_INFO: '/health' });
      assert.equal(second.status, 200, 'the kept connection did not serve the next request');
      const third = await c.again({ ...p, HTTP_AUTHORIZATION: `Bearer ${KEY}` }, body);
      assert.notEqual(third.status, 401);
      assert.ok(third.status === 200 || third.status >= 400, String(third.status));
    } finally {
      c.destroy();
    }
  });

  test('with the completion threads held by streams, /health answers and a new chat gets a fast 503', async () => {
    up.handle(() => ({ sse: h.textChunks(['first', ' never-ending']), hangAfter: 2 }));
    const held = [];
    const started = [];
    const openStream = () => new Promise((resolve) => {
      const body = JSON.stringify({ model: 'helper', messages: [{ role: 'user', content: 'hold' }], stream: true });
      const req = http.request(`${stack.url}/v1/chat/completions`, {
        method: 'POST', agent: false,
        headers: { ...AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
          return;
        }
        res.once('data', () => resolve({ status: 200 }));
      });
      req.on('error', (err) => resolve({ status: 0, err }));
      req.end(body);
      held.push(req);
    });
    try {
      // As many streams as threads: all but the reserve are admitted; the
      // rest are refused at once instead of taking the reserve.
      for (let i = 0; i < THREADS; i++) started.push(await openStream());
      const ok = started.filter((s) => s.status === 200).length;
      assert.equal(ok, THREADS - RESERVE, `streams admitted: ${started.map((s) => s.status).join(', ')}`);
      for (const s of started.filter((x) => x.status !== 200)) {
        assert.equal(s.status, 503, s.text);
        assert.equal(JSON.parse(s.text).error.code, 'overloaded');
      }
      const health = await timed(() => h.request(`${stack.url}/health`, { timeoutMs: 60000 }));
      assert.equal(health.res.status, 200);
      const models = await timed(() => h.request(`${stack.url}/v1/models`, { headers: AUTH, timeoutMs: 60000 }));
      assert.equal(models.res.status, 200);
      const c = await timed(() => chat());
      const e = h.assertOpenAIError(assert, c.res, 503, { type: 'server_error' });
      assert.equal(e.code, 'overloaded');
      assert.equal(c.res.headers['retry-after'], '1');
      const m = await h.request(`${stack.url}/v1/messages`, {
        method: 'POST', headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
        body: { model: 'helper', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
      });
      assert.equal(m.status, 503, m.text);
      assert.equal(m.json.type, 'error');
      assert.equal(m.json.error.type, 'overloaded_error');
      console.log(`# pool saturated: health ${health.ms.toFixed(1)} ms, models ${models.ms.toFixed(1)} ms, ` +
                  `chat 503 in ${c.ms.toFixed(1)} ms (queue wait ${QUEUE_WAIT_MS} ms)`);
      assert.ok(health.ms < 1000 && models.ms < 1000, 'short requests wait behind the streams');
      assert.ok(c.ms < QUEUE_WAIT_MS + 2000, `the 503 took ${c.ms.toFixed(0)} ms`);
    } finally {
      for (const r of held) r.destroy();
    }
    // Hung-up streams free their threads: completions are served again.
    up.handle(() => ({ json: h.completion({ content: 'room again' }) }));
    await h.waitFor(async () => (await chat()).status === 200, { timeoutMs: 30000, what: 'a chat to be served again' });
    up.handle(null);
  });

  // The drain (SIGTERM) waits for what the workers accepted, and only that:
  // a request in flight on one FastCGI connection is answered while another
  // connection sits idle, kept alive, on its thread; then the pool exits 0.
  // Threads of `pid` blocked in read(2) (x86_64 syscall 0): how a test sees
  // that a responder thread is waiting for a request body.
  // The threads of `pid` blocked in read(2), as "tid:socket:[inode]" strings. Kept
  // connections of the web server (fastcgi_keep_conn) have such a thread for
  // as long as they live, so the test counts the readers that are new.
  const readers = (pid) => {
    const out = new Set();
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const sc = fs.readFileSync(`/proc/${pid}/task/${t}/syscall`, 'utf8').split(' ');
        if (sc[0] !== '0') continue;
        // the socket's inode, not the fd: a closed connection's fd number is
        // soon another's, often on the same thread
        out.add(`${t}:${fs.readlinkSync(`/proc/${pid}/fd/${parseInt(sc[1], 16)}`)}`);
      } catch (_) { /* gone */ }
    }
    return out;
  };

  test('SIGTERM drains: a request reading its body is answered, an idle kept connection does not hold the exit',
    { skip: process.arch !== 'x64' && 'reads /proc/*/syscall numbers of x86_64' }, async () => {
      up.handle(() => ({ json: h.completion({ content: 'drained' }) }));
      const [worker] = stack.responderPids();
      const base = { SCRIPT_NAME: '', QUERY_STRING: '', SERVER_PROTOCOL: 'HTTP/1.1' };
      const idle = fcgiOpen(stack.fcgiSock, { ...base, REQUEST_METHOD: 'GET', REQUEST_URI: '/health', PATH_INFO: '/health' });
      idle.endStdin();
      assert.equal((await idle.stdout).status, 200);   // answered; the connection stays open (keep-alive)
      // its thread waits on it for the next request
      // from here, a thread newly blocked in read(2) is the one reading the
      // busy request's body (the kept connections of earlier requests, the
      // web server's or the idle one above, are in the snapshot or in poll)
      const before = readers(worker);
      const newReaders = () => [...readers(worker)].filter((r) => !before.has(r)).length;
      const body = JSON.stringify({ model: 'helper', messages: [{ role: 'user', content: 'x' }] });
      const busy = fcgiOpen(stack.fcgiSock, {
        ...base, REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', PATH_INFO: '/v1/chat/completions',
        CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(Buffer.byteLength(body)),
        HTTP_AUTHORIZATION: `Bearer ${KEY}`,
      });
      try {
        await busy.write(body.slice(0, 10));   // the params and part of the body are in the socket
        await h.waitFor(() => newReaders() >= 1, { what: 'a thread to wait for the rest of the body' });
        const fcgi = stack.procs.fcgi;
        fcgi.child.kill('SIGTERM');
        await h.waitFor(() => /worker \d+ draining/.test(stack.logs('fcgi')), { what: 'the worker to start draining' });
        await busy.write(body.slice(10));
        busy.endStdin();
        const r = await busy.stdout;
        assert.equal(r.status, 200, r.body);   // the drain's wake-up signal used to break its read: 400
        assert.equal(r.json.choices[0].message.content, 'drained');
        let timer;
        const info = await Promise.race([fcgi.exited, new Promise((res) => { timer = setTimeout(res, 20000, null); })]);
        clearTimeout(timer);
        assert.ok(info, 'the pool did not exit within 20 s of its last request (an idle connection held it)');
        assert.equal(info.code, 0, `exit ${JSON.stringify(info)}`);
      } finally {
        idle.destroy();
        busy.destroy();
        up.handle(null);
      }
    stack.startResponders();
    await stack.waitHealthy();
  });
});

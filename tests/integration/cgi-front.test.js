'use strict';
// Issue 14, the CGI cost goal: aiproxy-cgi, the CGI front (fcgi/cgi-front,
// docs/shared-hosting.md), behind Apache mod_cgid (webserver
// 'apache-cgi-front'). webservers.test.js runs the representative suite
// behind it; here is what is the front's own: concurrent first requests
// start exactly one responder pool and all succeed; a pool that cannot start
// (or AIPROXY_CGI_POOL=0) leaves the request to plain CGI; an unused pool
// leaves (AIPROXY_IDLE_EXIT_S), never under a request, and the next request
// starts a new one; a pool that dies under a request leaves its client a 502
// in OpenAI's shape. The pool is nobody's child: the stack ends it by its pid
// file, and these tests find it by pid.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');

const KEY = 'sk-cgi-front-1';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-upstream, timeout: 30}
assistants:
  - {name: helper, backend: fake, model: up-model-1}
proxy_api_keys:
  - ${KEY}
`;
const USER = [{ role: 'user', content: 'hello' }];

const poolSock = (stack) => path.join(stack.dir, 'cgi-pool', 'pool');
const poolLog = (stack) => { try { return fs.readFileSync(`${poolSock(stack)}.log`, 'utf8'); } catch (_) { return ''; } };
const starts = (stack) => (poolLog(stack).match(/ listening on unix:/g) || []).length;

// The live pools of this stack: aiproxy-fcgi processes serving its socket.
function pools(stack) {
  const sock = poolSock(stack);
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd;
    try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch (_) { continue; }
    let state = '';
    try { state = fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1][0]; } catch (_) { continue; }
    if (state !== 'Z' && path.basename(cmd[0] || '') === 'aiproxy-fcgi' && cmd.includes(`unix:${sock}`)) {
      out.push(Number(d));
    }
  }
  return out;
}

const alive = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z'; } catch (_) { return false; }
};

async function completion(stack) {
  return stack.openai({ apiKey: KEY }).chat.completions.create({ model: 'helper', messages: USER })
    .then((r) => r.choices[0].message.content);
}

describe('the CGI front: concurrent first requests', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    // threads for 20 completions at once (admit.h keeps threads/8 for short routes)
    stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false,
                                 env: { AIPROXY_CGI_THREADS: '32' } });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('20 concurrent first requests start exactly one pool, and all succeed', async () => {
    // the stack's health check started a pool: end it, so the next requests are first
    const first = pools(stack);
    assert.equal(first.length, 1, `one pool after the health check: ${first}`);
    process.kill(first[0], 'SIGTERM');
    await h.waitFor(() => !alive(first[0]), { timeoutMs: 15000, what: 'the first pool to exit' });
    const before = starts(stack);
    up.handle(() => ({ json: h.completion({ content: 'from the pool' }) }));
    try {
      const res = await Promise.all(Array.from({ length: 20 }, () => completion(stack)));
      assert.deepEqual(res, new Array(20).fill('from the pool'));
    } finally { up.handle(null); }
    const now = pools(stack);
    assert.equal(now.length, 1, `exactly one pool: ${now}`);
    assert.notEqual(now[0], first[0]);
    assert.equal(starts(stack) - before, 1, `one pool started:\n${poolLog(stack)}`);
    assert.equal(Number(fs.readFileSync(`${poolSock(stack)}.pid`, 'utf8')), now[0]);
    assert.match(poolLog(stack), /0 workers x 32 threads/, 'AIPROXY_CGI_THREADS sized the pool');
    // and not one of them fell back to plain CGI
    assert.doesNotMatch(stack.logs('apache-error'), /serving as plain CGI/);
    // access lines are written in runs, within 100 ms (docs/responder.md)
    const accessLines = () => (poolLog(stack).match(/POST \/v1\/chat\/completions 200/g) || []).length;
    await h.waitFor(() => accessLines() >= 20, { timeoutMs: 10000, what: 'the 20 access lines' });
    assert.equal(accessLines(), 20);
  });
});

describe('the CGI front: bodies larger than the socket buffers', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false,
                                 env: { AIPROXY_MAX_BODY: String(2 << 20) } });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('a 1.5 MiB body reaches the upstream whole; a 6 MiB one gets the pool\'s 413, not a hang or a 502', async () => {
    const text = 'x'.repeat(1536 * 1024);
    up.enqueue({ json: h.completion({ content: 'got it' }) });
    const seen = up.requests.length;
    const res = await stack.openai({ apiKey: KEY }).chat.completions.create({ model: 'helper',
      messages: [{ role: 'user', content: text }] });
    assert.equal(res.choices[0].message.content, 'got it');
    assert.equal(up.requests[seen].body.messages.at(-1).content, text);
    // answered from the headers, before the body is read: the front must
    // still deliver it while the rest of the body has nowhere to go
    const r = await h.request(`${stack.baseURL}/chat/completions`, { method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: { model: 'helper', messages: [{ role: 'user', content: 'y'.repeat(6 << 20) }] } });
    h.assertOpenAIError(assert, r, 413, { type: 'invalid_request_error' });
    assert.equal(up.requests.length, seen + 1, 'the oversized request never reached the upstream');
  });
});

describe('the CGI front: a pool that dies under a request', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test("the client gets a 502 in OpenAI's shape, and the next request starts a new pool", async () => {
    const [pool] = pools(stack);
    assert.ok(pool, 'the health check started a pool');
    up.enqueue({ hang: true });
    const seen = up.requests.length;
    const pending = h.request(`${stack.baseURL}/chat/completions`, { method: 'POST',
      headers: { authorization: `Bearer ${KEY}` }, body: { model: 'helper', messages: USER } });
    await up.waitRequests(seen + 1);   // the pool holds the request, waiting on the upstream
    process.kill(pool, 'SIGKILL');
    const r = await pending;
    const e = h.assertOpenAIError(assert, r, 502, { type: 'server_error' });
    assert.match(e.message, /responder pool dropped the request/);
    up.enqueue({ json: h.completion({ content: 'a new pool' }) });
    assert.equal(await completion(stack), 'a new pool');
    const now = pools(stack);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], pool);
  });
});

describe('the CGI front: plain CGI when there is no pool', () => {
  let up;
  after(async () => { if (up) await up.close(); });
  before(async () => { up = await h.fakeUpstream(); });

  test('AIPROXY_CGI_POOL=0: every request is served by aiproxy-fcgi as plain CGI, no pool', async () => {
    const stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false,
                                       env: { AIPROXY_CGI_POOL: '0' } });
    try {
      up.enqueue({ json: h.completion({ content: 'plain cgi' }) });
      assert.equal(await completion(stack), 'plain cgi');
      assert.deepEqual(pools(stack), []);
      assert.equal(fs.existsSync(poolSock(stack)), false, 'no pool socket');
      assert.equal(fs.existsSync(`${poolSock(stack)}.log`), false, 'no pool was started');
    } finally { await stack.stop(); }
  });

  test('a pool that cannot start: the request is served as plain CGI, and the reason is logged', async () => {
    // the pool refuses this setting at start (plain CGI does not read it)
    const stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false,
                                       env: { AIPROXY_IDLE_EXIT_S: 'soon' } });
    try {
      up.enqueue({ json: h.completion({ content: 'served anyway' }) });
      assert.equal(await completion(stack), 'served anyway');
      assert.deepEqual(pools(stack), []);
      assert.match(poolLog(stack), /AIPROXY_IDLE_EXIT_S=soon/);
      assert.match(stack.logs('apache-error'), /no responder pool on .*serving as plain CGI/);
    } finally { await stack.stop(); }
  });
});

describe('the CGI front: an unused pool leaves', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-cgi-front', broker: false,
                                 env: { AIPROXY_IDLE_EXIT_S: '1' } });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('after AIPROXY_IDLE_EXIT_S without a request it exits and removes its socket; the next request starts a new one', async () => {
    const [first] = pools(stack);
    assert.ok(first, 'the health check started a pool');
    await h.waitFor(() => !alive(first) && !fs.existsSync(poolSock(stack)),
                    { timeoutMs: 15000, what: 'the idle pool to exit and remove its socket' });
    assert.match(poolLog(stack), new RegExp(`worker ${first}: no request for 1 s, leaving`));
    up.enqueue({ json: h.completion({ content: 'a new pool' }) });
    assert.equal(await completion(stack), 'a new pool');
    const [second] = pools(stack);
    assert.ok(second && second !== first, `a new pool: ${second}`);
  });

  test('a request longer than the idle time keeps the pool', async () => {
    const parts = Array.from({ length: 25 }, (_, i) => `p${i} `);
    up.enqueue({ sse: h.textChunks(parts), delayMs: 100 });   // 2.5 s > 1 s idle
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'helper', messages: USER, stream: true }, { headers: { authorization: `Bearer ${KEY}` } });
    const pid = pools(stack)[0];
    assert.equal(s.status, 200);
    assert.ok(s.done, 'the stream ended with [DONE]');
    assert.equal(h.contentOf(s), parts.join(''));
    assert.ok(pid, 'the pool that served the stream is still there when it ends');
    assert.equal((poolLog(stack).match(/ listening on unix:/g) || []).length, 2,
                 'no pool started for the stream but the two of the test before');
  });
});

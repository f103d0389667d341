'use strict';
// Issue 7: the auth chain in front of /v1, with real processes — static keys
// through every carrier, a stand-in Apiman gateway (a node server counting the
// probes it gets) for gateway_probe with the verdict cached in Redis and shared
// by a second stack, fail-closed when the gateway hangs or is down, and
// trusted_header.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const h = require('./lib');

const GOOD = 'apiman-good-key-1';
const STATIC = 'sk-static-key-1';
const FROM_ENV = 'sk-static-from-env-2';
const PREHASHED = 'sk-static-prehashed-3';   // configured only as its sha256
const sha256 = (s) => require('node:crypto').createHash('sha256').update(s).digest('hex');

// The stand-in Apiman gateway: GET /org/api/1.0/ping answers 200 for GOOD in
// X-API-Key, 401 for anything else; `mode` 'hang' stops answering.
async function fakeGateway() {
  const gw = { hits: new Map(), total: 0, mode: 'normal', paths: [] };
  const held = new Set();
  gw.server = http.createServer((req, res) => {
    const key = req.headers['x-api-key'] || '';
    gw.total++;
    gw.paths.push(req.url);
    gw.hits.set(key, (gw.hits.get(key) || 0) + 1);
    if (gw.mode === 'hang') { held.add(res); return; }
    if (req.url !== '/org/api/1.0/ping') { res.writeHead(404); res.end(); return; }
    res.writeHead(key === GOOD ? 200 : 401, { 'content-type': 'application/json' });
    res.end('{}');
  });
  await new Promise((r) => gw.server.listen(0, '127.0.0.1', r));
  gw.port = gw.server.address().port;
  gw.close = () => new Promise((r) => {
    for (const res of held) res.destroy();
    gw.server.closeAllConnections();
    gw.server.close(() => r());
  });
  return gw;
}

function probeConfig(gwPort) {
  return `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
assistants:
  - name: helper
    backend: fake
    model: m
proxy_api_keys:
  - ${STATIC}
  - \${AUTH_TEST_KEY2}
  - ""
  - sha256:${sha256(PREHASHED)}
apiman:
  mode: gateway_probe
  gateway_url: http://127.0.0.1:${gwPort}
  probe_api: org/api/1.0
  probe_path: ping
  timeout: 1
  cache_ttl: 60
`;
}

const models = (stack, { headers = {}, query = '' } = {}) =>
  h.request(`${stack.url}/v1/models${query}`, { headers });

function assert401(res) {
  h.assertOpenAIError(assert, res, 401, { type: 'authentication_error' });
  assert.equal(res.headers['www-authenticate'], 'Bearer');
}

function redisDump(sock) {
  const cli = (...args) => execFileSync('redis-cli', ['-s', sock, ...args], { encoding: 'utf8' });
  const keys = cli('--raw', 'KEYS', '*').split('\n').filter(Boolean);
  let all = keys.join('\n');
  for (const k of keys) {
    const type = cli('--raw', 'TYPE', k).trim();
    if (type === 'string') all += `\n${cli('--raw', 'GET', k)}`;
    else if (type === 'hash') all += `\n${cli('--raw', 'HGETALL', k)}`;
  }
  return { keys, all };
}

describe('auth: static keys and Apiman gateway_probe', () => {
  let up; let gw; let stack; let stack2;

  before(async () => {
    up = await h.fakeUpstream();
    gw = await fakeGateway();
    stack = await h.startStack({ config: probeConfig(gw.port), upstream: up, broker: false,
                                 env: { AUTH_TEST_KEY2: FROM_ENV } });
  });
  after(async () => {
    if (stack2) await stack2.stop();
    if (stack) await stack.stop();
    if (gw) await gw.close();
    if (up) await up.close();
  });

  test('/health stays open', async () => {
    const r = await h.request(`${stack.url}/health`);
    assert.equal(r.status, 200);
  });

  test('no credential: 401, OpenAI-shaped, WWW-Authenticate: Bearer', async () => {
    const r = await models(stack);
    assert401(r);
    assert.match(r.json.error.message, /Missing API key/);
  });

  test('a static key is accepted through every carrier', async () => {
    for (const opts of [
      { headers: { authorization: `Bearer ${STATIC}` } },
      { headers: { authorization: STATIC } },
      { headers: { 'x-api-key': STATIC } },
      { query: `?apikey=${STATIC}` },
      { headers: { authorization: `Bearer ${FROM_ENV}` } }, // ${VAR} in proxy_api_keys
      { headers: { authorization: `Bearer ${PREHASHED}` } }, // given as sha256:<hex>
    ]) {
      const r = await models(stack, opts);
      assert.equal(r.status, 200, `${JSON.stringify(opts)}: ${r.text}`);
    }
    assert.equal(gw.total, 0, 'static keys must not reach the gateway');
  });

  test('the openai client with a static key lists the assistants', async () => {
    const client = stack.openai({ apiKey: STATIC });
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['helper']);
    const bad = stack.openai({ apiKey: 'sk-nope' });
    await assert.rejects(() => bad.models.list(), (e) => e.status === 401);
  });

  test('every distinct candidate is tried: a bad Bearer does not hide a good X-API-Key', async () => {
    const r = await models(stack, { headers: { authorization: 'Bearer sk-wrong-static',
                                              'x-api-key': STATIC } });
    assert.equal(r.status, 200, r.text);
  });

  test('gateway_probe: a key the gateway honours passes, once probed then cached', async () => {
    const before = gw.hits.get(GOOD) || 0;
    const r1 = await models(stack, { headers: { 'x-api-key': GOOD } });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(gw.hits.get(GOOD), before + 1);
    assert.ok(gw.paths.includes('/org/api/1.0/ping'), gw.paths.join(','));
    const r2 = await models(stack, { headers: { authorization: `Bearer ${GOOD}` } });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(gw.hits.get(GOOD), before + 1, 'second request within the TTL reached the gateway');
  });

  test('gateway_probe: a rejected key is 401, and the rejection is cached too', async () => {
    const r1 = await models(stack, { headers: { 'x-api-key': 'apiman-bad-key' } });
    assert401(r1);
    assert.equal(gw.hits.get('apiman-bad-key'), 1);
    const r2 = await models(stack, { query: '?apikey=apiman-bad-key' });
    assert401(r2);
    assert.equal(gw.hits.get('apiman-bad-key'), 1);
  });

  test('a second stack on the same Redis shares the cached verdicts', async () => {
    stack2 = await h.startStack({ config: probeConfig(gw.port), upstream: up, broker: false,
                                  redisUrl: stack.redisUrl,
                                  env: { AUTH_TEST_KEY2: FROM_ENV } });
    const r = await models(stack2, { headers: { 'x-api-key': GOOD } });
    assert.equal(r.status, 200, r.text);
    const rb = await models(stack2, { headers: { 'x-api-key': 'apiman-bad-key' } });
    assert401(rb);
    assert.equal(gw.hits.get(GOOD), 1);
    assert.equal(gw.hits.get('apiman-bad-key'), 1);
  });

  test('Redis holds hashes of keys, never a raw key', () => {
    const { keys, all } = redisDump(stack.redisSock);
    assert.ok(keys.some((k) => /^aiproxy:auth:apiman:[0-9a-f]{64}$/.test(k)), keys.join('\n'));
    for (const secret of [GOOD, 'apiman-bad-key', 'sk-nope', 'sk-wrong-static']) {
      assert.ok(!all.includes(secret), `Redis holds the raw key ${secret}`);
    }
  });

  // Issue 11: the registry (seeded from the config) stores proxy_api_keys as
  // "sha256:<hex>"; a reader of Redis finds no key it could send.
  test('the registry holds sha256 of proxy_api_keys, never a raw key', async () => {
    const { all } = redisDump(stack.redisSock);
    for (const secret of [STATIC, FROM_ENV, PREHASHED]) {
      assert.ok(!all.includes(secret), `Redis holds the raw key ${secret}`);
      assert.ok(all.includes(`sha256:${sha256(secret)}`), `no hash of ${secret} in the registry`);
    }
    // the hash itself is not a key: sending it is refused
    assert401(await models(stack, { headers: { authorization: `Bearer sha256:${sha256(STATIC)}` } }));
    assert401(await models(stack, { headers: { authorization: `Bearer ${sha256(STATIC)}` } }));
  });

  test('a gateway that hangs rejects within the probe timeout (fail closed)', async () => {
    gw.mode = 'hang';
    const t0 = Date.now();
    const r = await models(stack, { headers: { 'x-api-key': 'apiman-while-hung' } });
    assert401(r);
    assert.equal(gw.hits.get('apiman-while-hung'), 1);
    // the probe timeout is 1 s; a hang would hold the request far longer
    assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
    gw.mode = 'normal';
    // a failure is not cached: the next request asks the gateway again
    const r2 = await models(stack, { headers: { 'x-api-key': 'apiman-while-hung' } });
    assert401(r2);
    assert.equal(gw.hits.get('apiman-while-hung'), 2);
  });

  test('a gateway that is down rejects; cached verdicts and static keys still work', async () => {
    await gw.close();
    const r = await models(stack, { headers: { 'x-api-key': 'apiman-unseen-key' } });
    assert401(r);
    assert.equal((await models(stack, { headers: { 'x-api-key': GOOD } })).status, 200);
    assert.equal((await models(stack, { headers: { 'x-api-key': STATIC } })).status, 200);
    assert.match(stack.logs('fcgi'), /fail closed/);
  });
});

describe('auth: Apiman trusted_header', () => {
  let up; let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ upstream: up, broker: false, config: `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
assistants:
  - name: helper
    backend: fake
    model: m
apiman:
  mode: trusted_header
  header: X-Apiman-Gateway
  secret: shared-gw-secret
` });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('the header with the secret passes; a wrong or missing one is 401', async () => {
    const ok = await models(stack, { headers: { 'x-apiman-gateway': 'shared-gw-secret' } });
    assert.equal(ok.status, 200, ok.text);
    assert401(await models(stack, { headers: { 'x-apiman-gateway': 'shared-gw-secreT' } }));
    assert401(await models(stack, { headers: { 'x-apiman-gateway': 'shared-gw-secret-longer' } }));
    assert401(await models(stack));
    // the secret in an ordinary key carrier is not the trusted header
    assert401(await models(stack, { headers: { authorization: 'Bearer shared-gw-secret' } }));
  });
});

describe('auth: none configured', () => {
  let up; let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ upstream: up, broker: false, config: `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
assistants:
  - name: helper
    backend: fake
    model: m
` });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('/v1 is open and the start-up log says so loudly', async () => {
    assert.equal((await models(stack)).status, 200);
    assert.match(stack.logs('fcgi'), /\/v1 IS OPEN/);
  });
});

describe('auth: Apiman gateway_probe while Redis is down', () => {
  let up; let gw; let stack;

  before(async () => {
    up = await h.fakeUpstream();
    gw = await fakeGateway();
    stack = await h.startStack({ config: probeConfig(gw.port), upstream: up, broker: false,
                                 env: { AUTH_TEST_KEY2: FROM_ENV } });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (gw) await gw.close();
    if (up) await up.close();
  });

  test('the probe still decides, uncached: each request asks the gateway', async () => {
    await stack.killRedis();
    const key = GOOD;   // a fresh gateway: its hit count starts at 0
    for (let i = 1; i <= 2; i++) {
      const r = await models(stack, { headers: { 'x-api-key': key } });
      assert.equal(r.status, 200, r.text);
      assert.equal(gw.hits.get(key), i, 'a verdict was cached although Redis is down');
    }
    assert401(await models(stack, { headers: { 'x-api-key': 'apiman-bad-while-redis-down' } }));
    assert.equal((await models(stack, { headers: { 'x-api-key': STATIC } })).status, 200);
  });
});

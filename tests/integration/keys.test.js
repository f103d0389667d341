'use strict';
// Issue 18 (items 1 and 2): managed API keys and plans through the admin API,
// on two stacks sharing one Redis — create, use with the openai client, list
// and get without the secret, per-key visibility of assistants and tools
// (/v1/models, chat, /v1/messages, the tools offered upstream, /mcp), plans,
// rotation, revocation seen by both stacks, expiry, Redis down (503), static
// keys unchanged, Apiman callers mapped to a plan, and bad input.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');

const ADMIN = 'admin-key-keys-test-0123';
const STATIC = 'sk-static-client-key-77';
const APIMAN_SECRET = 'apiman-shared-secret-42';

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo:
    command: \${MCP_DEMO}
assistants:
  - {name: helper, backend: fake, model: up-model, mcp_servers: [demo]}
  - {name: helper-2, backend: fake, model: up-model}
  - {name: secret-bot, backend: fake, model: up-model}
proxy_api_keys: [${STATIC}]
`;

function admin(stack, method, p, body, key = ADMIN) {
  return h.request(`${stack.url}${p}`, { method, headers: key ? { authorization: `Bearer ${key}` } : {}, body });
}

function v1(stack, p, key, opts = {}) {
  return h.request(`${stack.url}${p}`, { ...opts, headers: { authorization: `Bearer ${key}`, ...(opts.headers || {}) } });
}

async function modelIds(stack, key) {
  const r = await v1(stack, '/v1/models', key);
  assert.equal(r.status, 200, r.text);
  return r.json.data.map((m) => m.id).sort();
}

function chat(stack, key, model = 'helper', content = 'hello') {
  return stack.openai({ apiKey: key }).chat.completions.create({ model, messages: [{ role: 'user', content }] });
}

async function newKey(stack, body) {
  const r = await admin(stack, 'POST', '/admin/keys', body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

describe('managed API keys and plans', () => {
  let up; let s1; let s2;

  before(async () => {
    up = await h.fakeUpstream();
    up.handle(() => ({ json: h.completion({ content: 'hi' }) }));
    s1 = await h.startStack({ config: CONFIG, upstream: up, threads: 4, env: { ADMIN_API_KEY: ADMIN } });
    s2 = await h.startStack({ config: CONFIG, upstream: up, threads: 4, broker: false,
                              env: { ADMIN_API_KEY: ADMIN }, redisUrl: s1.redisUrl });
  });
  after(async () => {
    if (s2) await s2.stop();
    if (s1) await s1.stop();
    if (up) await up.close();
  });

  test('create, use with the openai client, list and get never show the secret or its hash', async () => {
    const k = await newKey(s1, { name: 'alice laptop', owner: 'team-a' });
    assert.match(k.key, /^sk-aip-[A-Za-z0-9_-]{43}$/);
    assert.match(k.id, /^key_[0-9a-f]{16}$/);
    assert.equal(k.display, k.key.slice(0, 12));
    assert.equal(k.name, 'alice laptop');
    assert.equal(k.owner, 'team-a');
    assert.equal(k.plan, null);
    assert.equal(k.expires_at, null);
    assert.ok(Number.isInteger(k.created_at));
    assert.deepEqual(k.policy, {});

    const r = await chat(s1, k.key);
    assert.equal(r.choices[0].message.content, 'hi');
    assert.equal((await chat(s2, k.key)).choices[0].message.content, 'hi');

    const hash = (await s1.redis('HGET', `${s1.prefix}key:${k.id}`, 'hash'));
    assert.match(hash, /^[0-9a-f]{64}$/);
    const list = await admin(s1, 'GET', '/admin/keys');
    assert.equal(list.status, 200, list.text);
    assert.ok(list.json.data.some((x) => x.id === k.id));
    const one = await admin(s2, 'GET', `/admin/keys/${k.id}`);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.json.effective_policy, {});
    for (const t of [list.text, one.text]) {
      assert.ok(!t.includes(k.key), 'the secret is shown');
      assert.ok(!t.includes(hash), 'the hash is shown');
    }
    // nothing in Redis holds the secret
    const dump = JSON.stringify(await s1.redis('HGETALL', `${s1.prefix}key:${k.id}`));
    assert.ok(!dump.includes(k.key));
    // filters
    assert.ok((await admin(s1, 'GET', '/admin/keys?owner=team-a')).json.data.some((x) => x.id === k.id));
    assert.ok(!(await admin(s1, 'GET', '/admin/keys?owner=team-b')).json.data.some((x) => x.id === k.id));
  });

  test('unknown managed key: 401; revoked: refused on the next request by both stacks', async () => {
    const bogus = `sk-aip-${'A'.repeat(43)}`;
    const u = await v1(s1, '/v1/models', bogus);
    h.assertOpenAIError(assert, u, 401, { type: 'authentication_error' });
    const k = await newKey(s1, { name: 'to revoke' });
    assert.equal((await v1(s1, '/v1/models', k.key)).status, 200);
    assert.equal((await v1(s2, '/v1/models', k.key)).status, 200);
    const d = await admin(s2, 'DELETE', `/admin/keys/${k.id}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.revoked, true);
    assert.ok(Number.isInteger(d.json.revoked_at));
    for (const s of [s1, s2]) {
      const r = await v1(s, '/v1/models', k.key);
      h.assertOpenAIError(assert, r, 401, { type: 'authentication_error', messageMatch: /revoked/ });
      await assert.rejects(chat(s, k.key), (e) => e.status === 401);
    }
    const g = await admin(s1, 'GET', `/admin/keys/${k.id}`);
    assert.equal(g.json.revoked, true);
    assert.equal(await s1.redis('EXISTS', `${s1.prefix}key:h:${await s1.redis('HGET', `${s1.prefix}key:${k.id}`, 'hash')}`), 0);
    // PATCH or rotate a revoked key: 409
    h.assertOpenAIError(assert, await admin(s1, 'PATCH', `/admin/keys/${k.id}`, { name: 'x' }), 409, {});
    h.assertOpenAIError(assert, await admin(s1, 'POST', `/admin/keys/${k.id}/rotate`, {}), 409, {});
  });

  test('an expired key: 401 saying so', async () => {
    const k = await newKey(s1, { name: 'short-lived', expires_at: '2099-01-01T00:00:00Z' });
    assert.equal(k.expires_at, 4070908800);
    assert.equal((await v1(s1, '/v1/models', k.key)).status, 200);
    await s1.redis('HSET', `${s1.prefix}key:${k.id}`, 'expires_at', String(Math.floor(Date.now() / 1000) - 5));
    h.assertOpenAIError(assert, await v1(s1, '/v1/models', k.key), 401, { messageMatch: /expired/ });
  });

  test('static keys still work and see every assistant', async () => {
    assert.deepEqual(await modelIds(s1, STATIC), ['helper', 'helper-2', 'secret-bot']);
    assert.equal((await chat(s1, STATIC, 'secret-bot')).choices[0].message.content, 'hi');
  });

  test('bad input: clear 4xx each', async () => {
    const cases = [
      [{ owner: 'x' }, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'x', colour: 'red' }, 'colour'],
      [{ name: 'x', policy: { rpm: -1 } }, 'policy.rpm'],
      [{ name: 'x', policy: { speed: 1 } }, 'policy.speed'],
      [{ name: 'x', policy: 'all' }, 'policy'],
      [{ name: 'x', policy: { assistants: 'helper' } }, 'policy.assistants'],
      [{ name: 'x', expires_at: 'next tuesday' }, 'expires_at'],
      [{ name: 'x', expires_at: 5 }, 'expires_at'],
      [{ name: 'x', plan: '../etc' }, 'plan'],
    ];
    for (const [body, param] of cases) {
      const r = await admin(s1, 'POST', '/admin/keys', body);
      h.assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
      assert.equal(r.json.error.param, param, `${JSON.stringify(body)}: ${r.text}`);
    }
    const bad = await admin(s1, 'POST', '/admin/keys', '{"name":');
    h.assertOpenAIError(assert, bad, 400, {});
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/keys/key_0000000000000000'), 404, {});
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/keys/nope'), 404, {});
    h.assertOpenAIError(assert, await admin(s1, 'DELETE', '/admin/keys/key_0000000000000000'), 404, {});
    h.assertOpenAIError(assert, await admin(s1, 'PATCH', '/admin/keys/key_0000000000000000', { name: 'a' }), 404, {});
    const m = await admin(s1, 'PUT', '/admin/keys');
    assert.equal(m.status, 405);
    assert.match(m.headers.allow, /POST/);
    // the admin key guards it
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/keys', undefined, STATIC), 401, {});
  });
  // Last: it stops the shared Redis.
  test('Redis down while a managed key is presented: 503 with Retry-After in each surface\'s shape; static keys still pass', async () => {
    const k = await newKey(s1, { name: 'redis-down' });
    assert.equal((await v1(s1, '/v1/models', k.key)).status, 200);
    await s1.killRedis();
    const r = await v1(s1, '/v1/models', k.key);
    h.assertOpenAIError(assert, r, 503, { type: 'api_error' });
    assert.equal(r.headers['retry-after'], '1');
    const m = await h.request(`${s1.url}/v1/messages`, {
      method: 'POST', headers: { 'x-api-key': k.key, 'anthropic-version': '2023-06-01' },
      body: { model: 'helper', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(m.status, 503, m.text);
    assert.equal(m.json.type, 'error');
    assert.equal(m.headers['retry-after'], '1');
    assert.equal((await v1(s1, '/v1/models', STATIC)).status, 200);
  });
});

'use strict';
// Issue 18 (items 1 and 2): managed API keys and plans through the admin API,
// on two stacks sharing one Redis — create, use with the openai client, list
// and get without the secret, per-key visibility of assistants and tools
// (/v1/models, chat, /v1/messages, the tools offered upstream, /mcp), plans,
// rotation, revocation seen by both stacks, expiry, Redis down (503), static
// keys unchanged, Apiman callers mapped to a plan, and bad input.
const { describe, test, before, after } = require('node:test');
// An answer without its request id (every error message ends with its own).
const noRid = (t) => t.replace(/ \(request id [^)]*\)/g, '');
const assert = require('node:assert/strict');
const h = require('./lib');
const Anthropic = require('@anthropic-ai/sdk');

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
    const rr = await s1.openai({ apiKey: k.key }).responses.create({ model: 'helper', input: 'hello', store: false });
    assert.equal(rr.output_text, 'hi');

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
    // an edit behind the API's back, announced as docs/keys.md says (without
    // the PUBLISH the responders' key caches catch up within a second)
    await s1.redis('HSET', `${s1.prefix}key:${k.id}`, 'expires_at', String(Math.floor(Date.now() / 1000) - 5));
    await s1.redis('PUBLISH', `${s1.prefix}keys:changed`, 'hand edit');
    h.assertOpenAIError(assert, await v1(s1, '/v1/models', k.key), 401, { messageMatch: /expired/ });
  });

  test('a key seen before costs no Redis round trip; a PATCH reaches both stacks on the next request', async () => {
    const k = await newKey(s1, { name: 'cached', policy: { assistants: ['helper'] } });
    for (const s of [s1, s2]) assert.deepEqual(await modelIds(s, k.key), ['helper']);
    await s1.redis('CONFIG', 'RESETSTAT');
    const t0 = Date.now();
    const N = 60;
    for (let i = 0; i < N; i++) assert.equal((await v1(i % 2 ? s2 : s1, '/v1/models', k.key)).status, 200);
    const secs = Math.ceil((Date.now() - t0) / 1000);
    const stats = String(await s1.redis('INFO', 'commandstats'));
    const m = stats.match(/cmdstat_evalsha:calls=(\d+)/);
    const lookups = m ? Number(m[1]) : 0;
    // a lookup per worker process when its watcher's generation moves (a
    // tick a second) at most: 2 stacks x 2 workers x (1 + seconds elapsed)
    assert.ok(lookups <= 4 * (1 + secs), `${lookups} key lookups for ${N} requests in ${secs} s`);
    assert.ok(lookups < N / 2, `${lookups} key lookups for ${N} requests`);
    const p = await admin(s2, 'PATCH', `/admin/keys/${k.id}`, { policy: { assistants: ['helper-2'] } });
    assert.equal(p.status, 200, p.text);
    for (const s of [s1, s2]) assert.deepEqual(await modelIds(s, k.key), ['helper-2']);
  });

  // a limited key with room has its verdict read beside the first upstream
  // turn (docs/keys.md, "Limits"); once the key is spent on the other stack,
  // a tool the model asks for must never run: the refusal comes first
  test('a tool-using assistant, a key spent on the other stack: 429, no tool call runs', async () => {
    const k = await newKey(s1, { name: 'early tools', policy: { rpm: 20 } });
    assert.equal((await v1(s1, '/v1/chat/completions', k.key, {
      method: 'POST', body: { model: 'helper', messages: [{ role: 'user', content: 'hi' }] } })).status, 200);
    for (let i = 0; i < 19; i++) {
      const r = await v1(s2, '/v1/chat/completions', k.key, {
        method: 'POST', body: { model: 'helper-2', messages: [{ role: 'user', content: 'hi' }] } });
      assert.equal(r.status, 200, r.text);
    }
    const n = up.requests.length;
    up.enqueue({ json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__echo', arguments: { text: 'ran' } }] }) });
    const r = await v1(s1, '/v1/chat/completions', k.key, {
      method: 'POST', body: { model: 'helper', messages: [{ role: 'user', content: 'echo ran' }] } });
    h.assertOpenAIError(assert, r, 429, { type: 'rate_limit_error' });
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
    // at most the first turn reached the upstream (when the verdict was read
    // beside it); no second turn, so the tool's result was never made
    assert.ok(up.requests.length - n <= 1, `${up.requests.length - n} upstream turns`);
    // refused before the upstream: its queued answer is left; use it up so
    // the next test's first request gets its own
    while (up.pending() > 0) {
      await v1(s1, '/v1/chat/completions', STATIC, {
        method: 'POST', body: { model: 'helper-2', messages: [{ role: 'user', content: 'drain' }] } });
    }
  });

  test('static keys still work and see every assistant', async () => {
    assert.deepEqual(await modelIds(s1, STATIC), ['helper', 'helper-2', 'secret-bot']);
    assert.equal((await chat(s1, STATIC, 'secret-bot')).choices[0].message.content, 'hi');
  });

  test('PATCH policy: assistants outside the globs are absent from /v1/models and 404 everywhere', async () => {
    const k = await newKey(s1, { name: 'narrow' });
    assert.deepEqual(await modelIds(s1, k.key), ['helper', 'helper-2', 'secret-bot']);
    const p = await admin(s1, 'PATCH', `/admin/keys/${k.id}`, { policy: { assistants: ['helper*'] } });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json.policy, { assistants: ['helper*'] });
    assert.deepEqual(p.json.effective_policy, { assistants: ['helper*'] });
    for (const s of [s1, s2]) {
      assert.deepEqual(await modelIds(s, k.key), ['helper', 'helper-2']);
      const hidden = await v1(s, '/v1/models/secret-bot', k.key);
      const missing = await v1(s, '/v1/models/no-such-bot', k.key);
      h.assertOpenAIError(assert, hidden, 404, {});
      assert.equal(hidden.json.error.code, missing.json.error.code);
      assert.equal((await v1(s, '/v1/models/helper-2', k.key)).status, 200);
    }
    await assert.rejects(chat(s1, k.key, 'secret-bot'),
                         (e) => e.status === 404 && e.code === 'model_not_found' && /does not exist/.test(e.message));
    assert.equal((await chat(s1, k.key, 'helper-2')).choices[0].message.content, 'hi');
    const ac = new Anthropic({ apiKey: k.key, baseURL: s1.url, maxRetries: 0 });
    await assert.rejects(ac.messages.create({ model: 'secret-bot', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
                         (e) => e.status === 404 && e.error?.error?.type === 'not_found_error');
    const ok = await ac.messages.create({ model: 'helper', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.content[0].text, 'hi');
    // the static key still sees it
    assert.equal((await v1(s1, '/v1/models/secret-bot', STATIC)).status, 200);
  });

  test('tools: the policy narrows what the model is offered and what /mcp lists and calls', async () => {
    const k = await newKey(s1, { name: 'tools', policy: { tools: { allow: ['demo__*'], deny: ['demo__uppercase'] } } });
    const n = up.requests.length;
    await chat(s1, k.key, 'helper');
    const offered = up.requests[n].body.tools.map((t) => t.function.name).sort();
    assert.deepEqual(offered, ['demo__add', 'demo__echo']);
    const n2 = up.requests.length;
    await chat(s1, STATIC, 'helper');
    assert.ok(up.requests[n2].body.tools.some((t) => t.function.name === 'demo__uppercase'));

    const mcp = async (p, body, sid) => {
      const r = await fetch(`${s1.url}${p}`, {
        method: 'POST', body: JSON.stringify(body),
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json',
                   accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) } });
      const text = await r.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* SSE or empty */ }
      return { status: r.status, headers: r.headers, text, json };
    };
    const init = await mcp('/mcp', { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'keys', version: '1' } } });
    assert.equal(init.status, 200, init.text);
    const sid = init.headers.get('mcp-session-id');
    const list = await mcp('/mcp', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sid);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.result.tools.map((t) => t.name).sort(), ['demo__add', 'demo__echo']);
    const call = await mcp('/mcp', { jsonrpc: '2.0', id: 3, method: 'tools/call',
                                     params: { name: 'demo__uppercase', arguments: { text: 'x' } } }, sid);
    assert.match(call.text, /Unknown tool/);
    // /mcp/{assistant} outside the key's assistants: 404 as a missing one
    await admin(s1, 'PATCH', `/admin/keys/${k.id}`, { policy: { assistants: ['helper-2'] } });
    const hidden = await mcp('/mcp/helper', { jsonrpc: '2.0', id: 1, method: 'ping' });
    const missing = await mcp('/mcp/nobody', { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(hidden.status, 404, hidden.text);
    assert.equal(noRid(hidden.text), noRid(missing.text));  // same answer but its request id
  });

  test('plans: a key inherits its plan; a PUT to the plan changes what the key sees on its next request; DELETE refused while used', async () => {
    let r = await admin(s1, 'PUT', '/admin/plans/bronze', { assistants: ['helper'], rpm: 60 });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.policy, { assistants: ['helper'], rpm: 60 });
    const k = await newKey(s1, { name: 'planned', plan: 'bronze', policy: { rpm: 5, budget: { tokens_per_day: 100 } } });
    assert.equal(k.plan, 'bronze');
    assert.deepEqual(await modelIds(s2, k.key), ['helper']);
    const g = await admin(s1, 'GET', `/admin/keys/${k.id}`);
    assert.deepEqual(g.json.effective_policy, { assistants: ['helper'], rpm: 5, budget: { tokens_per_day: 100 } });
    r = await admin(s2, 'PUT', '/admin/plans/bronze', { assistants: ['helper', 'secret-bot'] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await modelIds(s1, k.key), ['helper', 'secret-bot']);
    assert.ok((await admin(s1, 'GET', '/admin/plans')).json.data.some((p) => p.name === 'bronze'));
    assert.deepEqual((await admin(s1, 'GET', '/admin/plans/bronze')).json.policy, { assistants: ['helper', 'secret-bot'] });
    assert.ok((await admin(s1, 'GET', '/admin/keys?plan=bronze')).json.data.every((x) => x.plan === 'bronze'));
    const d = await admin(s1, 'DELETE', '/admin/plans/bronze');
    h.assertOpenAIError(assert, d, 409, {});
    assert.match(d.json.error.message, /1 key/);
    // a plan named but missing is empty
    r = await admin(s1, 'PATCH', `/admin/keys/${k.id}`, { plan: 'no-such-plan', policy: {} });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await modelIds(s1, k.key), ['helper', 'helper-2', 'secret-bot']);
    assert.equal((await admin(s1, 'DELETE', '/admin/plans/bronze')).status, 200);
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/plans/bronze'), 404, {});
    h.assertOpenAIError(assert, await admin(s1, 'PUT', '/admin/plans/bad', { rpm: 0 }), 400, {});
    h.assertOpenAIError(assert, await admin(s1, 'PUT', '/admin/plans/bad', { colour: 1 }), 400, {});
  });

  test('rotate: the old secret works during the grace period, the new one at once; grace 0 ends the old at once', async () => {
    const k = await newKey(s1, { name: 'rotating' });
    let r = await admin(s1, 'POST', `/admin/keys/${k.id}/rotate`, { grace_seconds: 600 });
    assert.equal(r.status, 200, r.text);
    const k2 = r.json.key;
    assert.notEqual(k2, k.key);
    assert.equal(r.json.display, k2.slice(0, 12));
    for (const key of [k.key, k2]) {
      assert.equal((await v1(s1, '/v1/models', key)).status, 200);
      assert.equal((await v1(s2, '/v1/models', key)).status, 200);
    }
    const ttl = await s1.redis('PTTL', `${s1.prefix}key:h:${require('node:crypto').createHash('sha256').update(k.key).digest('hex')}`);
    assert.ok(ttl > 0 && ttl <= 600000, String(ttl));
    r = await admin(s1, 'POST', `/admin/keys/${k.id}/rotate`, { grace_seconds: 0 });
    assert.equal(r.status, 200, r.text);
    const k3 = r.json.key;
    h.assertOpenAIError(assert, await v1(s1, '/v1/models', k2), 401, {});
    assert.equal((await v1(s1, '/v1/models', k.key)).status, 200, 'the first secret is still in its grace period');
    assert.equal((await v1(s2, '/v1/models', k3)).status, 200);
    // revoking ends every secret, those in grace too
    assert.equal((await admin(s1, 'DELETE', `/admin/keys/${k.id}`)).status, 200);
    for (const key of [k.key, k2, k3]) h.assertOpenAIError(assert, await v1(s2, '/v1/models', key), 401, {});
    h.assertOpenAIError(assert, await admin(s1, 'POST', `/admin/keys/${k.id}/rotate`, { grace_seconds: -1 }), 400, {});
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

describe('Apiman callers mapped to a plan (trusted_header)', () => {
  let up; let stack;
  before(async () => {
    up = await h.fakeUpstream();
    up.handle(() => ({ json: h.completion({ content: 'hi' }) }));
    stack = await h.startStack({ upstream: up, broker: false, env: { ADMIN_API_KEY: ADMIN }, config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}}
assistants:
  - {name: helper, backend: fake, model: m}
  - {name: premium, backend: fake, model: m}
  - {name: internal, backend: fake, model: m}
apiman:
  mode: trusted_header
  header: X-Apiman-Gateway
  secret: ${APIMAN_SECRET}
  plan: basic
  plan_header: X-Apiman-Plan
  client_header: X-Apiman-Client
` });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  const models = async (headers) => {
    const r = await h.request(`${stack.url}/v1/models`, { headers: { 'x-apiman-gateway': APIMAN_SECRET, ...headers } });
    assert.equal(r.status, 200, r.text);
    return r.json.data.map((m) => m.id).sort();
  };

  test('apiman.plan for every caller, the plan header over it, a missing plan empty', async () => {
    // no plan stored yet: empty, everything visible
    assert.deepEqual(await models({}), ['helper', 'internal', 'premium']);
    assert.equal((await admin(stack, 'PUT', '/admin/plans/basic', { assistants: ['helper'] })).status, 201);
    assert.equal((await admin(stack, 'PUT', '/admin/plans/gold', { assistants: ['helper', 'premium'] })).status, 201);
    assert.deepEqual(await models({ 'x-apiman-client': 'acme' }), ['helper']);
    assert.deepEqual(await models({ 'x-apiman-plan': 'gold', 'x-apiman-client': 'acme' }), ['helper', 'premium']);
    // a header value that is not a plan name falls back to apiman.plan
    assert.deepEqual(await models({ 'x-apiman-plan': '../gold' }), ['helper']);
    const r = await h.request(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'x-apiman-gateway': APIMAN_SECRET, 'x-apiman-plan': 'gold' },
      body: { model: 'internal', messages: [{ role: 'user', content: 'hi' }] } });
    h.assertOpenAIError(assert, r, 404, {});
    assert.equal(r.json.error.code, 'model_not_found');
    // without the gateway's secret the headers mean nothing
    const bad = await h.request(`${stack.url}/v1/models`, { headers: { 'x-apiman-plan': 'gold' } });
    h.assertOpenAIError(assert, bad, 401, {});
  });

  test('GET /admin/config shows the Apiman plan settings, never the secret', async () => {
    const c = await admin(stack, 'GET', '/admin/config');
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.settings.apiman.plan, 'basic');
    assert.equal(c.json.settings.apiman.plan_header, 'X-Apiman-Plan');
    assert.ok(!c.text.includes(APIMAN_SECRET));
  });
});

'use strict';
// Issue 18 item 3: a key's limits are enforced fleet-wide. Two stacks share
// one Redis (one fleet): rpm lets exactly its count through across both, the
// 429s carry Retry-After, retry-after-ms and the x-ratelimit-* headers the
// SDKs read; tpm is charged with the upstream's real usage; a daily budget
// runs out on every host at once; max_concurrent holds a slot while a
// request is in flight; /v1/messages refuses in Anthropic's shape; and when
// Redis refuses the limiter's scripts, rate limits fail open and budgets
// fail closed, unless settings.limits flips them.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');

const ADMIN = 'admin-key-limits-0123456789';
const STATIC = 'sk-static-limits-client';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
assistants:
  - {name: helper, backend: fake, model: up-model}
proxy_api_keys: [${STATIC}]
`;

// The keys each test uses, by name, with their policies.
const POLICIES = {
  rpm10: { rpm: 10 },
  rpm60: { rpm: 60 },
  headers: { rpm: 100, tpm: 100000 },
  tpm: { tpm: 6000 },
  budget: { budget: { tokens_per_day: 100 } },
  conc: { max_concurrent: 1 },
  messages: { rpm: 1 },
  early: { rpm: 20 },
  failRate: { rpm: 5 },
  failBudget: { rpm: 5, budget: { tokens_per_day: 1000000 } },
};

// Creates the keys of POLICIES through the admin API; returns {keys: name ->
// secret, ids: name -> key id}.
async function createKeys(stack, names = Object.keys(POLICIES)) {
  const out = {};
  const ids = {};
  for (const name of names) {
    const r = await h.request(`${stack.url}/admin/keys`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}` },
      body: { name: `limits-${name}`, policy: POLICIES[name] },
    });
    assert.equal(r.status, 201, r.text);
    const secret = r.json.key || r.json.secret;
    assert.match(secret, /^sk-aip-/, r.text);
    out[name] = secret;
    ids[name] = r.json.id;
  }
  return { keys: out, ids };
}

const BODY = { model: 'helper', messages: [{ role: 'user', content: 'hi' }] };

function chat(stack, key, body = BODY) {
  return h.request(`${stack.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}` }, body,
  });
}

function assertLimited(r, code) {
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.type, 'rate_limit_error');
  assert.equal(r.json.error.code, code);
  assert.ok(!r.text.includes('sk-aip-'), 'the message never holds the key');
}

// Makes the limiter's script fail for key `id`: its rpm key (or, with
// `budget`, today's budget key) becomes a hash, so the script's GET errors.
async function breakLimits(stack, id, budget) {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  await stack.redis('HSET', `${stack.prefix}lim:${id}:${budget ? `d:${day}` : 'rpm'}`, 'x', '1');
}

function openai(stack, key, opts = {}) {
  const OpenAI = require('openai');
  const Ctor = OpenAI.default || OpenAI.OpenAI || OpenAI;
  return new Ctor({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 30000, ...opts });
}

describe('limits on two stacks sharing one Redis', () => {
  let up, a, b, keys, ids;

  before(async () => {
    up = await h.fakeUpstream();
    up.handle((rec) => (rec.body && rec.body.stream ? { sse: h.textChunks(['hi']) }
                                                     : { json: h.completion({ content: 'hi' }) }));
    const env = { ADMIN_API_KEY: ADMIN };
    a = await h.startStack({ config: CONFIG, upstream: up, broker: false, env, threads: 16 });
    b = await h.startStack({ config: CONFIG, upstream: up, broker: false, env, threads: 16,
                             redisUrl: a.redisUrl, prefix: a.prefix });
    ({ keys, ids } = await createKeys(a));
  });
  after(async () => { await b?.stop(); await a?.stop(); await up?.close(); });

  test('rpm 10: of 15 requests at once over both stacks exactly 10 pass; the 429s say when to retry', async () => {
    const rs = await Promise.all(Array.from({ length: 15 }, (_, i) => chat(i % 2 ? b : a, keys.rpm10)));
    const ok = rs.filter((r) => r.status === 200);
    const limited = rs.filter((r) => r.status === 429);
    assert.equal(ok.length, 10, rs.map((r) => r.status).join(','));
    assert.equal(limited.length, 5);
    for (const r of limited) {
      assertLimited(r, 'rate_limit_exceeded');
      assert.match(r.json.error.message, /requests per minute.*limit 10/);
      assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
      assert.match(r.headers['retry-after-ms'], /^[1-9]\d*$/);
      assert.ok(Number(r.headers['retry-after-ms']) <= 6000, r.headers['retry-after-ms']);
      assert.equal(r.headers['x-ratelimit-limit-requests'], '10');
      assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
      assert.match(r.headers['x-ratelimit-reset-requests'], /^(\d+m)?\d+(\.\d+)?m?s$/);
    }
    // the official client, no retries: a RateLimitError
    await assert.rejects(openai(b, keys.rpm10).chat.completions.create(BODY), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.constructor.name, 'RateLimitError');
      assert.equal(e.code, 'rate_limit_exceeded');
      return true;
    });
  });

  test('rpm 60 spent: the official client with its default retries waits Retry-After and succeeds', async () => {
    const spent = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      h.request(`${(i % 2 ? b : a).url}/v1/models`, { headers: { authorization: `Bearer ${keys.rpm60}` } })));
    assert.deepEqual([...new Set(spent.map((r) => r.status))], [200], 'every request counts, /v1/models too');
    const statuses = [];
    const client = openai(a, keys.rpm60, {
      maxRetries: 2,
      fetch: async (url, init) => { const r = await fetch(url, init); statuses.push(r.status); return r; },
    });
    const res = await client.chat.completions.create(BODY);
    assert.equal(res.choices[0].message.content, 'hi');
    assert.equal(statuses[0], 429, statuses.join(','));
    assert.equal(statuses.at(-1), 200, statuses.join(','));
  });

  test('x-ratelimit-* headers on every answer of a limited key, decreasing; none for a static key', async () => {
    const seen = [];
    for (const s of [a, b, a]) {
      const r = await chat(s, keys.headers);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-ratelimit-limit-requests'], '100');
      assert.equal(r.headers['x-ratelimit-limit-tokens'], '100000');
      assert.match(r.headers['x-ratelimit-reset-requests'], /^\d+(\.\d+)?(ms|s)$/);
      assert.match(r.headers['x-ratelimit-reset-tokens'], /^\d+(\.\d+)?(ms|s)$/);
      seen.push(Number(r.headers['x-ratelimit-remaining-requests']));
      assert.ok(Number(r.headers['x-ratelimit-remaining-tokens']) <= 100000);
    }
    assert.deepEqual(seen, [99, 98, 97]);
    // a stream carries them too
    const st = await h.request(`${b.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${keys.headers}` }, body: { ...BODY, stream: true },
    });
    assert.equal(st.status, 200);
    assert.match(st.headers['content-type'], /event-stream/);
    assert.equal(st.headers['x-ratelimit-remaining-requests'], '96');
    // the tokens the upstream reported (11 + 7 a request) were charged: the
    // bucket's level, as the last charge left it, holds at least those 18
    const level = await a.redis('GET', `${a.prefix}lim:${ids.headers}:tpm`);
    assert.ok(Number(String(level).split(' ')[0]) >= 18, String(level));
    const s = await chat(a, STATIC);
    assert.equal(s.status, 200, s.text);
    assert.deepEqual(Object.keys(s.headers).filter((k) => k.startsWith('x-ratelimit') || k.startsWith('retry-after')), []);
  });

  // A key whose last verdict on a process left it room has its next
  // verdicts read beside the upstream call (fcgi/limit/limit.c,
  // limit__send_early): what the client sees must not change — the headers,
  // a whole answer or stream, and a refusal in the same shape when another
  // host spent the key meanwhile.
  test('a key with room: its verdict read beside the upstream call answers the same, and refuses the same once spent elsewhere', async () => {
    const r1 = await chat(a, keys.early);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.headers['x-ratelimit-remaining-requests'], '19');
    const r2 = await chat(a, keys.early);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.choices[0].message.content, 'hi');
    assert.equal(r2.headers['x-ratelimit-remaining-requests'], '18');
    const st = await h.request(`${a.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${keys.early}` }, body: { ...BODY, stream: true },
    });
    assert.equal(st.status, 200, st.text);
    assert.match(st.text, /"content":"hi"/);
    assert.match(st.text, /data: \[DONE\]/);
    assert.equal(st.headers['x-ratelimit-remaining-requests'], '17');
    for (let i = 0; i < 17; i++) assert.equal((await chat(b, keys.early)).status, 200);
    for (const stream of [false, true]) {
      const r = await chat(a, keys.early, { ...BODY, stream });
      assertLimited(r, 'rate_limit_exceeded');
      assert.match(r.headers['content-type'], /application\/json/);
      assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
      assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
      assert.ok(!/data:/.test(r.text), 'a refusal is one JSON error, never a stream');
    }
    // the official client reads it as RateLimitError
    await assert.rejects(openai(a, keys.early).chat.completions.create(BODY), (e) => e.status === 429);
  });

  test('tpm: once the upstream-reported usage spends the minute, the next request gets 429 until the bucket refills', async () => {
    up.enqueue({ json: h.completion({ content: 'big', usage: { prompt_tokens: 3000, completion_tokens: 3100, total_tokens: 6100 } }) });
    const first = await chat(a, keys.tpm);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '6000');
    const second = await chat(b, keys.tpm);
    assertLimited(second, 'rate_limit_exceeded');
    assert.match(second.json.error.message, /tokens per minute \(TPM\): limit 6000/);
    assert.equal(second.headers['x-ratelimit-remaining-tokens'], '0');
    assert.ok(Number(second.headers['retry-after-ms']) > 0);
    assert.ok(Number(second.headers['retry-after-ms']) <= 1100, second.headers['retry-after-ms']);
    // 100 tokens a second flow back: the debt of 100 is gone within about a second
    const later = await h.waitFor(async () => {
      const r = await chat(b, keys.tpm);
      return r.status === 200 ? r : null;
    }, { timeoutMs: 5000, intervalMs: 100, what: 'the tpm bucket to refill' });
    assert.ok(Number(later.headers['x-ratelimit-remaining-tokens']) >= 1);
  });

  test('a daily token budget that runs out mid-day: 429 insufficient_quota with x-should-retry: false on both stacks', async () => {
    up.enqueue({ json: h.completion({ content: 'spend', usage: { prompt_tokens: 60, completion_tokens: 60, total_tokens: 120 } }) });
    const first = await chat(a, keys.budget);
    assert.equal(first.status, 200, first.text);
    for (const s of [b, a]) {
      const r = await chat(s, keys.budget);
      assertLimited(r, 'insufficient_quota');
      assert.match(r.json.error.message, /Daily token budget spent: 120 of 100 tokens/);
      assert.equal(r.headers['x-should-retry'], 'false');
      const ra = Number(r.headers['retry-after']);
      assert.ok(ra >= 1 && ra <= 86400, r.headers['retry-after']);
    }
    const sdk = openai(b, keys.budget, { maxRetries: 2 });
    await assert.rejects(sdk.chat.completions.create(BODY), (e) => e.status === 429 && e.code === 'insufficient_quota');
  });

  test('max_concurrent 1: a second request while a stream is held gets 429; once it ends the next passes', async () => {
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    const n0 = up.requests.length;
    up.enqueue(async () => {
      await held;
      return { sse: h.textChunks(['slow ', 'answer'], { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }) };
    });
    const first = h.request(`${a.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${keys.conc}` }, body: { ...BODY, stream: true },
    });
    await up.waitRequests(n0 + 1);
    const second = await chat(b, keys.conc);
    assertLimited(second, 'rate_limit_exceeded');
    assert.match(second.json.error.message, /concurrent requests: limit 1/);
    assert.ok(second.headers['retry-after']);
    release();
    const done = await first;
    assert.equal(done.status, 200);
    assert.match(done.text, /answer/);
    const third = await chat(b, keys.conc);
    assert.equal(third.status, 200, third.text);
  });

  test('/v1/messages over the limit: an Anthropic-shaped 429 (@anthropic-ai/sdk raises RateLimitError)', async () => {
    const Anthropic = require('@anthropic-ai/sdk');
    const client = new Anthropic({ apiKey: keys.messages, baseURL: b.url, maxRetries: 0, timeout: 30000 });
    const msg = { model: 'helper', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };
    const ok = await client.messages.create(msg);
    assert.equal(ok.content[0].text, 'hi');
    await assert.rejects(client.messages.create(msg), (e) => {
      assert.ok(e instanceof Anthropic.RateLimitError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 429);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'rate_limit_error');
      assert.ok(e.headers['retry-after'] || (e.headers.get && e.headers.get('retry-after')));
      return true;
    });
  });

  // Redis answers the limiter's script with an error (a key of the wrong
  // type stands in for any failure: the auth lookup keeps working, so the
  // limiter's own choice is what the client sees).
  test('Redis fails the limiter: rate limits fail open, a budget fails closed with 503', async () => {
    await breakLimits(a, ids.failRate, false);
    await breakLimits(a, ids.failBudget, true);
    const r = await chat(a, keys.failRate);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-ratelimit-limit-requests'], undefined, 'no numbers when nothing was counted');
    const c = await chat(b, keys.failBudget);
    assert.equal(c.status, 503, c.text);
    assert.equal(c.json.error.code, 'limits_unavailable');
    assert.match(c.json.error.message, /token budget/);
    assert.ok(c.headers['retry-after']);
    assert.ok(!c.text.includes(keys.failBudget));
    await h.waitFor(() => /limits: Redis could not count/.test(a.logs('fcgi') + b.logs('fcgi')),
                    { timeoutMs: 5000, what: 'the fail-open/closed warning' });
  });
});

describe('limits: settings.limits flips fail open/closed', () => {
  let up, s, keys, ids;

  before(async () => {
    up = await h.fakeUpstream();
    up.handle(() => ({ json: h.completion({ content: 'hi' }) }));
    s = await h.startStack({
      config: `${CONFIG}limits: {fail_open_rate: false, fail_open_budget: true}\n`,
      upstream: up, broker: false, env: { ADMIN_API_KEY: ADMIN },
    });
    ({ keys, ids } = await createKeys(s, ['failRate', 'budget']));
  });
  after(async () => { await s?.stop(); await up?.close(); });

  test('rate limits fail closed, a budget alone fails open', async () => {
    await breakLimits(s, ids.failRate, false);
    await breakLimits(s, ids.budget, true);
    const r = await chat(s, keys.failRate);
    assert.equal(r.status, 503, r.text);
    assert.match(r.json.error.message, /rate limits/);
    assert.equal((await chat(s, keys.budget)).status, 200);
  });
});

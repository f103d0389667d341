'use strict';
// Issue 6: the admin API on two gateway stacks sharing one Redis — edits made
// through one are served by the other; validation errors; secrets never shown.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');

// The live children of `pid`: [{pid, cmdline}] read from /proc.
function childrenOf(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      out.push({ pid: Number(d), cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ') });
    } catch (_) { /* gone meanwhile */ }
  }
  return out;
}

const ADMIN = 'admin-key-0123456789';
const UPSTREAM_SECRET = 'sk-upstream-very-secret-42';
const HEADER_SECRET = 'hdr-secret-token-77';
const PROXY_KEY = 'sk-proxy-client-key-9';
const ENV_SECRET = 'sk-from-env-secret-55';

const CONFIG = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: ${UPSTREAM_SECRET}
    default_headers:
      Authorization: Bearer ${HEADER_SECRET}
      X-Trace: visible
  envy:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: \${ADMIN_TEST_ENV_KEY}
mcp_servers:
  demo:
    transport: stdio
    command: \${MCP_DEMO}
assistants:
  - name: helper
    backend: fake
    model: up-model
    mcp_servers: [demo]
  - name: other
    backend: envy
    model: up-model
proxy_api_keys:
  - ${PROXY_KEY}
`;

const SECRETS = [UPSTREAM_SECRET, HEADER_SECRET, PROXY_KEY, ENV_SECRET];

function admin(stack, method, p, body, key = ADMIN) {
  const headers = key ? { authorization: `Bearer ${key}` } : {};
  return h.request(`${stack.url}${p}`, { method, headers, body });
}

async function modelIds(stack) {
  const r = await h.request(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${PROXY_KEY}` } });
  assert.equal(r.status, 200, r.text);
  return r.json.data.map((m) => m.id).sort();
}

describe('admin API across two stacks on one Redis', () => {
  let up; let s1; let s2;
  const hasBroker = fs.existsSync(path.join(h.binDir(), 'mcp-broker'));

  before(async () => {
    up = await h.fakeUpstream();
    const env = { ADMIN_API_KEY: ADMIN, ADMIN_TEST_ENV_KEY: ENV_SECRET };
    // Stack 1's operator lets the admin API run mcp-demo (issue 11); stack 2
    // keeps the default: the admin API may set no stdio command at all.
    s1 = await h.startStack({ config: CONFIG, upstream: up, broker: hasBroker,
                              env: { ...env, AIPROXY_MCP_COMMANDS: `/bin/true:${h.binDir()}/mcp-*` } });
    s2 = await h.startStack({ config: CONFIG, upstream: up, broker: hasBroker,
                              env: { ...env, AIPROXY_MCP_COMMANDS: null }, redisUrl: s1.redisUrl });
  });
  after(async () => {
    if (s2) await s2.stop();
    if (s1) await s1.stop();
    if (up) await up.close();
  });

  test('no or wrong admin key: 401 with WWW-Authenticate: Bearer; /v1 keys do not open /admin', async () => {
    for (const key of [null, 'wrong', PROXY_KEY, `${ADMIN}x`]) {
      const r = await admin(s1, 'GET', '/admin/config', undefined, key);
      h.assertOpenAIError(assert, r, 401, { type: 'authentication_error' });
      assert.equal(r.headers['www-authenticate'], 'Bearer');
    }
    const bare = await h.request(`${s1.url}/admin/config`, { headers: { authorization: ADMIN } });
    assert.equal(bare.status, 401);
  });

  test('GET /admin/config: the registry and auth providers, no secret anywhere', async () => {
    const r = await admin(s1, 'GET', '/admin/config');
    assert.equal(r.status, 200, r.text);
    for (const s of SECRETS) assert.ok(!r.text.includes(s), `secret ${s} shown: ${r.text}`);
    assert.equal(r.json.backends.fake.api_key, '***');
    assert.equal(r.json.backends.fake.default_headers.Authorization, '***');
    assert.equal(r.json.backends.fake.default_headers['X-Trace'], 'visible');
    assert.equal(r.json.backends.envy.api_key, '${ADMIN_TEST_ENV_KEY}');
    assert.deepEqual(r.json.settings.proxy_api_keys, ['***']);
    assert.ok(Array.isArray(r.json.auth));
    assert.equal(r.json.auth[0].type, 'static');
    assert.ok(Number.isInteger(r.json.version));
  });

  test('GET /admin/config?format=yaml: a config with references, no secret', async () => {
    const r = await admin(s1, 'GET', '/admin/config?format=yaml');
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /yaml/);
    for (const s of SECRETS) assert.ok(!r.text.includes(s), `secret ${s} shown: ${r.text}`);
    assert.match(r.text, /\$\{ADMIN_TEST_ENV_KEY\}/);
    assert.match(r.text, /assistants:/);
  });

  test('GET lists and items are redacted too', async () => {
    const l = await admin(s1, 'GET', '/admin/backends');
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(Object.keys(l.json).sort(), ['envy', 'fake']);
    for (const s of SECRETS) assert.ok(!l.text.includes(s));
    const one = await admin(s1, 'GET', '/admin/backends/fake');
    assert.equal(one.status, 200);
    assert.equal(one.json.api_key, '***');
    assert.equal((await admin(s1, 'GET', '/admin/assistants')).json.helper.backend, 'fake');
    assert.ok((await admin(s1, 'GET', '/admin/mcp')).json.demo);
  });

  test('PUT an assistant on one stack: the other lists it and answers with it; DELETE removes it on both', async () => {
    const put = await admin(s1, 'PUT', '/admin/assistants/fresh',
                            { backend: 'fake', model: 'up-fresh', description: 'made live' });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.json.name, 'fresh');
    await h.waitFor(async () => (await modelIds(s2)).includes('fresh'),
                    { timeoutMs: 1000, what: 'stack 2 to list the new assistant' });
    up.enqueue({ json: h.completion({ content: 'fresh answer' }) });
    const client = s2.openai({ apiKey: PROXY_KEY });
    const res = await client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(res.choices[0].message.content, 'fresh answer');
    assert.equal(up.requests[up.requests.length - 1].body.model, 'up-fresh');

    const again = await admin(s2, 'PUT', '/admin/assistants/fresh',
                              { name: 'fresh', backend: 'fake', model: 'up-fresh-2' });
    assert.equal(again.status, 200, again.text);

    const del = await admin(s2, 'DELETE', '/admin/assistants/fresh');
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.deleted, true);
    await h.waitFor(async () => !(await modelIds(s1)).includes('fresh'),
                    { timeoutMs: 1000, what: 'stack 1 to drop the deleted assistant' });
    assert.ok(!(await modelIds(s2)).includes('fresh'));
    h.assertOpenAIError(assert, await admin(s1, 'DELETE', '/admin/assistants/fresh'), 404);
  });

  test('PUT a backend and an MCP server; secrets in the answer are redacted', async () => {
    const b = await admin(s1, 'PUT', '/admin/backends/extra',
                          { kind: 'openai', base_url: up.baseURL, api_key: 'sk-put-secret-1' });
    assert.equal(b.status, 201, b.text);
    assert.equal(b.json.api_key, '***');
    const m = await admin(s1, 'PUT', '/admin/mcp/extra-mcp', { transport: 'http', url: 'http://127.0.0.1:9/mcp' });
    assert.equal(m.status, 201, m.text);
    const cfg = await admin(s2, 'GET', '/admin/config');
    assert.ok(cfg.json.backends.extra);
    assert.ok(!cfg.text.includes('sk-put-secret-1'));
    assert.equal((await admin(s2, 'DELETE', '/admin/backends/extra')).status, 200);
    assert.equal((await admin(s2, 'DELETE', '/admin/mcp/extra-mcp')).status, 200);
  });

  test('a GET answer PUT back keeps the stored secrets', async () => {
    const shown = (await admin(s1, 'GET', '/admin/backends/fake')).json;
    assert.equal(shown.api_key, '***');
    const put = await admin(s1, 'PUT', '/admin/backends/fake', { ...shown, timeout: 120 });
    assert.equal(put.status, 200, put.text);
    up.enqueue({ json: h.completion({ content: 'still keyed' }) });
    const res = await s2.openai({ apiKey: PROXY_KEY }).chat.completions.create({
      model: 'other', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(res.choices[0].message.content, 'still keyed');
    // an assistant on the edited backend without MCP servers (no broker needed)
    assert.equal((await admin(s1, 'PUT', '/admin/assistants/keyed', { backend: 'fake', model: 'k' })).status, 201);
    up.enqueue({ json: h.completion({ content: 'keyed' }) });
    await s2.openai({ apiKey: PROXY_KEY }).chat.completions.create({
      model: 'keyed', messages: [{ role: 'user', content: 'x' }] });
    const last = up.requests[up.requests.length - 1];
    assert.equal(last.headers.authorization, `Bearer ${UPSTREAM_SECRET}`);
    assert.equal((await admin(s2, 'GET', '/admin/backends/fake')).json.timeout, 120);
    assert.equal((await admin(s2, 'DELETE', '/admin/assistants/keyed')).status, 200);
  });

  // Issue 15: tool_images on backends (default by kind) and assistants (null: the backend's).
  test('tool_images: defaults by kind, set and checked like other fields', async () => {
    assert.equal((await admin(s1, 'GET', '/admin/backends/fake')).json.tool_images, false);
    let r = await admin(s1, 'PUT', '/admin/backends/vision', { kind: 'anthropic', base_url: 'http://127.0.0.1:1' });
    assert.equal(r.status, 201, r.text);
    assert.equal((await admin(s1, 'GET', '/admin/backends/vision')).json.tool_images, true);
    r = await admin(s1, 'PUT', '/admin/assistants/seer', { backend: 'vision', model: 'm', tool_images: false });
    assert.equal(r.status, 201, r.text);
    assert.equal((await admin(s1, 'GET', '/admin/assistants/seer')).json.tool_images, false);
    r = await admin(s1, 'PUT', '/admin/assistants/seer', { backend: 'vision', model: 'm' });
    assert.equal(r.status, 200, r.text);
    assert.equal((await admin(s1, 'GET', '/admin/assistants/seer')).json.tool_images, null);
    for (const [p, body] of [['/admin/backends/vision', { kind: 'openai', tool_images: 'yes' }],
                             ['/admin/assistants/seer', { backend: 'vision', model: 'm', tool_images: 1 }]]) {
      const e = h.assertOpenAIError(assert, await admin(s1, 'PUT', p, body), 422, { type: 'invalid_request_error' });
      assert.equal(e.param, 'tool_images', e.message);
    }
    assert.equal((await admin(s1, 'DELETE', '/admin/assistants/seer')).status, 200);
    assert.equal((await admin(s1, 'DELETE', '/admin/backends/vision')).status, 200);
  });

  test('validation: 422 naming the field, 400 for a body that is not a JSON object', async () => {
    const cases = [
      ['/admin/assistants/x', { backend: 'fake', model: 'm', colour: 'red' }, 'colour'],
      ['/admin/assistants/x', { backend: 'fake', model: 7 }, 'model'],
      ['/admin/assistants/x', { backend: 'nope', model: 'm' }, 'backend'],
      ['/admin/assistants/x', { backend: 'fake', model: 'm', mcp_servers: ['ghost'] }, 'mcp_servers'],
      ['/admin/assistants/x', { name: 'y', backend: 'fake', model: 'm' }, 'name'],
      ['/admin/assistants/x', { backend: 'fake', model: 'm', stream_keepalive_ms: -1 }, 'stream_keepalive_ms'],
      ['/admin/assistants/x', { backend: 'fake', model: 'm', stream_keepalive_ms: '5s' }, 'stream_keepalive_ms'],
      ['/admin/backends/x', { kind: 'cobol', base_url: 'http://x' }, 'kind'],
      ['/admin/mcp/x', { transport: 'stdio' }, 'command'],
      ['/admin/mcp/x', { transport: 'http' }, 'url'],
      ['/admin/mcp/x', { transport: 'http', url: 'http://x/mcp', max_timeout: 0 }, 'max_timeout'],
      ['/admin/mcp/x', { transport: 'http', url: 'http://x/mcp', timeout: 30, max_timeout: 10 }, 'max_timeout'],
    ];
    for (const [p, body, field] of cases) {
      const r = await admin(s1, 'PUT', p, body);
      const e = h.assertOpenAIError(assert, r, 422, { type: 'invalid_request_error' });
      assert.ok(e.param && e.param.startsWith(field), `${p} ${JSON.stringify(body)}: param ${e.param}, ${e.message}`);
    }
    for (const raw of ['', 'not json', '[1]', '{"model":']) {
      const r = await admin(s1, 'PUT', '/admin/assistants/x', raw);
      h.assertOpenAIError(assert, r, 400);
    }
    assert.ok(!(await modelIds(s1)).includes('x'));
  });

  // Issue 11: the admin key is not a shell on the broker hosts.
  test('stdio commands through the admin API: only what AIPROXY_MCP_COMMANDS allows, 422 otherwise', async () => {
    const demo = path.join(h.binDir(), 'mcp-demo');
    for (const [stack, body] of [
      [s1, { command: '/bin/sh', args: ['-c', 'id > /tmp/pwned'] }],
      [s1, { transport: 'stdio', command: 'sh' }],
      [s1, { transport: 'http', url: 'http://127.0.0.1:9/mcp', command: '/bin/sh' }],
      [s2, { command: demo }],          // stack 2: no allow-list, nothing passes
    ]) {
      const r = await admin(stack, 'PUT', '/admin/mcp/shell', body);
      const e = h.assertOpenAIError(assert, r, 422, { type: 'invalid_request_error' });
      assert.equal(e.param, 'command', r.text);
      assert.match(e.message, /AIPROXY_MCP_COMMANDS/);
      h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/mcp/shell'), 404);
    }
    const ok = await admin(s1, 'PUT', '/admin/mcp/allowed', { command: demo });
    assert.equal(ok.status, 201, ok.text);
    const t = await admin(s1, 'PUT', '/admin/mcp/allowed2', { command: '/bin/true' });
    assert.equal(t.status, 201, t.text);
    // the config file's own stdio server is untouched by the allow-list
    assert.equal((await admin(s2, 'GET', '/admin/mcp/demo')).status, 200);
    assert.equal((await admin(s1, 'DELETE', '/admin/mcp/allowed')).status, 200);
    assert.equal((await admin(s1, 'DELETE', '/admin/mcp/allowed2')).status, 200);
  });

  // Issue 11: names are one path segment. nginx hands us REQUEST_URI as sent
  // (curl --path-as-is keeps "../" on the wire), so every form reaches us.
  test('names with "..", "/", "%2F" or "%2E%2E" are refused with 422 (param name), plain or encoded', async () => {
    const paths = [
      '/admin/assistants/../backends/x', '/admin/assistants/..', '/admin/assistants/.',
      '/admin/assistants/a//b', '/admin/assistants/team/gpt', '/admin/assistants/..%2Fbackends%2Fx',
      '/admin/assistants/%2E%2E', '/admin/assistants/%2e%2e%2fbackends%2fx', '/admin/backends/a%2Fb',
      '/admin/mcp/.hidden', '/admin/backends/a:b',
    ];
    const before = Object.keys((await admin(s1, 'GET', '/admin/assistants')).json).sort();
    for (const p of paths) {
      const r = await h.curl(['--path-as-is', '-X', 'PUT', '-H', `authorization: Bearer ${ADMIN}`,
                              '-H', 'content-type: application/json',
                              '--data', JSON.stringify({ kind: 'openai', backend: 'fake', model: 'm' }),
                              `${s1.url}${p}`]);
      assert.equal(r.status, 422, `${p}: ${r.status} ${r.text}`);
      const e = r.json && r.json.error;
      assert.ok(e && e.type === 'invalid_request_error' && e.param === 'name', `${p}: ${r.text}`);
      assert.ok('code' in e && 'message' in e, r.text);
    }
    assert.deepEqual(Object.keys((await admin(s1, 'GET', '/admin/assistants')).json).sort(), before);
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/backends/x'), 404);
    // and a name that follows the rule still works
    const put = await admin(s1, 'PUT', '/admin/assistants/gpt-4o.mini_2', { backend: 'fake', model: 'm' });
    assert.equal(put.status, 201, put.text);
    assert.equal((await admin(s1, 'DELETE', '/admin/assistants/gpt-4o.mini_2')).status, 200);
  });

  test('404 for unknown things, 405 for wrong methods, 409 for what is still used', async () => {
    h.assertOpenAIError(assert, await admin(s1, 'DELETE', '/admin/backends/ghost'), 404);
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/assistants/ghost'), 404);
    h.assertOpenAIError(assert, await admin(s1, 'GET', '/admin/nothing'), 404);
    h.assertOpenAIError(assert, await admin(s1, 'POST', '/admin/assistants/x', {}), 405);
    h.assertOpenAIError(assert, await admin(s1, 'PUT', '/admin/config', {}), 405);
    const b = await admin(s1, 'DELETE', '/admin/backends/fake');
    const e = h.assertOpenAIError(assert, b, 409);
    assert.match(e.message, /helper/);
    const m = await admin(s1, 'DELETE', '/admin/mcp/demo');
    assert.match(h.assertOpenAIError(assert, m, 409).message, /helper/);
    assert.ok((await admin(s2, 'GET', '/admin/backends/fake')).status === 200);
  });

  test('replacing an MCP server\'s command: the next tool listing comes from the new process', { skip: !hasBroker && 'mcp-broker not built' }, async () => {
    const names = async (stack) => {
      const r = await admin(stack, 'GET', '/admin/mcp/demo/tools');
      assert.equal(r.status, 200, r.text);
      return r.json.data.map((t) => t.name);
    };
    assert.ok(!(await names(s1)).includes('sleep'), 'mcp-demo without --test-tools has no sleep tool');
    // the mcp-demo processes the two brokers run (one owns the server)
    const demos = () => [s1, s2].flatMap((st) => childrenOf(st.procs.broker.pid))
      .filter((c) => /mcp-demo/.test(c.cmdline));
    const before = demos();
    assert.equal(before.length, 1, JSON.stringify(before));
    const cur = (await admin(s1, 'GET', '/admin/mcp/demo')).json;
    const put = await admin(s1, 'PUT', '/admin/mcp/demo', { ...cur, args: ['--test-tools'] });
    assert.equal(put.status, 200, put.text);
    // mcp-demo --test-tools advertises sleep(): only a restarted process has it
    await h.waitFor(async () => (await names(s2)).includes('sleep'),
                    { timeoutMs: 10000, what: 'the replaced MCP server to advertise sleep' });
    assert.ok((await names(s1)).includes('sleep'));
    // the new process runs with the new args, and the old one is gone from
    // /proc: exited AND reaped (a zombie would still be listed there)
    const after = demos();
    assert.equal(after.length, 1, JSON.stringify(after));
    assert.match(after[0].cmdline, /--test-tools/);
    assert.notEqual(after[0].pid, before[0].pid);
    await h.waitFor(() => !fs.existsSync(`/proc/${before[0].pid}`),
                    { timeoutMs: 10000, what: `the old mcp-demo (pid ${before[0].pid}) to be reaped` });
  });
});

describe('admin API without ADMIN_API_KEY', () => {
  let up; let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
assistants:
  - name: helper
    backend: fake
    model: m
`, upstream: up, broker: false, env: { ADMIN_API_KEY: null } });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('is disabled: 403 telling what to set, whatever the credentials', async () => {
    for (const key of [null, 'anything', '']) {
      const r = await admin(stack, 'GET', '/admin/config', undefined, key);
      const e = h.assertOpenAIError(assert, r, 403, { type: 'permission_error' });
      assert.match(e.message, /ADMIN_API_KEY/);
    }
  });
});

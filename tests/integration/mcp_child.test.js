'use strict';
// Issue 11, finding A1: what a stdio MCP server's process gets from the
// broker. One /v1 request that has server-everything's get-env tool called
// used to hand the client OPENAI_API_KEY, ANTHROPIC_API_KEY, ADMIN_API_KEY
// and REDIS_URL. Now the child sees the short list of docs/security.md, its
// inherit_env and its env; and a broker running as root runs it as nobody.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const h = require('./lib');
const { NODE22, EVERYTHING } = require('./lib/everything');
const { mcpUserCanReachRepo } = require('./lib/util');

const ADMIN = 'adm-canary-key-3';
const CANARIES = {
  OPENAI_API_KEY: 'sk-canary-openai-1',
  ANTHROPIC_API_KEY: 'sk-canary-anthropic-2',
  ADMIN_API_KEY: ADMIN,
  BACKEND_KEY: 'sk-canary-backend-6',          // what the backend's api_key reads
  NOT_LISTED: 'canary-not-listed-5',
  AIPROXY_CANARY: 'canary-aiproxy-8',
};

// The status fields of a process: {Uid: [real, effective, saved, fs], Gid, Groups}.
function procStatus(pid) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(Uid|Gid|Groups):\s*(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().split(/\s+/).filter(Boolean).map(Number);
  }
  return out;
}

test('a stdio MCP server sees no gateway secret, gets inherit_env and env, and runs unprivileged', { timeout: 120000 }, async (t) => {
  const up = await h.fakeUpstream();
  const stack = await h.startStack({
    upstream: up,
    env: { ...CANARIES, PASS_ME: 'passed-through-4' },
    config: `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: \${BACKEND_KEY}
mcp_servers:
  ev:
    command: ${NODE22}
    args: [${EVERYTHING}, stdio]
    inherit_env: [PASS_ME]
    env: {FROM_CONFIG: cfg-value-7}
    timeout: 30
assistants:
  - {name: ev-helper, backend: fake, model: m, mcp_servers: [ev]}
`,
  });
  t.after(async () => {
    await stack.stop();
    await up.close();
  });

  let toolText = null;
  up.enqueue((rec) => {
    const offered = (rec.body.tools || []).map((x) => x.function.name);
    assert.ok(offered.includes('ev__get-env'), `tools offered: ${offered}`);
    return { json: h.completion({ tool_calls: [{ id: 'call_env', name: 'ev__get-env', arguments: {} }] }) };
  });
  up.enqueue((rec) => {
    const result = rec.body.messages.find((m) => m.role === 'tool' && m.tool_call_id === 'call_env');
    toolText = result ? String(result.content) : null;
    return { json: h.completion({ content: 'done' }) };
  });
  const r = await stack.openai().chat.completions.create({
    model: 'ev-helper', messages: [{ role: 'user', content: 'print your environment' }],
  });
  assert.equal(r.choices[0].message.content, 'done');
  assert.ok(toolText, 'no tool result reached the upstream');

  await t.test('no key, no REDIS_URL, nothing unlisted reaches the child', () => {
    for (const [name, value] of Object.entries(CANARIES)) {
      assert.ok(!toolText.includes(value), `${name}'s value reached the MCP server: ${toolText}`);
    }
    const env = JSON.parse(toolText.slice(toolText.indexOf('{'), toolText.lastIndexOf('}') + 1));
    for (const name of ['REDIS_URL', 'AIPROXY_REDIS_PREFIX', 'AIPROXY_HOME', ...Object.keys(CANARIES)]) {
      assert.ok(!(name in env), `${name} reached the MCP server`);
    }
    assert.ok(!toolText.includes(stack.redisUrl), 'the Redis URL reached the MCP server');
    assert.equal(env.PASS_ME, 'passed-through-4', 'inherit_env did not pass PASS_ME');
    assert.equal(env.FROM_CONFIG, 'cfg-value-7', 'the server env did not apply');
    assert.ok(env.PATH, 'PATH is on the short list');
  });

  await t.test('as root, the child runs as nobody with nobody\'s identity', { skip: (process.getuid() !== 0 && 'tests are not running as root') || (!mcpUserCanReachRepo() && 'nobody cannot enter this checkout, so the stacks keep MCP children as root') }, () => {
    const m = /mcp server 'ev': started '[^']*' \(pid (\d+), user (\S+)\)/.exec(stack.logs('broker'));
    assert.ok(m, `no start line with a user in the broker log:\n${stack.logs('broker')}`);
    const pid = Number(m[1]);
    assert.equal(m[2], 'nobody');
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
    const st = procStatus(pid);
    assert.deepEqual(st.Uid, [uid, uid, uid, uid], JSON.stringify(st));
    assert.deepEqual(st.Gid, [gid, gid, gid, gid], JSON.stringify(st));
    assert.deepEqual(st.Groups, [], 'supplementary groups were kept');
    const env = JSON.parse(toolText.slice(toolText.indexOf('{'), toolText.lastIndexOf('}') + 1));
    assert.equal(env.USER, 'nobody');
    assert.notEqual(env.HOME, '/root');
  });

  await t.test('inherit_env: a gateway secret is refused (422); the list round-trips through the export', async () => {
    const auth = { authorization: `Bearer ${ADMIN}` };
    const bad = await h.request(`${stack.url}/admin/mcp/leaky`, {
      method: 'PUT', headers: auth, body: { command: NODE22, inherit_env: ['OPENAI_API_KEY'] } });
    const e = h.assertOpenAIError(assert, bad, 422, { type: 'invalid_request_error' });
    assert.equal(e.param, 'inherit_env[0]');
    const y = await h.request(`${stack.url}/admin/config?format=yaml`, { headers: auth });
    assert.equal(y.status, 200, y.text);
    assert.match(y.text, /inherit_env:\n\s+- "PASS_ME"/);
  });
});

'use strict';
// Issue 13 item 5: tool limits checked early, and per-assistant allow/deny
// lists. Through nginx, with mcp-demo advertising extra tools
// (MCP_DEMO_EXTRA_TOOLS): 129 tools are refused by the admin API (422) and by
// the config loader (exit 1 naming the assistant and the count); a catalog
// that grows past the cap (list_changed) gives 502 too_many_tools; a client
// whose tools do not fit gets 400 param tools; allow/deny lists decide what
// the model (the fake upstream) is offered; GET /admin/assistants/{name}/tools
// lists the offered names and where each comes from.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const h = require('./lib');

const ADMIN = 'admin-key-toolcap-0123456789';
const hasBroker = fs.existsSync(path.join(h.binDir(), 'mcp-broker'));
const DEMO = path.join(h.binDir(), 'mcp-demo');

// aiproxy-fcgi with the stack's Redis; resolves {code, stdout, stderr}.
function runFcgi(stack, args, timeoutMs = 90000) {
  return new Promise((resolve) => {
    execFile(path.join(h.binDir(), 'aiproxy-fcgi'), args,
             { env: stack.env(), cwd: stack.dir, timeout: timeoutMs },
             (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0,
                                                stdout, stderr }));
  });
}

describe('tool cap and allow/deny lists', { skip: !hasBroker && 'mcp-broker not built' }, () => {
  let stack, up, growFile;
  let demoTools;   // the tools of mcp-demo --test-tools, as the broker lists them
  const admin = (p, method = 'GET', body) => h.request(`${stack.url}/admin${p}`, {
    method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const chat = (model, extra = {}) => h.request(`${stack.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });

  before(async () => {
    // a file the grow server reads its extra-tool count from at every listing;
    // in /tmp itself so the user stdio servers run as can read it
    growFile = path.join(os.tmpdir(), `aiproxy-toolcap-${process.pid}-${Date.now()}`);
    fs.writeFileSync(growFile, '0\n', { mode: 0o644 });
    fs.chmodSync(growFile, 0o644);
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, args: [--test-tools]}
  big: {transport: stdio, command: \${MCP_DEMO}, env: {MCP_DEMO_EXTRA_TOOLS: "126"}}
  grow: {transport: stdio, command: \${MCP_DEMO}, args: [--test-tools],
         env: {MCP_DEMO_EXTRA_TOOLS: "${growFile}"}}
assistants:
  - {name: picky, backend: fake, model: m, mcp_servers: [demo],
     tools: {allow: ['demo__*'], deny: ['demo__crash', 'demo__h*']}}
  - {name: bigsome, backend: fake, model: m, mcp_servers: [big],
     tools: {allow: ['big__extra_1*']}}
  - {name: grower, backend: fake, model: m, mcp_servers: [grow]}
`, upstream: up, env: { ADMIN_API_KEY: ADMIN } });
  });
  before(async () => {
    const r = await admin('/mcp/demo/tools');
    assert.equal(r.status, 200, r.text);
    demoTools = r.json.data.map((t) => t.name);
    assert.ok(demoTools.includes('crash') && demoTools.includes('hang') && demoTools.includes('notify'));
  });
  after(async () => {
    await stack?.stop();
    await up?.close();
    if (growFile) fs.rmSync(growFile, { force: true });
  });

  test('only the allowed, not denied tools are offered to the model', async () => {
    up.enqueue({ json: h.completion({ content: 'fine' }) });
    const n = up.requests.length;
    const r = await chat('picky');
    assert.equal(r.status, 200, r.text);
    const sent = up.requests[n].body;
    const names = sent.tools.map((t) => t.function.name).sort();
    const want = demoTools.filter((t) => !['crash', 'hang'].includes(t))
      .map((t) => `demo__${t}`).sort();
    assert.deepEqual(names, want);
  });

  test('an allow-list brings a 129-tool server under the cap', async () => {
    up.enqueue({ json: h.completion({ content: 'fine' }) });
    const n = up.requests.length;
    const r = await chat('bigsome');
    assert.equal(r.status, 200, r.text);
    // of extra_0..extra_125: extra_1, extra_10..19, extra_100..125
    assert.equal(up.requests[n].body.tools.length, 1 + 10 + 26);
  });

  test('GET /admin/assistants/{name}/tools lists offered names and their source', async () => {
    const r = await admin('/assistants/picky/tools');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.assistant, 'picky');
    assert.equal(r.json.max_tools, 128);
    assert.equal(r.json.count, demoTools.length - 2);
    assert.equal(r.json.over_cap, false);
    assert.deepEqual(r.json.unavailable, []);
    const byTool = Object.fromEntries(r.json.data.map((t) => [t.tool, t]));
    assert.deepEqual(byTool.add, { name: 'demo__add', server: 'demo', tool: 'add', offered: true });
    assert.deepEqual(byTool.crash, { name: null, server: 'demo', tool: 'crash', offered: false,
                                     filtered_by: 'tools.deny' });
    assert.equal(r.json.data.length, demoTools.length);
    const unknown = await admin('/assistants/nobody/tools');
    h.assertOpenAIError(assert, unknown, 404, {});
    const put = await admin('/assistants/picky/tools', 'PUT', {});
    h.assertOpenAIError(assert, put, 405, {});
  });

  test('the admin API refuses an assistant offering 129 tools with 422', async () => {
    const body = { backend: 'fake', model: 'm', mcp_servers: ['big'] };
    const r = await admin('/assistants/huge', 'PUT', body);
    const e = h.assertOpenAIError(assert, r, 422, { type: 'invalid_request_error' });
    assert.equal(e.code, 'too_many_tools');
    assert.equal(e.param, 'tools');
    assert.match(e.message, /assistant 'huge' offers 129 tools \(big: 129\)/);
    assert.match(e.message, /more than the 128/);
    assert.match(e.message, /tools\.allow/);
    assert.equal((await admin('/assistants/huge')).status, 404, 'nothing was written');
    // a bad glob type is a validation error naming the field
    const bad = await admin('/assistants/huge', 'PUT', { ...body, tools: { allow: [7] } });
    const be = h.assertOpenAIError(assert, bad, 422, {});
    assert.equal(be.param, 'tools.allow[0]');
    // its own higher cap, or a deny-list, lets it in
    const raised = await admin('/assistants/huge', 'PUT', { ...body, max_tools: 200 });
    assert.equal(raised.status, 201, raised.text);
    const denied = await admin('/assistants/huge', 'PUT',
                               { ...body, tools: { deny: ['big__extra_12*'] } });
    assert.equal(denied.status, 200, denied.text);
    assert.equal((await admin('/assistants/huge', 'DELETE')).status, 200);
  });

  test('the config loader refuses a file whose assistant offers 129 tools', async () => {
    const file = path.join(stack.dir, 'toolcap-bad.yaml');
    fs.writeFileSync(file, `
backends:
  fake: {kind: openai, base_url: ${up.baseURL}, api_key: sk-x}
mcp_servers:
  big: {transport: stdio, command: ${DEMO}, env: {MCP_DEMO_EXTRA_TOOLS: "126"}}
assistants:
  - {name: huge, backend: fake, model: m, mcp_servers: [big]}
`);
    const check = await runFcgi(stack, ['-c', file, '--check']);
    assert.equal(check.code, 1, `--check passed:\n${check.stdout}${check.stderr}`);
    assert.match(check.stderr, /toolcap-bad\.yaml: assistants\.huge: assistant 'huge' offers 129 tools/);
    assert.doesNotMatch(check.stderr, /Sanitizer|runtime error/);
    // starting with it: refused before anything is seeded or served
    const start = await runFcgi(stack, ['-c', file, '--reseed', '-s', `unix:${path.join(stack.dir, 'refused.sock')}`]);
    assert.equal(start.code, 1, `started:\n${start.stderr}`);
    assert.match(start.stderr, /aiproxy-fcgi: .*assistants\.huge: .*129 tools/);
    assert.doesNotMatch(start.stderr, /Sanitizer|runtime error/);
    assert.equal((await admin('/assistants/huge')).status, 404, 'the refused file was not seeded');
    // the same file with an allow-list passes the check
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('mcp_servers: [big]}',
                                                                  "mcp_servers: [big], tools: {allow: ['big__extra_2*']}}"));
    const ok = await runFcgi(stack, ['-c', file, '--check']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /config OK/);
  });

  test('a client whose tools do not fit beside the assistant\'s gets 400 param tools', async () => {
    const ours = demoTools.length - 2, theirs = 129 - ours;
    const tools = Array.from({ length: theirs }, (_, i) => ({
      type: 'function', function: { name: `client_${i}`, parameters: { type: 'object' } } }));
    const n = up.requests.length;
    const r = await chat('picky', { tools });
    const e = h.assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
    assert.equal(e.param, 'tools');
    assert.equal(e.code, 'too_many_tools');
    assert.ok(e.message.includes(`offers 129 tools (${ours} from MCP servers: demo: ${ours}; ` +
                                 `${theirs} sent by the client)`), e.message);
    assert.ok(e.message.includes(`send at most ${128 - ours} tools`), e.message);
    assert.equal(up.requests.length, n, 'the upstream was not asked');
  });

  test('a catalog that grows past the cap gives 502 too_many_tools', async () => {
    // first the small catalog, then the model calls notify after the file grew
    // the catalog is listed before the upstream is asked: grow it then
    up.enqueue(async () => {
      fs.writeFileSync(growFile, '130\n');
      return { json: h.completion({ tool_calls: [{ name: 'grow__notify' }] }) };
    });
    up.enqueue({ json: h.completion({ content: 'notified' }) });
    const grown = demoTools.length + 130;
    const first = await chat('grower');
    assert.equal(first.status, 200, first.text);
    await h.waitFor(async () => {
      const cat = JSON.parse(await stack.redis('GET', `${stack.prefix}mcp:catalog:grow`) || '{}');
      return cat.status === 'ready' && cat.tools && cat.tools.length === grown;
    }, { timeoutMs: 30000, what: 'the grown catalog' });
    const n = up.requests.length;
    const r = await chat('grower');
    const e = h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
    assert.equal(e.code, 'too_many_tools');
    assert.ok(e.message.includes(`assistant 'grower' offers ${grown} tools (grow: ${grown})`), e.message);
    assert.match(e.message, /tools\.allow/);
    assert.equal(up.requests.length, n, 'the upstream was not asked');
    const list = await admin('/assistants/grower/tools');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.count, grown);
    assert.equal(list.json.over_cap, true);
  });
});

'use strict';
// Issue 15 item 6: OAuth 2.1 to a protected MCP server, through nginx. A tiny
// streamable-HTTP MCP server and its authorization server (node http, in this
// file) accept only Bearer tokens issued by client_credentials; the broker
// discovers the metadata from the 401, gets a token, caches it in Redis
// (<prefix>oauth:<server>), and the tool call succeeds. The admin API shows
// neither the secret nor the token. A second broker reuses the cached token
// (no second token request); once the token expires, the broker refreshes it
// with the refresh token. The legacy SSE transport authorizes its stream the
// same way, and a refresh token seeded through the admin API is used.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');
const { completion } = h;

const ADMIN = 'admin-key-oauth-0123456789';
const CLIENT_ID = 'aiproxy-test-client';
const SECRET = 'oauth-client-secret-s3cr3t';
const hasBroker = fs.existsSync(path.join(h.binDir(), 'mcp-broker'));

// The MCP server and its authorization server on one port. `expiresIn` (s)
// is what the token endpoint grants; tokens expire by the AS's own clock.
async function protectedServer() {
  const st = { tokens: new Map(), refresh: new Map([['rt-seed', true]]), tokenRequests: [],
               mcpRequests: [], n: 0, expiresIn: 3600, streams: new Map() };
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const base = `http://127.0.0.1:${srv.address().port}`;
      const json = (status, obj, headers = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(obj));
      };
      const url = req.url.split('?')[0];
      const prm = /^\/\.well-known\/oauth-protected-resource\/(mcp|sse)$/.exec(url);
      if (req.method === 'GET' && prm) {
        return json(200, { resource: `${base}/${prm[1]}`, authorization_servers: [`${base}/as`],
                           scopes_supported: ['mcp:tools'] });
      }
      if (req.method === 'GET' && url === '/.well-known/oauth-authorization-server/as') {
        return json(200, { issuer: `${base}/as`, token_endpoint: `${base}/as/token`,
                           grant_types_supported: ['client_credentials', 'refresh_token'],
                           token_endpoint_auth_methods_supported: ['client_secret_basic'] });
      }
      if (req.method === 'POST' && url === '/as/token') {
        const form = Object.fromEntries(new URLSearchParams(body));
        st.tokenRequests.push(form);
        const basic = (req.headers.authorization || '').replace(/^Basic /, '');
        const [id, secret] = Buffer.from(basic, 'base64').toString().split(':');
        if (id !== CLIENT_ID || secret !== SECRET) return json(401, { error: 'invalid_client' });
        if (form.resource !== `${base}/mcp` && form.resource !== `${base}/sse`) {
          return json(400, { error: 'invalid_target' });
        }
        if (form.grant_type === 'refresh_token' && !st.refresh.has(form.refresh_token)) {
          return json(400, { error: 'invalid_grant' });
        }
        if (form.grant_type !== 'client_credentials' && form.grant_type !== 'refresh_token') {
          return json(400, { error: 'unsupported_grant_type' });
        }
        st.n += 1;
        const token = `at-${st.n}`, refresh = `rt-${st.n}`;
        st.tokens.set(token, Date.now() + st.expiresIn * 1000);
        st.refresh.set(refresh, true);
        return json(200, { access_token: token, token_type: 'Bearer', expires_in: st.expiresIn,
                           refresh_token: refresh, scope: 'mcp:tools' });
      }
      if (url === '/mcp' || url === '/sse' || url === '/messages') {
        const auth = (req.headers.authorization || '').replace(/^Bearer /, '');
        const until = st.tokens.get(auth);
        const which = url === '/mcp' ? 'mcp' : 'sse';
        st.mcpRequests.push({ method: req.method, url, token: auth });
        if (!until || until <= Date.now()) {
          return json(401, { error: 'invalid_token' }, {
            'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/${which}"` });
        }
        if (url === '/sse' && req.method === 'GET') {     // legacy HTTP+SSE (2024-11-05)
          const id = String(st.streams.size + 1);
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`event: endpoint\ndata: /messages?s=${id}\n\n`);
          st.streams.set(id, res);
          return undefined;
        }
        if (req.method !== 'POST') { res.writeHead(405); return res.end(); }
        const msg = JSON.parse(body);
        const stream = url === '/messages' ? st.streams.get(new URL(req.url, base).searchParams.get('s')) : null;
        if (msg.id === undefined || stream) { res.writeHead(202); res.end(); }
        if (msg.id === undefined) return undefined;
        const reply = (result) => {
          if (stream) return stream.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })}\n\n`);
          return json(200, { jsonrpc: '2.0', id: msg.id, result });
        };
        if (msg.method === 'initialize') {
          return reply({ protocolVersion: '2025-06-18', capabilities: { tools: {} },
                         serverInfo: { name: 'protected', version: '1' } });
        }
        if (msg.method === 'tools/list') {
          return reply({ tools: [{ name: 'whoami', description: 'who is calling',
                                   inputSchema: { type: 'object', properties: {} } }] });
        }
        if (msg.method === 'tools/call') {
          return reply({ content: [{ type: 'text', text: `called with ${auth}` }] });
        }
        return reply({});
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  st.url = `http://127.0.0.1:${srv.address().port}/mcp`;
  st.close = () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); });
  return st;
}

function scriptToolTurn(up) {
  up.enqueue({ json: completion({ tool_calls: [{ id: 'call_0', name: 'prot__whoami', arguments: {} }] }) });
  up.enqueue((rec) => {
    const tools = rec.body.messages.filter((m) => m.role === 'tool');
    return { json: completion({ content: tools.map((m) => m.content).join(' | ') }) };
  });
}

async function ask(stack) {
  return stack.openai().chat.completions.create({ model: 'helper',
                                                 messages: [{ role: 'user', content: 'go' }] });
}

test('OAuth client_credentials to a protected MCP server', { skip: !hasBroker && 'mcp-broker not built',
                                                             timeout: 120000 }, async (t) => {
  const ps = await protectedServer();
  const up = await h.fakeUpstream();
  const stack = await h.startStack({ config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  prot:
    transport: http
    url: ${ps.url}
    auth:
      grant: client_credentials
      client_id: ${CLIENT_ID}
      client_secret: \${OAUTH_SECRET}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [prot]}
proxy_api_keys: [sk-test-client]
`, upstream: up, env: { ADMIN_API_KEY: ADMIN, OAUTH_SECRET: SECRET } });
  t.after(async () => { await stack.stop(); await up.close(); await ps.close(); });
  const key = `${stack.prefix}oauth:prot`;

  await t.test('the broker gets a token, caches it in Redis, and the tool call succeeds', async () => {
    scriptToolTurn(up);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, 'called with at-1');
    assert.equal(ps.tokenRequests.length, 1);
    assert.equal(ps.tokenRequests[0].grant_type, 'client_credentials');
    assert.equal(ps.tokenRequests[0].scope, 'mcp:tools');
    const cached = JSON.parse(await stack.redis('GET', key));
    assert.equal(cached.access_token, 'at-1');
    assert.equal(cached.refresh_token, 'rt-1');
  });

  await t.test('the admin API shows neither the client secret nor a token', async () => {
    const r = await h.request(`${stack.url}/admin/mcp/prot`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 200, r.text);
    assert.doesNotMatch(r.text, new RegExp(`${SECRET}|at-1|rt-1`));
    assert.equal(r.json.auth.client_id, CLIENT_ID);
    const all = await h.request(`${stack.url}/admin/config`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.doesNotMatch(all.text, new RegExp(`${SECRET}|at-1|rt-1`));
    // the export keeps the reference, so the saved file still reads the secret from the environment
    const yaml = await h.request(`${stack.url}/admin/config?format=yaml`,
                                 { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(yaml.status, 200, yaml.text);
    assert.doesNotMatch(yaml.text, new RegExp(SECRET));
    assert.match(yaml.text, /client_secret: "?\$\{OAUTH_SECRET\}"?/, yaml.text);
  });

  await t.test('a second broker reuses the cached token: no second token request', async () => {
    await stack.killBroker();
    await stack.redis('DEL', `${stack.prefix}mcp:catalog:prot`);
    const before = ps.mcpRequests.length;
    stack.startBroker();
    await stack.waitBroker();
    scriptToolTurn(up);
    const r = await ask(stack);
    assert.equal(r.choices[0].message.content, 'called with at-1');
    assert.equal(ps.tokenRequests.length, 1, JSON.stringify(ps.tokenRequests));
    // every request of the new broker carried the cached token: no 401 round
    assert.ok(ps.mcpRequests.slice(before).every((m) => m.token === 'at-1'),
              JSON.stringify(ps.mcpRequests.slice(before)));
  });

  const admin = (p, opts = {}) => h.request(`${stack.url}/admin/mcp/${p}`, {
    ...opts, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } });

  await t.test('the legacy SSE transport authorizes its stream', async () => {
    const put = await admin('sse1', { method: 'PUT', body: JSON.stringify({
      transport: 'sse', url: ps.url.replace(/\/mcp$/, '/sse'),
      auth: { client_id: CLIENT_ID, client_secret: SECRET } }) });
    assert.ok(put.status === 200 || put.status === 201, put.text);
    const r = await admin('sse1/tools');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.map((x) => x.name), ['whoami']);
    const last = ps.tokenRequests.at(-1);
    assert.equal(last.grant_type, 'client_credentials');
    assert.equal(last.resource, ps.url.replace(/\/mcp$/, '/sse'));
    assert.ok(await stack.redis('GET', `${stack.prefix}oauth:sse1`));
  });

  await t.test('a refresh token seeded through the admin API is used, and not shown', async () => {
    const put = await admin('seeded', { method: 'PUT', body: JSON.stringify({
      transport: 'http', url: ps.url,
      auth: { grant: 'refresh_token', client_id: CLIENT_ID, client_secret: SECRET, refresh_token: 'rt-seed' } }) });
    assert.ok(put.status === 200 || put.status === 201, put.text);
    const r = await admin('seeded/tools');
    assert.equal(r.status, 200, r.text);
    const last = ps.tokenRequests.at(-1);
    assert.equal(last.grant_type, 'refresh_token');
    assert.equal(last.refresh_token, 'rt-seed');
    const shown = await admin('seeded');
    assert.equal(shown.status, 200, shown.text);
    assert.doesNotMatch(shown.text, new RegExp(`rt-seed|${SECRET}`));
    await admin('seeded', { method: 'DELETE' });
    await admin('sse1', { method: 'DELETE' });
  });

  await t.test('an expired token is refreshed with the refresh token', async () => {
    // the next token lives 2 s; expire the current one at the AS now
    ps.expiresIn = 2;
    ps.tokens.set('at-1', 0);
    const n = ps.n;
    scriptToolTurn(up);
    let r = await ask(stack);
    assert.equal(r.choices[0].message.content, `called with at-${n + 1}`);
    assert.equal(ps.tokenRequests.at(-1).grant_type, 'refresh_token');
    assert.equal(ps.tokenRequests.at(-1).refresh_token, 'rt-1');
    // this one expires by its own clock; the broker refreshes before using it again
    await h.waitFor(() => ps.tokens.get(`at-${n + 1}`) <= Date.now(),
                    { timeoutMs: 10000, what: 'the refreshed token to expire' });
    scriptToolTurn(up);
    r = await ask(stack);
    assert.equal(r.choices[0].message.content, `called with at-${n + 2}`);
    assert.equal(ps.tokenRequests.at(-1).grant_type, 'refresh_token');
    assert.equal(ps.tokenRequests.at(-1).refresh_token, `rt-${n + 1}`);
    assert.equal(JSON.parse(await stack.redis('GET', key)).access_token, `at-${n + 2}`);
  });
});

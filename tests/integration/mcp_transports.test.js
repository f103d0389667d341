'use strict';
// MCP transports end to end through mcp-probe (the broker's own session layer
// and transports, as a command-line client) against the third-party
// @modelcontextprotocol/server-everything over stdio, legacy SSE and
// streamable HTTP: initialize, tools/list, and its get-sum tool.
// Also: what the probe says when a server is unreachable or refuses us.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const http = require('node:http');
const { execFile } = require('node:child_process');
const h = { ...require('./lib'), ...require('./lib/procs') };

const { NODE22, EVERYTHING, startEverything } = require('./lib/everything');
const PROBE = path.join(h.binDir(), 'mcp-probe');

// Runs mcp-probe; resolves {code, json, stderr}. Fails the test on a
// sanitizer report.
function probe(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    execFile(PROBE, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      let json = null;
      try { json = JSON.parse(stdout); } catch (_) { /* none */ }
      resolve({ code: err ? (err.code ?? -1) : 0, json, stdout, stderr });
    });
  });
}

function assertClean(r) {
  assert.doesNotMatch(r.stderr, /Sanitizer|LeakSanitizer|runtime error/, r.stderr);
}

function assertSum(r) {
  assertClean(r);
  assert.strictEqual(r.code, 0, r.stdout + r.stderr);
  assert.ok(r.json && r.json.ok, r.stdout);
  const names = r.json.tools.map((t) => t.name);
  assert.ok(names.includes('get-sum'), `tools: ${names}`);
  assert.ok(names.includes('echo'), `tools: ${names}`);
  const text = r.json.result.content.map((c) => c.text).join('');
  assert.match(text, /\b5\b/, text);
  assert.notStrictEqual(r.json.result.isError, true);
}

test('mcp transports against server-everything', { timeout: 180000 }, async (t) => {
  if (!fs.existsSync(PROBE)) throw new Error(`${PROBE} missing: build it (make SAN=1)`);
  const tmp = h.mkTmpDir('mcphttp');
  const servers = [];
  t.after(async () => {
    for (const s of servers) await h.stopProc(s.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  await t.test('stdio: get-sum 2+3', async () => {
    assertSum(await probe(['--call', 'get-sum', '--args', '{"a":2,"b":3}', NODE22, EVERYTHING, 'stdio']));
  });

  await t.test('legacy SSE: get-sum 2+3', async () => {
    const s = await startEverything('sse', tmp);
    servers.push(s);
    assertSum(await probe(['--transport', 'sse', '--call', 'get-sum', '--args', '{"a":2,"b":3}',
                           `http://127.0.0.1:${s.port}/sse`]));
  });

  await t.test('streamable HTTP: get-sum 2+3, session ended with DELETE', async () => {
    const s = await startEverything('streamableHttp', tmp);
    servers.push(s);
    const r = await probe(['--call', 'get-sum', '--args', '{"a":2,"b":3}', `http://127.0.0.1:${s.port}/mcp`]);
    assertSum(r);
    assert.match(r.json.protocolVersion, /^20\d\d-\d\d-\d\d$/);
    await h.waitFor(() => /session termination request/i.test(fs.readFileSync(s.logPath, 'utf8')),
                    { timeoutMs: 5000, what: 'the DELETE to reach server-everything' });
  });

  await t.test('streamable HTTP: unknown tool is a tool error, not a crash', async () => {
    const s = servers.find((x) => x.proc.name === 'everything-streamableHttp');
    const r = await probe(['--call', 'no-such-tool', `http://127.0.0.1:${s.port}/mcp`]);
    assertClean(r);
    assert.ok(r.json, r.stdout);
    const failed = !r.json.ok || r.json.result.isError === true;
    assert.ok(failed, r.stdout);
  });
});

test('mcp http transports: failures are reported, not hung', { timeout: 60000 }, async (t) => {
  if (!fs.existsSync(PROBE)) throw new Error(`${PROBE} missing: build it (make SAN=1)`);

  await t.test('nothing listening', async () => {
    const port = await h.closedPort();
    for (const tr of ['http', 'sse']) {
      const r = await probe(['--transport', tr, '--timeout', '5', `http://127.0.0.1:${port}/mcp`]);
      assertClean(r);
      assert.strictEqual(r.code, 1);
      assert.strictEqual(r.json.ok, false);
      assert.match(r.json.error, /connect|refused|stream/i, r.json.error);
    }
  });

  await t.test('HTTP 500 and a session that expires (404)', async () => {
    let phase = 'fail';
    const seen = [];
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        seen.push({ method: req.method, headers: req.headers, body });
        if (phase === 'fail') { res.writeHead(500); res.end('kaputt'); return; }
        const msg = body ? JSON.parse(body) : {};
        if (req.method !== 'POST') { res.writeHead(405); res.end(); return; }
        if (msg.method === 'initialize') {
          res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S1' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {
            protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'x', version: '1' } } }));
        } else if (msg.id === undefined) {
          res.writeHead(202); res.end();
        } else {
          res.writeHead(404); res.end();   // forgot the session
        }
      });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    t.after(() => srv.close());
    const url = `http://127.0.0.1:${srv.address().port}/mcp`;

    let r = await probe(['--timeout', '5', url]);
    assertClean(r);
    assert.strictEqual(r.code, 1);
    assert.match(r.json.error, /HTTP 500/, r.json.error);
    assert.match(r.json.error, /kaputt/, r.json.error);

    phase = 'expire';
    seen.length = 0;
    r = await probe(['--timeout', '5', '--header', 'X-Probe: yes', url]);
    assertClean(r);
    assert.strictEqual(r.code, 1);
    assert.match(r.json.error, /session expired \(404\)/, r.json.error);
    const list = seen.find((x) => x.body.includes('tools/list'));
    assert.ok(list, 'tools/list was sent');
    assert.strictEqual(list.headers['mcp-session-id'], 'S1');
    assert.strictEqual(list.headers['mcp-protocol-version'], '2025-06-18');
    assert.strictEqual(list.headers['x-probe'], 'yes');
    assert.match(list.headers.accept, /application\/json/);
    assert.match(list.headers.accept, /text\/event-stream/);
    // a session the server forgot is not DELETEd
    assert.ok(!seen.some((x) => x.method === 'DELETE'));
  });
});

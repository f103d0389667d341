'use strict';
// mcp-demo's call log (MCP_DEMO_CALL_LOG, used by make bench's fleet figure
// to count executions): every tools/call appends "NAME ARG" once, calls of
// several processes land in one file, and without the variable nothing is
// written.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./lib');

// Runs mcp-demo with env, sends the lines, resolves its answers once each id is answered.
function demo(env, calls) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(h.binDir(), 'mcp-demo'), [], { env: { ...process.env, ...env },
                                                            stdio: ['pipe', 'pipe', 'ignore'] });
    let buf = '';
    const got = [];
    p.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        got.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        if (got.length === calls.length) p.stdin.end();
      }
    });
    p.on('error', reject);
    p.on('close', () => resolve(got));
    calls.forEach(([name, args], id) => p.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call',
                                                                          params: { name, arguments: args } })}\n`));
  });
}

test('every tools/call is one line of the call log, across processes', async () => {
  const dir = h.mkTmpDir('calllog');
  const log = path.join(dir, 'calls.log');
  const a = await demo({ MCP_DEMO_CALL_LOG: log }, [['echo', { text: 'one' }], ['add', { a: 1, b: 2 }]]);
  const b = await demo({ MCP_DEMO_CALL_LOG: log }, [['uppercase', { text: 'two' }]]);
  assert.equal(a.length, 2);
  assert.equal(b[0].result.content[0].text, 'TWO');
  assert.deepEqual(fs.readFileSync(log, 'utf8').split('\n'), ['echo one', 'add ', 'uppercase two', '']);
  const none = await demo({ MCP_DEMO_CALL_LOG: '' }, [['echo', { text: 'x' }]]);
  assert.equal(none[0].result.content[0].text, 'x');
  assert.equal(fs.readFileSync(log, 'utf8').split('\n').length, 4);
  fs.rmSync(dir, { recursive: true, force: true });
});

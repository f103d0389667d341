'use strict';
// The configuration people copy must load: the README's YAML block and
// conf/config.example.yaml pass `aiproxy-fcgi --check` (no Redis needed: the
// tool count is then only noted). A README block that did not parse went
// unnoticed once (${VAR} inside {…} must be quoted in YAML).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const h = require('./lib');

const ROOT = path.join(__dirname, '..', '..');
const ENV = { ...process.env, OPENAI_API_KEY: 'sk-x', ANTHROPIC_API_KEY: 'sk-y', MCP_TOKEN: 't',
              REDIS_URL: 'redis://127.0.0.1:1/0', AIPROXY_BROKER_WAIT_MS: '0' };

function check(file) {
  return new Promise((resolve) => {
    execFile(path.join(h.binDir(), 'aiproxy-fcgi'), ['-c', file, '--check'],
             { env: ENV, cwd: ROOT, timeout: 60000 },
             (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }));
  });
}

test("the README's configuration block passes --check", async () => {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = md.split('\n## Configuration')[1]?.match(/```yaml\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'the README has a yaml block under ## Configuration');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aiproxy-docs-'));
  try {
    const file = path.join(dir, 'readme.yaml');
    fs.writeFileSync(file, block);
    const r = await check(file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config OK/);
    assert.doesNotMatch(r.stderr, /Sanitizer|runtime error/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('conf/config.example.yaml passes --check', async () => {
  const r = await check(path.join(ROOT, 'conf', 'config.example.yaml'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /config OK/);
});

'use strict';
// Issue 14, items 1 and 3: aiproxy-fcgi as a plain CGI program, and a
// shared-hosting account that has only a docroot and .htaccess
// (conf/apache/htaccess-cgi, the wrapper conf/apache/aiproxy-wrapper.sh.in,
// config and log outside the docroot). The representative suite (models,
// completion, tool loop, per-chunk streaming, errors, auth) runs in CGI mode
// in webservers.test.js (h.CGI_WEBSERVERS); here is what is CGI's own: one
// Redis connection per request, the config file read only to seed an empty
// Redis, the command line a CGI server may make from a query string is not
// read, mod_fcgid from a sub-directory routed on PATH_INFO, and what the
// account sees when something it relies on is missing (Redis, a runnable
// program, a loadable config): an error in OpenAI's shape, never Apache's
// HTML page.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./lib');

const KEY = 'sk-cgi-static-1';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-upstream, timeout: 30}
assistants:
  - {name: helper, backend: fake, model: up-model-1}
proxy_api_keys:
  - ${KEY}
`;
const AUTH = { authorization: `Bearer ${KEY}` };

// Runs the binary the way a CGI server does (environment, body on stdin,
// answer on stdout), with `args` on its command line; resolves the raw
// answer and the exit code.
function runCgi(stack, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(h.binDir(), 'aiproxy-fcgi'), args, {
      env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1',
             LSAN_OPTIONS: `suppressions=${path.join(h.REPO_ROOT, 'tests', 'lsan.supp')}`,
             GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REDIS_URL: stack.redisUrl,
             AIPROXY_REDIS_PREFIX: stack.prefix, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the CGI program did not exit in 30 s')); }, 30000);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
    child.stdin.end();
  });
}

describe('a shared host: .htaccess and CGI only', () => {
  let up;
  let stack;
  let wrapper;
  let original;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up, webserver: 'apache-htaccess', broker: false,
                                 workers: 1, threads: 2 });
    wrapper = path.join(stack.dir, 'htdocs', 'aiproxy.cgi');
    original = fs.readFileSync(wrapper, 'utf8');
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  const models = () => h.request(`${stack.baseURL}/models`, { headers: AUTH });
  const connections = async () => Number(/total_connections_received:(\d+)/.exec(await stack.redis('INFO', 'stats'))[1]);

  test('each request is a process of its own that opens one Redis connection', async () => {
    const first = await models();
    assert.equal(first.status, 200, first.text);
    const before = await connections();     // this INFO's connection included
    const r = await models();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.map((m) => m.id), ['helper']);
    // +1 for the next INFO's own connection, +1 for the request
    assert.equal(await connections() - before, 2, 'one Redis connection per CGI request');
  });

  test('a program the server cannot run: Apache\'s 500 in OpenAI\'s shape (the .htaccess ErrorDocument)', async () => {
    fs.chmodSync(wrapper, 0o644);
    try {
      const r = await models();
      assert.equal(r.status, 500, r.text);
      assert.match(r.headers['content-type'] || '', /application\/json/);
      h.assertOpenAIError(assert, r, 500, { type: 'server_error' });
    } finally {
      fs.chmodSync(wrapper, 0o755);
    }
    assert.equal((await models()).status, 200);
  });

  test('the config is read only to seed an empty Redis; one that does not load then is a 500 "misconfigured"', async () => {
    fs.writeFileSync(wrapper, original.replace(/^export AIPROXY_CONFIG=.*$/m,
                                               "export AIPROXY_CONFIG='/nonexistent/aiproxy.yaml'"));
    try {
      // Redis holds the registry: the request does not touch the file
      const held = await models();
      assert.equal(held.status, 200, held.text);
      await stack.redis('FLUSHALL');
      const r = await models();
      const e = h.assertOpenAIError(assert, r, 500, {});
      assert.equal(e.code, 'misconfigured');
      assert.doesNotMatch(e.message, /nonexistent/, 'paths stay out of the answer');
      await h.waitFor(() => /AIPROXY_CONFIG: \/nonexistent\/aiproxy.yaml/.test(stack.logs('aiproxy')),
                      { timeoutMs: 5000, what: 'the reason in the log outside the docroot' });
    } finally {
      fs.writeFileSync(wrapper, original);
    }
    // the next request seeds the empty Redis from the config
    const ok = await models();
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.data.map((m) => m.id), ['helper']);
  });

  test('the command line a query string makes is not read (GET /aiproxy.cgi?-c/etc/passwd)', async () => {
    const r = await runCgi(stack, ['-c/etc/passwd', '--reseed'],
                           { REQUEST_METHOD: 'GET', PATH_INFO: '/v1/models', QUERY_STRING: '-c/etc/passwd+--reseed',
                             HTTP_AUTHORIZATION: `Bearer ${KEY}` });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Status: 200 OK\r\n/, r.out + r.err);
    assert.match(r.out, /"id":"helper"/);
    assert.doesNotMatch(r.err, /ERROR: (Address|Leak)Sanitizer|runtime error:/, r.err);
  });

  // The usual account layout: the gateway in a sub-directory of the docroot
  // (https://host/~me/ai/v1), under mod_fcgid. REQUEST_URI then carries the
  // directory: the responder must route on PATH_INFO (AIPROXY_PATH_INFO=1).
  test('mod_fcgid from the .htaccess of a sub-directory: AIPROXY_PATH_INFO=1 routes below its URL', async () => {
    const htdocs = path.join(stack.dir, 'htdocs');
    const fcgiWrapper = (extra) => original
      .replace(/^exec "([^"]+)" *$/m, (all, bin) => `${extra}exec "${bin}" -c "$AIPROXY_CONFIG" -w 0 -t 1`);
    for (const [dir, extra] of [['ai', 'export AIPROXY_PATH_INFO=1\n'], ['plain', '']]) {
      const d = path.join(htdocs, dir);
      fs.mkdirSync(d);
      fs.chmodSync(d, 0o755);
      fs.copyFileSync(path.join(h.REPO_ROOT, 'conf', 'apache', 'htaccess-fcgid'), path.join(d, '.htaccess'));
      fs.writeFileSync(path.join(d, 'aiproxy.fcgi'), fcgiWrapper(extra));
      fs.chmodSync(path.join(d, 'aiproxy.fcgi'), 0o755);
    }
    assert.match(fs.readFileSync(path.join(htdocs, 'ai', 'aiproxy.fcgi'), 'utf8'), /-w 0 -t 1/);
    const r = await h.request(`${stack.url}/ai/v1/models`, { headers: AUTH });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.map((m) => m.id), ['helper']);
    up.enqueue({ json: h.completion({ content: 'from a sub-directory' }) });
    const c = await h.request(`${stack.url}/ai/v1/chat/completions`, { method: 'POST', headers: AUTH,
      body: { model: 'helper', messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.choices[0].message.content, 'from a sub-directory');
    // without it the prefix is part of the path: no route
    const plain = await h.request(`${stack.url}/plain/v1/models`, { headers: AUTH });
    const e = h.assertOpenAIError(assert, plain, 404, {});
    assert.match(e.message, /\/plain\/v1\/models/);
  });

  test('Redis unreachable: 503 redis_unavailable in OpenAI\'s shape, not an HTML 500', async () => {
    await stack.killRedis();
    const r = await models();
    const e = h.assertOpenAIError(assert, r, 503, {});
    assert.equal(e.code, 'redis_unavailable');
    assert.match(r.headers['content-type'] || '', /application\/json/);
  });
});

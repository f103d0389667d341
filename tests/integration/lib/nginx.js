'use strict';
// Renders conf/nginx/aiproxy.conf.in, the same template scripts/run.sh uses.
const fs = require('node:fs');
const path = require('node:path');
const { REPO_ROOT } = require('./util');

const TEMPLATE = path.join(REPO_ROOT, 'conf', 'nginx', 'aiproxy.conf.in');

// AIPROXY_MAX_BODY as bytes (plain number, or with k/m/g suffix); null if unset.
function parseSize(s) {
  if (s === undefined || s === null || s === '') return null;
  const m = /^\s*(\d+)\s*([kmg]?)b?\s*$/i.exec(String(s));
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Number(m[1]) * mult;
}

// The responder's default AIPROXY_MAX_BODY (fcgi/core/main.c).
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

// The web server's own body limit: the responder's (AIPROXY_MAX_BODY, or its
// default), in bytes. The web server buffers the body and enforces the cap
// itself, answering 413 in OpenAI's shape from the template's error pages.
function clientMaxBody(maxBody) {
  const b = parseSize(maxBody);
  return String(b === null ? DEFAULT_MAX_BODY : b);
}

// opts: {runDir, listen, fcgiSocket, nginxWorkers, keepalive, maxBody}.
// Returns the config text; creates runDir/nginx-tmp.
function renderNginxConf(opts) {
  const vars = {
    RUN_DIR: opts.runDir,
    LISTEN: opts.listen,
    FCGI_SOCKET: opts.fcgiSocket,
    NGINX_WORKERS: String(opts.nginxWorkers || 1),
    KEEPALIVE: String(opts.keepalive || 4),
    CLIENT_MAX_BODY: clientMaxBody(opts.maxBody),
    USER_LINE: process.getuid && process.getuid() === 0 ? 'user root;' : '',
  };
  fs.mkdirSync(path.join(opts.runDir, 'nginx-tmp'), { recursive: true });
  let text = fs.readFileSync(TEMPLATE, 'utf8');
  text = text.replace(/@@([A-Z_]+)@@/g, (all, name) => {
    if (!(name in vars)) throw new Error(`nginx template: unknown placeholder ${all}`);
    return vars[name];
  });
  return text;
}

module.exports = { renderNginxConf, parseSize, clientMaxBody, TEMPLATE, DEFAULT_MAX_BODY };

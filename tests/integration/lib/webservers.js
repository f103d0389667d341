'use strict';
// The web servers the stack can be fronted by, each from the template aiproxy
// ships (conf/<server>/*.conf.in, the same ones scripts/run.sh renders):
//
//   nginx          conf/nginx/aiproxy.conf.in            -> responder pool socket
//   apache         conf/apache/aiproxy-proxy-fcgi.conf.in -> responder pool socket
//   apache-fcgid   conf/apache/aiproxy-fcgid.conf.in      Apache spawns the responders
//   lighttpd       conf/lighttpd/aiproxy.conf.in          -> responder pool socket
//   lighttpd-spawn conf/lighttpd/aiproxy.conf.in          lighttpd spawns the responders
//   apache-cgi     conf/apache/aiproxy-cgi.conf.in        plain CGI (mod_cgid, ScriptAliasMatch)
//   apache-htaccess conf/apache/aiproxy-htaccess.conf.in  a shared host: the account's
//                  .htaccess (conf/apache/htaccess-cgi) runs aiproxy.cgi as CGI
//   apache-htaccess-fcgid  the same host, .htaccess (conf/apache/htaccess-fcgid):
//                  mod_fcgid runs aiproxy.fcgi
//   lighttpd-cgi   conf/lighttpd/aiproxy-cgi.conf.in      plain CGI (mod_cgi)
//   apache-cgi-front  the apache-cgi config with aiproxy.cgi -> aiproxy-cgi, the CGI
//                  front: it hands each request to a responder pool it starts on
//                  demand (socket <runDir>/cgi-pool/pool, AIPROXY_CGI_SOCKET; log
//                  cgi-pool/pool.log; the pool's pid in cgi-pool/pool.pid, which
//                  stop() ends: the pool is nobody's child)
// In the CGI kinds each request is a process of its own (spawnsResponders,
// cgi: true); the .htaccess kinds start it through the wrapper script
// (conf/apache/aiproxy-wrapper.sh.in), whose log is aiproxy.log.
//
// frontendSpec(kind, opts) renders the config into opts.runDir and returns
// {name, cmd, args, logs: [log names], spawnsResponders}; the stack starts it.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { REPO_ROOT } = require('./util');
const { renderNginxConf, parseSize, clientMaxBody } = require('./nginx');

const CGI_WEBSERVERS = ['apache-cgi', 'apache-cgi-front', 'apache-htaccess', 'apache-htaccess-fcgid', 'lighttpd-cgi'];
const WEBSERVERS = ['nginx', 'apache', 'apache-fcgid', 'lighttpd', 'lighttpd-spawn', ...CGI_WEBSERVERS];
const APACHE_MODULES = '/usr/lib/apache2/modules';

function firstExisting(paths, fallback) {
  for (const p of paths) if (fs.existsSync(p)) return p;
  return fallback;
}
const nginxBin = () => firstExisting(['/usr/sbin/nginx', '/usr/bin/nginx'], 'nginx');
const apacheBin = () => firstExisting(['/usr/sbin/apache2', '/usr/sbin/httpd'], 'apache2');
const lighttpdBin = () => firstExisting(['/usr/sbin/lighttpd', '/usr/bin/lighttpd'], 'lighttpd');

const isRoot = () => !!(process.getuid && process.getuid() === 0);

// Replaces every @@NAME@@ in the template with vars[NAME]; an unknown
// placeholder is an error (a template and its renderer must agree).
function renderTemplate(file, vars) {
  const text = fs.readFileSync(file, 'utf8');
  return text.replace(/@@([A-Z_]+)@@/g, (all, name) => {
    if (!(name in vars)) throw new Error(`${path.relative(REPO_ROOT, file)}: unknown placeholder ${all}`);
    return vars[name];
  });
}

// The web servers' own error documents, in OpenAI's shape (conf/errors).
const ERRORS_SRC = path.join(REPO_ROOT, 'conf', 'errors');
// The web servers' JSON error pages, copied into the stack's run directory:
// Apache and lighttpd drop root for an unprivileged user, which may not enter
// the checkout (a clone under /root) but can enter the run directory.
function errorsDir(runDir) {
  const dir = path.join(runDir, 'errors');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(ERRORS_SRC)) fs.copyFileSync(path.join(ERRORS_SRC, f), path.join(dir, f));
  return dir;
}

// The unprivileged user Apache switches to when started as root.
function apacheUser() {
  for (const u of ['www-data', 'nobody']) {
    try { execFileSync('id', ['-u', u], { stdio: 'ignore' }); return u; } catch (_) { /* next */ }
  }
  return null;
}
function apacheGroup(user) {
  try { return execFileSync('id', ['-gn', user], { encoding: 'utf8' }).trim(); } catch (_) { return user; }
}

// Bytes for the web server's own body limit (the responder's).
function bodyLimitBytes(maxBody) {
  return Number(clientMaxBody(maxBody));
}

// FcgidInitialEnv lines: mod_fcgid gives its children a clean environment.
function fcgidEnvLines(env, names) {
  const q = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return names.filter((n) => env[n] !== undefined && env[n] !== '')
    .map((n) => `FcgidInitialEnv ${n} ${q(env[n])}`).join('\n');
}

// Environment variables the responders need when a web server starts them
// (the stack's own plus whatever the test passed in opts.env).
function responderEnvNames(env, extra) {
  const base = ['REDIS_URL', 'AIPROXY_REDIS_PREFIX', 'AIPROXY_HOME', 'AIPROXY_MAX_BODY',
    'AIPROXY_LOG_LEVEL', 'ADMIN_API_KEY', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'PATH'];
  return [...new Set([...base, ...Object.keys(extra || {})])].filter((n) => env[n] !== undefined);
}

const shQuote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
const confQuote = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

// The environment a CGI program gets from the web server (or the wrapper):
// the responders' plus AIPROXY_CONFIG, the config it seeds Redis from.
function cgiEnv(o) {
  const env = { ...o.env, AIPROXY_CONFIG: o.configPath };
  return { env, names: [...responderEnvNames(env, o.extraEnv), 'AIPROXY_CONFIG'] };
}

// A directory the web server's unprivileged user may enter, holding
// aiproxy.cgi: a symlink to the binary (the name a CGI server runs).
function cgiDir(o, sub, program = 'aiproxy-fcgi') {
  const dir = path.join(o.runDir, sub);
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const link = path.join(dir, 'aiproxy.cgi');
  try { fs.unlinkSync(link); } catch (_) { /* none */ }
  fs.symlinkSync(path.join(o.binDir, program), link);
  return dir;
}

// The CGI front's pool directory: private to the user the CGI programs run
// as (www-data when Apache started as root), who creates the socket there.
function cgiPoolDir(o) {
  const dir = path.join(o.runDir, 'cgi-pool');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (isRoot()) {
    const u = apacheUser();
    const uid = Number(execFileSync('id', ['-u', u], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', u], { encoding: 'utf8' }).trim());
    fs.chownSync(dir, uid, gid);
  }
  return dir;
}

function apacheUserLines() {
  if (!isRoot()) return '';
  const u = apacheUser();
  if (!u) throw new Error('apache as root needs an unprivileged user (www-data or nobody)');
  return `User ${u}\nGroup ${apacheGroup(u)}`;
}

// An account's docroot on a "shared host" (conf/apache/aiproxy-htaccess.conf.in):
// .htaccess, the wrapper script, the error documents; config and log outside.
function htaccessDocroot(o, fcgid) {
  const docroot = path.join(o.runDir, 'htdocs');
  const errs = path.join(docroot, '.aiproxy-error');
  fs.mkdirSync(errs, { recursive: true });
  fs.chmodSync(docroot, 0o755);
  fs.chmodSync(errs, 0o755);
  for (const f of fs.readdirSync(ERRORS_SRC)) fs.copyFileSync(path.join(ERRORS_SRC, f), path.join(errs, f));
  fs.copyFileSync(path.join(REPO_ROOT, 'conf', 'apache', 'htaccess-errors'), path.join(errs, '.htaccess'));
  fs.copyFileSync(path.join(REPO_ROOT, 'conf', 'apache', fcgid ? 'htaccess-fcgid' : 'htaccess-cgi'),
                  path.join(docroot, '.htaccess'));
  const { env, names } = cgiEnv(o);
  const lines = names.filter((n) => env[n] !== undefined && env[n] !== '')
    .map((n) => `export ${n}=${shQuote(env[n])}`).join('\n');
  const log = path.join(o.runDir, 'aiproxy.log');
  fs.writeFileSync(log, '');
  fs.chmodSync(log, 0o666);   // the web server's user appends to it
  const wrapper = path.join(docroot, fcgid ? 'aiproxy.fcgi' : 'aiproxy.cgi');
  fs.writeFileSync(wrapper, renderTemplate(path.join(REPO_ROOT, 'conf', 'apache', 'aiproxy-wrapper.sh.in'), {
    ENV_LINES: lines, LOG_FILE: log, FCGI_BIN: path.join(o.binDir, 'aiproxy-fcgi'),
    // mod_fcgid sends one request at a time to each process: one thread, no master
    ARGS: fcgid ? '-c "$AIPROXY_CONFIG" -w 0 -t 1' : '',
  }));
  fs.chmodSync(wrapper, 0o755);
  return docroot;
}

// opts: {runDir, port, fcgiSocket, configPath, binDir, workers, threads,
//        maxBody, env (the responders' environment), extraEnv (test's env)}.
function frontendSpec(kind, o) {
  const listen = `127.0.0.1:${o.port}`;
  if (kind === 'nginx') {
    const conf = renderNginxConf({
      runDir: o.runDir, listen, fcgiSocket: o.fcgiSocket, nginxWorkers: 1,
      // below the responder thread count (see the template's comment)
      keepalive: Math.max(1, Math.floor((o.workers * o.threads) / 2)),
      maxBody: o.maxBody,
    });
    const confPath = path.join(o.runDir, 'nginx.conf');
    fs.writeFileSync(confPath, conf);
    return { name: 'nginx', cmd: nginxBin(), spawnsResponders: false, logs: ['nginx', 'nginx-error'],
      args: ['-p', o.runDir, '-e', path.join(o.runDir, 'nginx-error.log'), '-c', confPath, '-g', 'daemon off;'] };
  }
  if (kind === 'apache' || kind === 'apache-fcgid') {
    const fcgid = kind === 'apache-fcgid';
    let userLines = '';
    if (isRoot()) {
      const u = apacheUser();
      if (!u) throw new Error('apache as root needs an unprivileged user (www-data or nobody)');
      userLines = `User ${u}\nGroup ${apacheGroup(u)}`;
    }
    // Apache's limit stays above the responder's: mod_proxy_fcgi and mod_fcgid
    // both answer a LimitRequestBody / FcgidMaxRequestLen hit with a 500, so
    // the responder's 413 (it refuses a Content-Length over its cap before
    // reading) is the one clients see.
    const vars = {
      RUN_DIR: o.runDir, LISTEN: listen, USER_LINES: userLines, MODULES_DIR: APACHE_MODULES,
      CLIENT_MAX_BODY: String(bodyLimitBytes(o.maxBody) * 2 + 1024 * 1024), ERRORS_DIR: errorsDir(o.runDir),
    };
    if (fcgid) {
      Object.assign(vars, {
        FCGI_BIN: path.join(o.binDir, 'aiproxy-fcgi'), CONFIG: o.configPath,
        FCGID_MAX_PROCS: String(Math.max(2, o.workers * o.threads)),
        FCGID_ENV: fcgidEnvLines(o.env, responderEnvNames(o.env, o.extraEnv)),
      });
    } else {
      vars.FCGI_SOCKET = o.fcgiSocket;
    }
    const tpl = path.join(REPO_ROOT, 'conf', 'apache', fcgid ? 'aiproxy-fcgid.conf.in' : 'aiproxy-proxy-fcgi.conf.in');
    const confPath = path.join(o.runDir, 'apache.conf');
    fs.writeFileSync(confPath, renderTemplate(tpl, vars));
    return { name: 'apache', cmd: apacheBin(), spawnsResponders: fcgid, logs: ['apache', 'apache-error'],
      args: ['-d', o.runDir, '-f', confPath, '-DFOREGROUND'] };
  }
  if (kind === 'apache-cgi' || kind === 'apache-cgi-front' || kind === 'apache-htaccess' ||
      kind === 'apache-htaccess-fcgid') {
    const vars = {
      RUN_DIR: o.runDir, LISTEN: listen, USER_LINES: apacheUserLines(), MODULES_DIR: APACHE_MODULES,
      CLIENT_MAX_BODY: String(bodyLimitBytes(o.maxBody) * 2 + 1024 * 1024),
    };
    let tpl;
    let logs = ['apache', 'apache-error'];
    let pidFiles = [];
    let detachedMatch = null;
    if (kind === 'apache-cgi' || kind === 'apache-cgi-front') {
      const front = kind === 'apache-cgi-front';
      const { env, names } = cgiEnv(o);
      if (front) {
        const pool = path.join(cgiPoolDir(o), 'pool');
        env.AIPROXY_CGI_SOCKET = pool;
        names.push('AIPROXY_CGI_SOCKET');
        logs = [...logs, 'cgi-pool/pool'];
        pidFiles = [`${pool}.pid`];
        detachedMatch = `unix:${pool}`;
      }
      const dir = cgiDir(o, 'cgi-bin', front ? 'aiproxy-cgi' : 'aiproxy-fcgi');
      Object.assign(vars, {
        ERRORS_DIR: errorsDir(o.runDir), CGI_DIR: dir, CGI_BIN: path.join(dir, 'aiproxy.cgi'),
        CGI_ENV: names.filter((n) => env[n] !== undefined && env[n] !== '')
          .map((n) => `SetEnv ${n} ${confQuote(env[n])}`).join('\n'),
      });
      tpl = 'aiproxy-cgi.conf.in';
    } else {
      const fcgid = kind === 'apache-htaccess-fcgid';
      vars.DOCROOT = htaccessDocroot(o, fcgid);
      // what the host sets for mod_fcgid server-wide (the account cannot):
      // stream at once, and wait long enough for LLM calls
      vars.FCGID_HOST = 'FcgidOutputBufferSize 0\nFcgidIOTimeout 600\nFcgidBusyTimeout 900\n' +
        `FcgidMaxRequestLen ${vars.CLIENT_MAX_BODY}\nFcgidMaxProcesses ${Math.max(2, o.workers * o.threads)}\n` +
        `FcgidMaxProcessesPerClass ${Math.max(2, o.workers * o.threads)}`;
      tpl = 'aiproxy-htaccess.conf.in';
      logs = [...logs, 'aiproxy'];
    }
    const confPath = path.join(o.runDir, 'apache.conf');
    fs.writeFileSync(confPath, renderTemplate(path.join(REPO_ROOT, 'conf', 'apache', tpl), vars));
    return { name: 'apache', cmd: apacheBin(), spawnsResponders: true, cgi: true, logs, pidFiles, detachedMatch,
      args: ['-d', o.runDir, '-f', confPath, '-DFOREGROUND'] };
  }
  if (kind === 'lighttpd-cgi') {
    const { env, names } = cgiEnv(o);
    const dir = cgiDir(o, 'cgi-bin');
    const conf = renderTemplate(path.join(REPO_ROOT, 'conf', 'lighttpd', 'aiproxy-cgi.conf.in'), {
      RUN_DIR: o.runDir, BIND: '127.0.0.1', PORT: String(o.port),
      MAX_REQUEST_KB: String(Math.ceil(bodyLimitBytes(o.maxBody) / 1024)),
      ERRORS_DIR: errorsDir(o.runDir), CGI_DIR: dir,
      CGI_ENV: names.filter((n) => env[n] !== undefined && env[n] !== '')
        .map((n) => `    ${confQuote(n)} => ${confQuote(env[n])},`).join('\n'),
    });
    const confPath = path.join(o.runDir, 'lighttpd.conf');
    fs.writeFileSync(confPath, conf);
    return { name: 'lighttpd', cmd: lighttpdBin(), spawnsResponders: true, cgi: true,
      logs: ['lighttpd', 'lighttpd-error'], args: ['-D', '-f', confPath] };
  }
  if (kind === 'lighttpd' || kind === 'lighttpd-spawn') {
    const spawn = kind === 'lighttpd-spawn';
    const q = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    let server;
    if (spawn) {
      // max-procs processes of -t threads each; lighttpd restarts one that dies.
      const env = responderEnvNames(o.env, o.extraEnv).filter((n) => n !== 'PATH')
        .map((n) => `        ${q(n)} => ${q(o.env[n])},`).join('\n');
      server = [
        `    "bin-path" => ${q(`${path.join(o.binDir, 'aiproxy-fcgi')} -c ${o.configPath} -w 0 -t ${o.threads}`)},`,
        `    "socket" => ${q(path.join(o.runDir, 'spawn.sock'))},`,
        `    "max-procs" => ${Math.max(1, o.workers)},`,
        `    "bin-environment" => (\n${env}\n    ),`,
      ].join('\n');
    } else {
      server = `    "socket" => ${q(o.fcgiSocket)},`;
    }
    const kb = Math.ceil(bodyLimitBytes(o.maxBody) / 1024);
    const conf = renderTemplate(path.join(REPO_ROOT, 'conf', 'lighttpd', 'aiproxy.conf.in'), {
      RUN_DIR: o.runDir, BIND: '127.0.0.1', PORT: String(o.port), MAX_REQUEST_KB: String(kb),
      FASTCGI_SERVER: server, ERRORS_DIR: errorsDir(o.runDir),
    });
    const confPath = path.join(o.runDir, 'lighttpd.conf');
    fs.writeFileSync(confPath, conf);
    return { name: 'lighttpd', cmd: lighttpdBin(), spawnsResponders: spawn, logs: ['lighttpd', 'lighttpd-error'],
      args: ['-D', '-f', confPath] };
  }
  throw new Error(`startStack: unknown webserver '${kind}' (one of ${WEBSERVERS.join(', ')})`);
}

module.exports = { WEBSERVERS, CGI_WEBSERVERS, frontendSpec, renderTemplate, parseSize };

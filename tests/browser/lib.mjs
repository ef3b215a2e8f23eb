// Shared by the browser suites: the real binary (on SQLite, or on a fresh PostgreSQL database of
// the test cluster), a gateway that mounts it under /auth like an application does, an SMTP sink,
// and Debian's Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = process.env.AUTHARA_BIN || join(ROOT, 'target/debug/authara');
export const SHOTS = join(ROOT, 'artifacts/screenshots');
export const PW = 'violet-harbor-tangent';

// The engines a suite runs on: SQLite always; PostgreSQL when scripts/test (or the developer)
// points at a test cluster through AUTHARA_TEST_PG_HOST/PORT/USER.
export const ENGINES = process.env.AUTHARA_TEST_PG_HOST ? ['sqlite', 'postgres'] : ['sqlite'];

// The environment that puts a server on a fresh PostgreSQL database of the test cluster.
function postgresEnv() {
  const { AUTHARA_TEST_PG_HOST: host, AUTHARA_TEST_PG_PORT: port, AUTHARA_TEST_PG_USER: user } = process.env;
  const db = `b_${randomUUID().replaceAll('-', '')}`;
  execFileSync('psql', ['-h', host, '-p', port, '-U', user, '-d', 'postgres', '-qc', `CREATE DATABASE ${db}`], { stdio: 'ignore' });
  return { POSTGRESQL_HOST: host, POSTGRESQL_PORT: port, POSTGRESQL_USERNAME: user, POSTGRESQL_DATABASE: db };
}

// `authara serve --migrate` with `extraEnv` on a fresh data directory (and, with
// engine 'postgres', a fresh database); resolves with the process, the directory, its address
// and the environment it runs with (for CLI calls on the same data).
export function launchAuthara(extraEnv = {}, { engine = 'sqlite' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'authara-browser-'));
  const env = { PATH: process.env.PATH, AUTHARA_BIND: '127.0.0.1:0', AUTHARA_DATA_DIR: dir, LOG_LEVEL: 'info', AUTHARA_UI_PRODUCT_NAME: 'Acme',
    ...(engine === 'postgres' ? postgresEnv() : {}), ...extraEnv };
  const proc = spawn(BIN, ['serve', '--migrate'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('authara did not start')), 30000);
    let out = '';
    const scan = (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/([0-9.:]+)/);
      if (m) { clearTimeout(timer); ok({ proc, dir, addr: m[1], env }); }
    };
    proc.stdout.on('data', scan);
    proc.stderr.on('data', (c) => { out += c; });
    proc.on('exit', (code) => fail(new Error(`authara exited (${code}): ${out}`)));
  });
}

// A minimal SMTP server that keeps every message (recipients and body) in memory.
export function smtpSink() {
  const messages = [];
  const srv = net.createServer((sock) => {
    let buf = '', inData = false, data = '', to = [];
    sock.write('220 sink ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') { inData = false; messages.push({ to, data }); data = ''; sock.write('250 queued\r\n'); } else { data += line + '\n'; }
          continue;
        }
        const up = line.toUpperCase();
        if (up.startsWith('EHLO') || up.startsWith('HELO')) sock.write('250-sink\r\n250 8BITMIME\r\n');
        else if (up.startsWith('MAIL FROM')) { to = []; sock.write('250 ok\r\n'); }
        else if (up.startsWith('RCPT TO')) { to.push(line.slice(8).replace(/[:<>\s]/g, '')); sock.write('250 ok\r\n'); }
        else if (up === 'DATA') { inData = true; sock.write('354 go ahead\r\n'); }
        else if (up === 'QUIT') { sock.end('221 bye\r\n'); }
        else sock.write('250 ok\r\n');
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok({ server: srv, port: srv.address().port, messages })));
}

// The test gateway: /auth/* is proxied to the authara whose address `target()` gives (asked per
// request, so the gateway can listen first and be that authara's PUBLIC_URL); everything else
// is "the application", a page showing its own path.
export function gatewayTo(target) {
  const gw = http.createServer((req, res) => {
    if (req.url.startsWith('/auth/')) {
      const [host, port] = target().split(':');
      const up = http.request({ host, port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => { res.writeHead(502); res.end('bad gateway'); });
      req.pipe(up);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>App</title><h1>The application</h1><p id="path">${req.url.replace(/[<>&"]/g, '')}</p>`);
  });
  return new Promise((ok) => gw.listen(0, '127.0.0.1', () => ok({ server: gw, base: `http://127.0.0.1:${gw.address().port}` })));
}

// Debian's Chromium, headless; never a downloaded browser.
// `extraArgs`: more switches (the forward-auth suite maps its host names to loopback).
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', ...extraArgs],
  });
}

// Forward-auth in Chromium: an app with no login code of its own on another host name
// (app.example.test), behind Caddy with the configuration of docs/forward-auth.md, sends the
// browser to authara's login page (auth.example.test) and, once signed in, back to the page it
// asked for, which now shows who is signed in. The session is shared through
// AUTHARA_COOKIE_DOMAIN. Both host names resolve to loopback inside the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { ROOT, SHOTS, PW, ENGINES, launchAuthara, launchBrowser } from './lib.mjs';

const CADDY = process.env.CADDY || join(ROOT, 'target/proxies/venv/bin/caddy');

let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser(['--host-resolver-rules=MAP *.example.test 127.0.0.1']);
});
after(async () => { await browser?.close(); });

function freePort() {
  return new Promise((ok) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

// The app: a page that shows the identity headers the proxy gave it.
function app() {
  const srv = http.createServer((req, res) => {
    const esc = (v) => String(v ?? '').replace(/[<>&"]/g, '');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Dashboard</title><h1>Dashboard</h1><p id="path">${esc(req.url)}</p>`
      + `<p id="email">${esc(req.headers['remote-email'])}</p><p id="user">${esc(req.headers['remote-user'])}</p>`);
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok({ server: srv, port: srv.address().port })));
}

// The doc's Caddyfile, with this run's ports.
function caddyfile(authara, upstream, port) {
  const doc = readFileSync(join(ROOT, 'docs/forward-auth.md'), 'utf8');
  const block = doc.split('<!-- forward-auth-test: caddy -->')[1].split('```')[1].split('\n').slice(1).join('\n');
  return '{\n\tadmin off\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n}\n' + block
    .replaceAll('127.0.0.1:8080', authara).replaceAll('127.0.0.1:3000', `127.0.0.1:${upstream}`)
    .replace('http://app.example.com {', `http://app.example.test:${port} {`);
}

async function startCaddy(conf) {
  const dir = mkdtempSync(join(tmpdir(), 'authara-caddy-'));
  writeFileSync(join(dir, 'Caddyfile'), conf);
  const proc = spawn(CADDY, ['run', '--adapter', 'caddyfile', '--config', join(dir, 'Caddyfile')],
    { env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir }, stdio: 'ignore' });
  return proc;
}

async function signUp(base, email) {
  const csrf = await fetch(`${base}/auth/api/v1/csrf`);
  const cookie = csrf.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { csrf_token: token } = await csrf.json();
  const res = await fetch(`${base}/auth/api/v1/signup/direct`, {
    method: 'POST', headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': token },
    body: JSON.stringify({ email, password: PW }),
  });
  assert.equal(res.status, 201);
}

for (const engine of ENGINES) {
  test(`a protected app on another host sends the browser to sign in and back (${engine})`, async () => {
    const authPort = await freePort();
    const proxyPort = await freePort();
    const upstream = await app();
    const own = await launchAuthara({
      AUTHARA_BIND: `127.0.0.1:${authPort}`, PUBLIC_URL: `http://auth.example.test:${authPort}`,
      AUTHARA_ALLOWED_RETURN_HOSTS: 'app.example.test', AUTHARA_COOKIE_DOMAIN: '.example.test',
    }, { engine });
    const caddy = await startCaddy(caddyfile(`127.0.0.1:${authPort}`, upstream.port, proxyPort));
    try {
      await signUp(`http://127.0.0.1:${authPort}`, 'ada@example.com');
      const target = `http://app.example.test:${proxyPort}/dashboard?range=7d`;
      const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
      const page = await context.newPage();
      for (let i = 0; ; i++) {
        try { await page.goto(target); break; } catch (e) { if (i > 100) throw e; await new Promise((r) => setTimeout(r, 100)); }
      }
      await page.waitForURL((u) => u.host === `auth.example.test:${authPort}` && u.pathname === '/auth/login');
      assert.equal(new URL(page.url()).searchParams.get('return_to'), target);
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'forward-auth-login.png'), fullPage: true });

      await page.getByLabel('Email').fill('ada@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Sign in' }).click();
      // The login form's redirect back to the app is a form action the page's CSP allows.
      await page.waitForURL(target);
      assert.equal(await page.locator('#email').innerText(), 'ada@example.com');
      assert.match(await page.locator('#user').innerText(), /^[0-9a-f-]{36}$/);
      assert.equal(await page.locator('#path').innerText(), '/dashboard?range=7d');
      const cookies = await context.cookies(target);
      assert.ok(cookies.some((c) => c.name === 'authara_access' && c.domain === '.example.test'), JSON.stringify(cookies));
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'forward-auth-back.png'), fullPage: true });
      await context.close();
    } finally {
      caddy.kill();
      own.proc.kill();
      upstream.server.close();
    }
  });
}

// Google's button on the hosted pages, in a real browser: the page script's
// `autharaGoogleCallback` (pages/js/google.js) posts the ID token Google Identity Services hands
// it, and follows `X-Authara-Redirect`. Google's own script cannot load here (no network, and it
// is blocked), so the test plays its part: it signs an ID token for the page's nonce with the
// fixed test key and calls the callback as GIS would. A small local issuer stands in for Google
// (`AUTHARA_OAUTH_GOOGLE_ISSUER`: discovery and JWKS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createSign } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHOTS, PW, ENGINES, launchAuthara, gatewayTo, launchBrowser } from './lib.mjs';

const FIXTURES = join(ROOT, 'crates/authara/tests/it/fixtures');
const KEY = readFileSync(join(FIXTURES, 'oidc_test_key.pem'));
const JWKS = readFileSync(join(FIXTURES, 'oidc_test_jwks.json'));
const CLIENT_ID = 'google-test-client';

let browser, issuer, issuerServer;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
  issuerServer = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
    } else if (req.url === '/jwks') {
      res.end(JWKS);
    } else {
      res.writeHead(404);
      res.end('{}');
    }
  });
  await new Promise((ok) => issuerServer.listen(0, '127.0.0.1', ok));
  issuer = `http://127.0.0.1:${issuerServer.address().port}`;
});
after(async () => {
  await browser?.close();
  issuerServer?.close();
});

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

// An RS256 ID token as Google would sign it for this page's nonce.
function idToken(claims) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: issuer, aud: CLIENT_ID, iat: now, exp: now + 300, email_verified: true, ...claims };
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'test-key-1' })}.${b64(body)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(KEY).toString('base64url')}`;
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
  await context.route(/^https:\/\//, (route) => route.abort());
  return { context, page: await context.newPage() };
}

// What GIS does when the user picks their Google account.
async function pickGoogleAccount(page, sub, email) {
  const nonce = await page.locator('#g_id_onload').getAttribute('data-nonce');
  assert.ok(nonce && nonce.length >= 40, 'the page embeds the nonce');
  const credential = idToken({ sub, email, nonce });
  await page.evaluate((c) => window.autharaGoogleCallback({ credential: c }), credential);
}

for (const engine of ENGINES) {
  test(`Google's button signs in, sends existing accounts to the link page, and links from the account page (${engine})`, async () => {
    let addr = null;
    const gw = await gatewayTo(() => addr);
    const site = gw.base;
    const own = await launchAuthara({
      PUBLIC_URL: site,
      AUTHARA_OAUTH_PROVIDERS: 'google',
      AUTHARA_OAUTH_GOOGLE_CLIENT_ID: CLIENT_ID,
      AUTHARA_OAUTH_GOOGLE_ISSUER: issuer,
      AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT: '100',
    }, { engine });
    addr = own.addr;
    try {
      // A new user: signed up and on return_to.
      let { context, page } = await newPage();
      await page.goto(`${site}/auth/login?return_to=${encodeURIComponent('/welcome')}`);
      await page.locator('[data-google-flow=login]').waitFor({ state: 'attached' });
      await pickGoogleAccount(page, 'g-100', 'gwen@example.com');
      await page.waitForURL(`${site}/welcome`);
      const me = await (await page.request.get(`${site}/auth/api/v1/user`)).json();
      assert.equal(me.email, 'gwen@example.com');
      await context.close();

      // A token for another browser's nonce: back on the login page, with a message.
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/login`);
      const forged = idToken({ sub: 'g-101', email: 'mallory@example.com', nonce: 'someone-else' });
      await page.evaluate((c) => window.autharaGoogleCallback({ credential: c }), forged);
      await page.getByRole('alert').filter({ hasText: 'could not be verified' }).waitFor();
      await context.close();

      // An existing password account: the link page, proved with the password.
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/signup`);
      await page.getByLabel('Email').fill('hal@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL(`${site}/`);
      await context.close();
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/login?return_to=${encodeURIComponent('/inbox')}`);
      await page.locator('[data-google-flow=login]').waitFor({ state: 'attached' });
      await pickGoogleAccount(page, 'g-hal', 'hal@example.com');
      await page.waitForURL(`${site}/auth/provider-links/confirm?**`);
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Link and sign in' }).click();
      await page.waitForURL(`${site}/inbox`);
      await context.close();

      // A password user links Google from the account page (link/start, then the callback).
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/signup?return_to=${encodeURIComponent('/auth/account')}`);
      await page.getByLabel('Email').fill('ivy@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL(`${site}/auth/account`);
      await page.locator('#linked-providers-section [data-google-flow=link]').waitFor({ state: 'attached' });
      await pickGoogleAccount(page, 'g-ivy', 'ivy.personal@example.com');
      await page.getByText('The sign-in method was linked to your account.').waitFor();
      await page.locator('#linked-providers-section li[data-provider=google]').getByText('Linked').waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-google-linked.png'), fullPage: true });
      await context.close();
    } finally {
      own.proc.kill('SIGTERM');
      gw.server.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
}

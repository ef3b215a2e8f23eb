// A link from another site cannot accept an invitation for a signed-in victim: the page of an
// attacker sends the victim's browser into a provider sign-in whose return_to is the attacker's
// invitation. The victim's browser comes back signed in, on the invitation's accept page, and
// stays in their own organization until they click Accept themselves (takeover review, path 2).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { SHOTS, PW, ENGINES, launchAuthara, gatewayTo, launchBrowser } from './lib.mjs';
import { startIdp, CLIENT_ID, CLIENT_SECRET } from '../oidc/provider.mjs';

const INTERNAL = 'internal-browser-token-0123456789';

let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); });

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
  await context.route(/^https:\/\//, (route) => route.abort());
  return { context, page: await context.newPage() };
}

// At the provider: its login page and consent when it asks; nothing when it remembers.
async function atProvider(page, idp, site, login) {
  await page.waitForURL((u) => u.href.startsWith(idp.issuer) || u.href.startsWith(site));
  if (!page.url().startsWith(idp.issuer)) return;
  const field = page.locator('input[name=login]');
  const consent = page.getByRole('button', { name: 'Continue' });
  await field.or(consent).waitFor();
  if (await field.isVisible()) {
    await field.fill(login);
    await page.locator('input[name=password]').fill('anything');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.waitForURL((u) => !u.href.startsWith(idp.issuer) || u.pathname.startsWith('/interaction/'));
  }
  if (page.url().startsWith(idp.issuer) && await consent.count()) await consent.click();
}

// A JSON call from the page's own browser context (cookies and the CSRF header).
async function api(page, site, method, path, body) {
  const csrf = (await (await page.request.get(`${site}/auth/api/v1/csrf`)).json()).csrf_token;
  const res = await page.request.fetch(`${site}${path}`, { method, headers: { 'x-csrf-token': csrf }, data: body });
  return { status: res.status(), body: await res.json().catch(() => null) };
}

// The attacker's server: another origin with a page that sends its visitor to `target`.
function evilSite(target) {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Free prize</title><h1>Claim your prize</h1><a id="go" href="${target}">Claim</a>`);
  });
  return new Promise((ok) => srv.listen(0, 'localhost', () => ok({ server: srv, base: `http://localhost:${srv.address().port}` })));
}

for (const engine of ENGINES) {
  test(`a link from another site does not move the victim into an organization (${engine})`, async () => {
    let addr = null;
    const gw = await gatewayTo(() => addr);
    const site = gw.base;
    const idp = await startIdp({ redirectUris: [`${site}/auth/oauth/acme/callback`] });
    const own = await launchAuthara({
      PUBLIC_URL: site,
      AUTHARA_ORG_MODE: 'multi',
      AUTHARA_INTERNAL_API_TOKEN: INTERNAL,
      AUTHARA_OAUTH_PROVIDERS: 'acme',
      AUTHARA_OAUTH_ACME_ISSUER: idp.issuer,
      AUTHARA_OAUTH_ACME_CLIENT_ID: CLIENT_ID,
      AUTHARA_OAUTH_ACME_CLIENT_SECRET: CLIENT_SECRET,
      AUTHARA_OAUTH_ACME_DISPLAY_NAME: 'Acme ID',
    }, { engine });
    addr = own.addr;
    let evil;
    try {
      // The victim signs up with the provider and is signed in at both.
      const { context, page } = await newPage();
      await page.goto(`${site}/auth/login`);
      await page.getByRole('link', { name: 'Continue with Acme ID' }).click();
      await atProvider(page, idp, site, 'dana@example.com');
      await page.waitForURL(`${site}/`);
      const home = (await api(page, site, 'GET', '/auth/api/v1/organizations/current')).body;

      // The attacker owns a team and invites the victim's address.
      const { context: theirs, page: attacker } = await newPage();
      const signup = await api(attacker, site, 'POST', '/auth/api/v1/signup/direct', { email: 'mallory@example.com', password: PW });
      assert.equal(signup.status, 201);
      const internal = (path, body) => fetch(`${site}/auth/internal/v1${path}`, {
        method: 'POST', headers: { authorization: `Bearer ${INTERNAL}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      }).then((r) => r.json());
      const team = (await internal('/organizations', { name: 'Mallory Co', created_by_user_id: signup.body.user.id })).organization;
      const inv = await internal(`/organizations/${team.id}/invitations`, { actor_user_id: signup.body.user.id, email: 'dana@example.com', role: 'member' });
      const token = new URL(inv.invitation.invite_url).searchParams.get('token');
      await theirs.close();

      // The victim visits the attacker's page and follows its link.
      const start = `${site}/auth/oauth/acme/start?return_to=${encodeURIComponent(`/auth/invitations/login?token=${token}`)}`;
      evil = await evilSite(start);
      await page.goto(evil.base);
      await page.locator('#go').click();
      await atProvider(page, idp, site, 'dana@example.com');
      await page.waitForURL(`${site}/auth/invitations/accept?**`);
      await page.getByRole('button', { name: 'Accept the invitation' }).waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'invitation-link-accept-page.png'), fullPage: true });

      // Nothing was accepted: still in their own organization, not a member of the team.
      const now = (await api(page, site, 'GET', '/auth/api/v1/organizations/current')).body;
      assert.equal(now.id, home.id);
      const mine = (await api(page, site, 'GET', '/auth/api/v1/organizations')).body.organizations.map((o) => o.id);
      assert.ok(!mine.includes(team.id), `not a member of the attacker's team: ${mine}`);

      // Only the victim's own click would join (and then, the owner's decision).
      await page.getByRole('button', { name: 'Accept the invitation' }).click();
      await page.waitForURL(`${site}/`);
      const joined = (await api(page, site, 'GET', '/auth/api/v1/organizations')).body.organizations.map((o) => o.id);
      assert.ok(joined.includes(team.id));
      await context.close();
    } finally {
      evil?.server.close();
      own.proc.kill('SIGTERM');
      gw.server.close();
      await idp.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
}

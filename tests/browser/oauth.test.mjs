// Sign-in with an OpenID provider in a real browser: the authorization-code flow against a real
// provider (`oidc-provider`, tests/oidc), through its own login and consent pages, on every
// engine in ENGINES. First login creates the user, the next finds them; an existing password
// account proves ownership on the recovery-link page; the account page unlinks and links.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SHOTS, PW, ENGINES, launchAuthara, gatewayTo, launchBrowser } from './lib.mjs';
import { startIdp, CLIENT_ID, CLIENT_SECRET } from '../oidc/provider.mjs';

let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); });

// The provider's development pages import a web font; nothing leaves this machine.
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
  await context.route(/^https:\/\//, (route) => route.abort());
  return { context, page: await context.newPage() };
}

// At the provider: its login page (any password), then consent when it asks.
async function atProvider(page, idp, login, shot) {
  await page.waitForURL(`${idp.issuer}/**`);
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('anything');
  if (shot) await page.screenshot({ path: join(SHOTS, `oauth-${shot}-provider-login.png`), fullPage: true });
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  await page.waitForURL((u) => !u.href.startsWith(idp.issuer) || u.pathname.startsWith('/interaction/'));
  if (page.url().startsWith(idp.issuer) && await consent.count()) {
    if (shot) await page.screenshot({ path: join(SHOTS, `oauth-${shot}-provider-consent.png`), fullPage: true });
    await consent.click();
  }
}

for (const engine of ENGINES) {
  test(`code flow with a real OpenID provider (${engine})`, async () => {
    let addr = null;
    const gw = await gatewayTo(() => addr);
    const site = gw.base;
    const idp = await startIdp({ redirectUris: [`${site}/auth/oauth/acme/callback`] });
    const own = await launchAuthara({
      PUBLIC_URL: site,
      AUTHARA_OAUTH_PROVIDERS: 'acme',
      AUTHARA_OAUTH_ACME_ISSUER: idp.issuer,
      AUTHARA_OAUTH_ACME_CLIENT_ID: CLIENT_ID,
      AUTHARA_OAUTH_ACME_CLIENT_SECRET: CLIENT_SECRET,
      AUTHARA_OAUTH_ACME_DISPLAY_NAME: 'Acme ID',
      AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT: '100',
    }, { engine });
    addr = own.addr;
    try {
      // First login: the login page's button, the provider's pages, back on return_to, signed up.
      let { context, page } = await newPage();
      await page.goto(`${site}/auth/login?return_to=${encodeURIComponent('/dashboard')}`);
      const button = page.getByRole('link', { name: 'Continue with Acme ID' });
      await button.waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-login.png'), fullPage: true });
      await button.click();
      await atProvider(page, idp, 'ada@example.com', engine === 'sqlite' ? 'first' : null);
      await page.waitForURL(`${site}/dashboard`);
      const me = await (await page.request.get(`${site}/auth/api/v1/user`)).json();
      assert.equal(me.email, 'ada@example.com');
      await context.close();

      // A second login, in another browser, finds the same user.
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/login`);
      await page.getByRole('link', { name: 'Continue with Acme ID' }).click();
      await atProvider(page, idp, 'ada@example.com');
      await page.waitForURL(`${site}/`);
      const again = await (await page.request.get(`${site}/auth/api/v1/user`)).json();
      assert.equal(again.id, me.id);
      await context.close();

      // An existing password account: never linked by email; the owner proves it with the password.
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/signup`);
      await page.getByLabel('Email').fill('bob@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL(`${site}/`);
      await context.close();
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/signup?return_to=${encodeURIComponent('/projects')}`);
      await page.getByRole('link', { name: 'Continue with Acme ID' }).click();
      await atProvider(page, idp, 'bob@example.com');
      await page.waitForURL(`${site}/auth/provider-links/confirm?**`);
      await page.getByRole('heading', { name: 'Link Acme ID to your account' }).waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-link-confirm.png'), fullPage: true });
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Link and sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Incorrect password' }).waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-link-confirm-error.png'), fullPage: true });
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Link and sign in' }).click();
      await page.waitForURL(`${site}/projects`);
      const bob = await (await page.request.get(`${site}/auth/api/v1/user`)).json();
      assert.equal(bob.email, 'bob@example.com');

      // The account page lists the provider; unlink it (a fresh sign-in is privileged), link it again.
      await page.goto(`${site}/auth/account`);
      const section = page.locator('#linked-providers-section');
      const row = section.locator('li[data-provider=acme]');
      await row.getByText('Linked').waitFor();
      await row.getByText('Unlink', { exact: true }).first().click();
      await row.getByRole('button', { name: 'Unlink Acme ID' }).click();
      await page.getByText('The sign-in method was removed from your account.').waitFor();
      await row.getByText('Not linked').waitFor();
      await row.getByText('Link', { exact: true }).click();
      await row.getByRole('button', { name: 'Link Acme ID' }).click();
      // The provider may still have bob's session and consent: it can come straight back.
      const linked = page.getByText('The sign-in method was linked to your account.');
      const idpLogin = page.locator('input[name=login]');
      const idpConsent = page.getByRole('button', { name: 'Continue' });
      await linked.or(idpLogin).or(idpConsent).waitFor();
      if (await idpLogin.isVisible()) await atProvider(page, idp, 'bob@example.com');
      else if (await idpConsent.isVisible()) await idpConsent.click();
      await page.waitForURL(`${site}/auth/account`);
      await linked.waitFor();
      await row.getByText('Linked').waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-account.png'), fullPage: true });
      await context.close();

      // A provider-only account cannot remove its only sign-in method.
      ({ context, page } = await newPage());
      await page.goto(`${site}/auth/login`);
      await page.getByRole('link', { name: 'Continue with Acme ID' }).click();
      await atProvider(page, idp, 'ada@example.com');
      await page.waitForURL(`${site}/`);
      await page.goto(`${site}/auth/account`);
      const adaRow = page.locator('#linked-providers-section li[data-provider=acme]');
      await adaRow.getByText('Unlink', { exact: true }).first().click();
      await adaRow.getByRole('button', { name: 'Unlink Acme ID' }).click();
      await page.getByRole('alert').filter({ hasText: 'only way to sign in' }).waitFor();
      if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, 'oauth-last-method.png'), fullPage: true });
      await context.close();
    } finally {
      own.proc.kill('SIGTERM');
      gw.server.close();
      await idp.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
}

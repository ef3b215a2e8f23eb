// Passkeys in a real browser: Debian's Chromium with the DevTools virtual authenticator (CTAP2,
// internal transport, resident keys, user verification), on every engine. The gateway is
// reached as http://localhost:<port> and is the server's PUBLIC_URL, so the RP ID is `localhost`
// (WebAuthn refuses IP addresses).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SHOTS, PW, ENGINES, launchAuthara, smtpSink, gatewayTo, launchBrowser } from './lib.mjs';

let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** A page with a virtual platform authenticator that verifies the user. */
async function pageWithAuthenticator() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}

async function codeFor(sink, email) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const mail = sink.messages.find((m) => m.to.includes(email));
    if (mail) {
      const code = mail.data.match(/\b(\d{6})\b/)?.[1];
      if (code) return code;
    }
    assert.ok(Date.now() < deadline, `no code mailed to ${email} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const engine of ENGINES) {
  test(`passkeys (${engine}): passwordless signup, add a passkey, sign in with nothing but it, rename, refuse removing the last method, remove it after adding a password`, async () => {
    let addr = null;
    const gw = await gatewayTo(() => addr);
    const site = gw.base.replace('127.0.0.1', 'localhost');
    const sink = await smtpSink();
    const own = await launchAuthara({
      PUBLIC_URL: site, AUTHARA_CHALLENGE_ENABLED: 'true',
      AUTHARA_EMAIL_PROVIDER: 'smtp', AUTHARA_EMAIL_FROM: 'Acme <auth@example.com>', AUTHARA_EMAIL_SMTP_HOST: '127.0.0.1',
      AUTHARA_EMAIL_SMTP_PORT: String(sink.port), AUTHARA_EMAIL_SMTP_TLS: 'false', AUTHARA_EMAIL_WORKER_POLL_INTERVAL: '100ms',
    }, { engine });
    addr = own.addr;
    const { context, page, cdp, authenticatorId } = await pageWithAuthenticator();
    try {
      // Sign up without a password: the emailed code proves the address.
      await page.goto(`${site}/auth/signup?return_to=/welcome`);
      await page.getByLabel('Email').fill('passkey@example.com');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByLabel('Verification code').fill(await codeFor(sink, 'passkey@example.com'));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.waitForURL(/\/auth\/passkeys\/setup\?return_to=%2Fwelcome/);
      await page.getByRole('button', { name: 'Add a passkey' }).waitFor();
      await page.screenshot({ path: join(SHOTS, 'passkeys-setup.png'), fullPage: true });

      // The setup page adds a passkey with the device's authenticator, then goes on.
      await page.getByRole('button', { name: 'Add a passkey' }).click();
      await page.waitForURL(`${site}/welcome`);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1);
      assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');

      // Sign out; the login page offers the passkey in the email field's autofill (conditional
      // mediation), which the virtual authenticator answers at once: signed in, on return_to.
      const signOut = async () => {
        await page.goto(`${site}/auth/account`);
        await page.getByRole('button', { name: 'Sign out', exact: true }).click();
        await page.waitForURL(`${site}/`);
      };
      await signOut();
      await page.goto(`${site}/auth/login?return_to=/autofilled`);
      await page.waitForURL(`${site}/autofilled`);
      assert.equal((await (await page.request.get(`${site}/auth/api/v1/user`)).json()).email, 'passkey@example.com');

      // In a browser without autofill for passkeys, the button signs in with nothing but the passkey.
      await signOut();
      await page.addInitScript(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
      await page.goto(`${site}/auth/login?return_to=/back`);
      const button = page.getByRole('button', { name: 'Sign in with a passkey' });
      await button.waitFor();
      await page.screenshot({ path: join(SHOTS, 'passkeys-login.png'), fullPage: true });
      await button.click();
      await page.waitForURL(`${site}/back`);
      const me = await (await page.request.get(`${site}/auth/api/v1/user`)).json();
      assert.equal(me.email, 'passkey@example.com');

      // The account page lists it; rename it.
      await page.goto(`${site}/auth/account`);
      const section = page.locator('#linked-providers-section');
      await section.getByText('This device only').waitFor();
      await section.getByText('Rename or remove').click();
      await section.getByLabel('Name').fill('My laptop');
      await section.getByRole('button', { name: 'Rename' }).click();
      await page.getByText('Your passkey was renamed.').waitFor();
      assert.match(await section.textContent(), /last used/);
      await page.locator('#linked-providers-section').screenshot({ path: join(SHOTS, 'passkeys-account.png') });

      // It is the only way in: removing it is refused.
      await section.getByText('Rename or remove').click();
      await section.getByRole('button', { name: 'Remove My laptop' }).click();
      await page.getByRole('alert').filter({ hasText: 'only way to sign in' }).waitFor();
      assert.equal(await page.locator('[data-passkey-row]').count(), 1);

      // With a password added, it can go.
      await page.getByLabel('New password').fill(PW);
      await page.getByRole('button', { name: 'Add a password' }).click();
      await page.getByText('Your password was changed.').waitFor();
      await section.getByText('Rename or remove').click();
      await section.getByRole('button', { name: 'Remove My laptop' }).click();
      await page.getByText('The passkey was removed.').waitFor();
      assert.equal(await page.locator('[data-passkey-row]').count(), 0);

      // Adding one from the account page swaps the section in place.
      await page.locator('#linked-providers-section').getByRole('button', { name: 'Add a passkey' }).click();
      await page.locator('[data-passkey-row]').first().waitFor();
      assert.match(await page.locator('#linked-providers-section').textContent(), /Device Passkey|Synced Passkey|Touch ID|Windows Hello|Passkey/);
      await page.screenshot({ path: join(SHOTS, 'passkeys-account-full.png'), fullPage: true });
    } finally {
      await context.close();
      gw.server.close();
      sink.server.close();
      own.proc.kill('SIGTERM');
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
}

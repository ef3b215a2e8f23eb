// Two-step verification in Chromium: a user turns the authenticator app on from the account page
// (the secret read from the page, as an app would scan it), copies and confirms the recovery
// codes, signs out, signs in with a generated code, and another time with a recovery code.
// Screenshots of each page go to artifacts/screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { SHOTS, PW, ENGINES, launchAuthara, gatewayTo, launchBrowser } from './lib.mjs';

let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); });

// RFC 4648 base32, as the page shows the secret (spaces between groups).
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

// What an authenticator app shows (RFC 6238: HMAC-SHA-1, 30 s, 6 digits) `offset` steps away.
function totp(secret, offset = 0) {
  const step = Math.floor(Date.now() / 30000) + offset;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(msg).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

async function shot(page, engine, name) {
  if (engine === 'sqlite') await page.screenshot({ path: join(SHOTS, `mfa-${name}.png`), fullPage: true });
}

for (const engine of ENGINES) {
  test(`set up an authenticator app, sign in with its code and with a recovery code (${engine})`, async () => {
    let addr = null;
    const gw = await gatewayTo(() => addr);
    const site = gw.base;
    const own = await launchAuthara({ PUBLIC_URL: site }, { engine });
    addr = own.addr;
    try {
      const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site });
      const page = await context.newPage();

      // A new account, then the account page.
      await page.goto(`${site}/auth/signup`);
      await page.getByLabel('Email').fill('mia@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL((u) => !u.pathname.startsWith('/auth/signup'));
      await page.goto(`${site}/auth/account`);
      await page.getByRole('button', { name: 'Set up an authenticator app' }).click();

      // The setup page: a QR code drawn on the page, and the same secret as text.
      await page.getByRole('img', { name: /QR code/ }).waitFor();
      const qr = await page.locator('.qr svg').boundingBox();
      assert.ok(qr && qr.width >= 150, `the QR code is drawn: ${JSON.stringify(qr)}`);
      const shown = await page.locator('[data-mfa-secret]').getAttribute('data-mfa-secret');
      const grouped = await page.locator('[data-mfa-secret]').innerText();
      assert.equal(grouped.replace(/\s/g, ''), shown);
      const secret = base32Decode(shown);
      assert.equal(secret.length, 20);
      await shot(page, engine, 'setup');
      await page.getByLabel('Code from your authenticator app').fill(totp(secret));
      await page.getByRole('button', { name: 'Turn on two-step verification' }).click();

      // The recovery codes: shown once, copied, one typed back.
      await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
      const codes = await page.locator('[data-recovery-codes] code').allInnerTexts();
      assert.equal(codes.length, 10);
      assert.ok(codes.every((c) => /^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/.test(c)), codes.join(' '));
      await page.getByRole('button', { name: 'Copy' }).click();
      await page.getByRole('button', { name: 'Copied' }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      assert.deepEqual(copied.trim().split('\n'), codes);
      const download = await page.getByRole('link', { name: 'Download' }).getAttribute('href');
      assert.ok(decodeURIComponent(download).includes(codes[9]), 'the download holds the codes');
      await shot(page, engine, 'recovery-codes');
      await page.getByLabel('Type one of them to confirm you saved them').fill(codes[4]);
      await page.getByRole('button', { name: 'I saved them' }).click();
      await page.waitForURL(`${site}/auth/account`);
      await page.getByText('Two-step verification is on').waitFor();
      await page.getByText('10 recovery codes left').waitFor();
      await shot(page, engine, 'account-on');

      // Sign out; sign in: the password, then the second step.
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.goto(`${site}/auth/login?return_to=${encodeURIComponent('/dashboard')}`);
      await page.getByLabel('Email').fill('mia@example.com');
      await page.getByLabel('Password').fill(PW);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(`${site}/auth/login/mfa?**`);
      const field = page.getByLabel('Code from your authenticator app');
      assert.equal(await field.getAttribute('autocomplete'), 'one-time-code');
      await shot(page, engine, 'second-step');
      const wrong = ['000000', '111111', '222222'].find((c) => ![-1, 0, 1, 2].some((o) => totp(secret, o) === c));
      await field.fill(wrong);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByText('That code is incorrect').waitFor();
      // The next step's code (the current one was spent by the setup if the clock has not moved).
      await page.getByLabel('Code from your authenticator app').fill(totp(secret, 1));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.waitForURL(`${site}/dashboard`);
      assert.equal(await page.locator('#path').innerText(), '/dashboard');

      // Another browser, a lost phone: a recovery code.
      const other = await browser.newContext();
      const p2 = await other.newPage();
      await p2.goto(`${site}/auth/login`);
      await p2.getByLabel('Email').fill('mia@example.com');
      await p2.getByLabel('Password').fill(PW);
      await p2.getByRole('button', { name: 'Sign in', exact: true }).click();
      await p2.waitForURL(`${site}/auth/login/mfa?**`);
      await p2.getByText('Use a recovery code instead').click();
      await p2.getByLabel('Recovery code').fill(codes[0].toUpperCase());
      await shot(p2, engine, 'recovery-code');
      await p2.getByRole('button', { name: 'Use recovery code' }).click();
      await p2.waitForURL((u) => !u.pathname.startsWith('/auth/login'));
      await p2.goto(`${site}/auth/account`);
      await p2.getByText('9 recovery codes left').waitFor();
      await shot(p2, engine, 'account-after-recovery');
      await other.close();
      await context.close();
    } finally {
      own.proc.kill('SIGTERM');
      gw.server.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
}

// The hosted pages in a real browser: headless Chromium from Debian, driven by Playwright,
// against the real binary behind a small test gateway (/auth/* to authara, the rest to a
// stand-in application page), as an application mounts authara.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, SHOTS, PW, launchAuthara, smtpSink, gatewayTo, launchBrowser } from './lib.mjs';

let server, dataDir, upstream, gateway, base, browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const started = await launchAuthara({ AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT: '100' });
  ({ proc: server, dir: dataDir, addr: upstream } = started);
  ({ server: gateway, base } = await gatewayTo(() => upstream));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  gateway?.close();
  server?.kill('SIGTERM');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 }, ...options });
  return { context, page: await context.newPage() };
}

async function signUp(page, email, returnTo = '/after') {
  await page.goto(`${base}/auth/signup?return_to=${encodeURIComponent(returnTo)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Create account' }).click();
  // A new account is offered a passkey first; skipping goes on to return_to.
  await page.waitForURL(/\/auth\/passkeys\/setup\?return_to=/);
  await page.getByRole('link', { name: 'Skip for now' }).click();
  await page.waitForURL(`${base}${returnTo}`);
}

test('sign up from the signup page and land on return_to, then see this session on the account page', async () => {
  const { context, page } = await newPage();
  await page.goto(`${base}/auth/signup?return_to=/after`);
  await page.screenshot({ path: join(SHOTS, 'signup.png'), fullPage: true });
  await signUp(page, 'ada@example.com');
  assert.equal(await page.locator('#path').textContent(), '/after');
  await page.goto(`${base}/auth/account`);
  await page.reload();
  await assert.doesNotReject(page.getByText('This device').waitFor());
  assert.match(await page.locator('main').textContent(), /ada@example\.com/);
  await page.screenshot({ path: join(SHOTS, 'account.png'), fullPage: true });
  await context.close();
});

test('a second browser signs in; the first revokes it; the second is sent to login', async () => {
  const first = await newPage();
  await signUp(first.page, 'two@example.com');
  const second = await newPage({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1' });
  await second.page.goto(`${base}/auth/login?return_to=/inside`);
  await second.page.getByLabel('Email').fill('two@example.com');
  await second.page.getByLabel('Password').fill(PW);
  await second.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await second.page.waitForURL(`${base}/inside`);

  await first.page.goto(`${base}/auth/account`);
  await first.page.getByText('Safari on iPhone', { exact: true }).waitFor();
  await first.page.getByRole('button', { name: 'Sign out Safari on iPhone' }).click();
  await first.page.getByText('That device was signed out.').waitFor();
  assert.equal(await first.page.getByText('Safari on iPhone', { exact: true }).count(), 0);

  await second.page.goto(`${base}/auth/account`);
  await second.page.waitForURL(/\/auth\/login\?return_to=/);
  assert.equal(await second.page.getByRole('heading', { name: 'Sign in' }).count(), 1);
  await first.context.close();
  await second.context.close();
});

test('log out from the account page', async () => {
  const { context, page } = await newPage();
  await signUp(page, 'leave@example.com');
  await page.goto(`${base}/auth/account`);
  await page.locator('form[action="/auth/sessions/logout"] button').click();
  await page.waitForURL(`${base}/`);
  assert.equal(await page.locator('h1').textContent(), 'The application');
  await page.goto(`${base}/auth/account`);
  await page.waitForURL(/\/auth\/login/);
  await context.close();
});

test('a failed login shows a visible error and keeps the email', async () => {
  const { context, page } = await newPage();
  await page.goto(`${base}/auth/login`);
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.equal(await alert.isVisible(), true);
  assert.match(await alert.textContent(), /Incorrect email or password/);
  assert.equal(await page.getByLabel('Email').inputValue(), 'ada@example.com');
  await page.screenshot({ path: join(SHOTS, 'login-error.png'), fullPage: true });
  await context.close();
});

test('keyboard-only login', async () => {
  const { context, page } = await newPage();
  await page.goto(`${base}/auth/login?return_to=/keyboard`);
  await page.screenshot({ path: join(SHOTS, 'login.png'), fullPage: true });
  // The email field has focus on load; Tab moves through the form in order.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'email');
  await page.keyboard.type('ada@example.com');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
  await page.keyboard.type(PW);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Sign in');
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/keyboard`);
  await context.close();
});

test('an invitee opens the mailed invitation link, signs up, lands in the app and sees the organization', async () => {
  // A server of its own: multi mode, the internal API, and the gateway as its PUBLIC_URL so that
  // invite_url points where the browser goes.
  const TOKEN = 'browser-internal-token-0123456789';
  let addr = null;
  const gw = await gatewayTo(() => addr);
  const sink = await smtpSink();
  const own = await launchAuthara({
    AUTHARA_ORG_MODE: 'multi', AUTHARA_INTERNAL_API_TOKEN: TOKEN, PUBLIC_URL: gw.base,
    AUTHARA_EMAIL_PROVIDER: 'smtp', AUTHARA_EMAIL_FROM: 'Acme <auth@example.com>', AUTHARA_EMAIL_SMTP_HOST: '127.0.0.1',
    AUTHARA_EMAIL_SMTP_PORT: String(sink.port), AUTHARA_EMAIL_SMTP_TLS: 'false', AUTHARA_EMAIL_WORKER_POLL_INTERVAL: '100ms',
  });
  addr = own.addr;
  const site = gw.base;
  const internal = async (path, body) => {
    const res = await fetch(`${site}/auth/internal/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    assert.equal(res.status, 201, JSON.stringify(json));
    return json;
  };
  try {
    // The owner signs up, and the application makes them a team through the internal API.
    const owner = await newPage();
    await owner.page.goto(`${site}/auth/signup`);
    await owner.page.getByLabel('Email').fill('owner@example.com');
    await owner.page.getByLabel('Password').fill(PW);
    await owner.page.getByRole('button', { name: 'Create account' }).click();
    await owner.page.waitForURL(`${site}/`);
    const me = await (await owner.page.request.get(`${site}/auth/api/v1/user`)).json();
    const { organization } = await internal('/organizations', { name: 'Lighthouse Labs', created_by_user_id: me.id });
    const { invitation } = await internal(`/organizations/${organization.id}/invitations`,
      { actor_user_id: me.id, email: 'invitee@example.com', role: 'member' });
    assert.ok(invitation.invite_url.startsWith(`${site}/auth/invitations/accept?token=`), invitation.invite_url);
    await owner.context.close();

    // The invitation mail arrives; its link (quoted-printable undone) is the one to follow.
    const deadline = Date.now() + 10000;
    let mail;
    while (!(mail = sink.messages.find((m) => m.to.includes('invitee@example.com')))) {
      assert.ok(Date.now() < deadline, 'the invitation mail did not arrive within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const text = mail.data.replace(/=\n/g, '').replace(/=3D/g, '=');
    const mailed = text.match(/https?:\/\/[^\s"<>]+\/auth\/invitations\/accept\?token=[A-Za-z0-9_-]+/)?.[0];
    assert.equal(mailed, invitation.invite_url, text);

    // The invitee, in a browser of their own, follows the mailed link.
    const { context, page } = await newPage();
    const landing = await page.goto(mailed);
    assert.equal(landing.status(), 200);
    await page.getByRole('heading', { name: 'Join Lighthouse Labs' }).waitFor();
    assert.match(await page.locator('main').textContent(), /invitee@example\.com/);
    await page.screenshot({ path: join(SHOTS, 'invitation-landing.png'), fullPage: true });

    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL(/\/auth\/invitations\/signup\?token=/);
    const email = page.getByLabel('Email');
    assert.equal(await email.inputValue(), 'invitee@example.com');
    assert.equal(await email.isEditable(), false, 'the invited address is fixed');
    // The password field has focus on load.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
    await page.screenshot({ path: join(SHOTS, 'invitation-signup.png'), fullPage: true });

    // A weak password is refused on the page, visibly.
    await page.getByLabel('Password').fill('12345678');
    await page.getByRole('button', { name: 'Create account and join' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').textContent(), /too common/);
    await page.screenshot({ path: join(SHOTS, 'invitation-signup-error.png'), fullPage: true });

    await page.getByLabel('Password').fill(PW);
    await page.getByRole('button', { name: 'Create account and join' }).click();
    await page.waitForURL(`${site}/`);
    assert.equal(await page.locator('h1').textContent(), 'The application');

    // The session is in the invited organization, and the account page shows it.
    const current = await (await page.request.get(`${site}/auth/api/v1/organizations/current`)).json();
    assert.equal(current.id, organization.id);
    await page.goto(`${site}/auth/account`);
    const orgs = page.locator('section[aria-labelledby="orgs-h"]');
    await orgs.getByText('Lighthouse Labs').waitFor();
    assert.match(await orgs.locator('li', { hasText: 'Lighthouse Labs' }).textContent(), /Current/);
    await orgs.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'invitation-account.png'), fullPage: true });

    // The personal organization is one click away; switching comes back with a notice.
    await orgs.getByRole('button', { name: /^Switch to / }).click();
    await page.getByText('You switched organization.').waitFor();
    assert.doesNotMatch(await page.locator('section[aria-labelledby="orgs-h"] li', { hasText: 'Lighthouse Labs' }).textContent(), /Current/);

    // The link is spent: a readable page, not a form.
    const used = await page.goto(invitation.invite_url);
    assert.equal(used.status(), 410);
    await page.getByRole('heading', { name: 'This invitation was already used' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'invitation-used.png'), fullPage: true });
    await context.close();
  } finally {
    gw.server.close();
    sink.server.close();
    own.proc.kill('SIGTERM');
    rmSync(own.dir, { recursive: true, force: true });
  }
});

test('error page, phone layout and dark theme look like the product', async () => {
  const { context, page } = await newPage();
  const res = await page.goto(`${base}/auth/no-such-page`);
  assert.equal(res.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'error-404.png'), fullPage: true });
  await context.close();

  const phone = await newPage({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true });
  await phone.page.goto(`${base}/auth/login`);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling on a phone');
  await phone.page.screenshot({ path: join(SHOTS, 'login-phone-dark.png'), fullPage: true });
  await phone.context.close();
});

// An administrator made from the shell, as an operator does on a fresh install.
function createAdmin(email) {
  return new Promise((ok, fail) => {
    const env = { PATH: process.env.PATH, AUTHARA_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const cli = spawn(BIN, ['admin', 'create', '--email', email], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (c) => { out += c; });
    cli.stderr.on('data', (c) => { out += c; });
    cli.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`admin create failed: ${out}`))));
    cli.stdin.end(`${PW}\n`);
  });
}

test('admin console: search a user, open them, revoke their session; their browser is signed out', async () => {
  await createAdmin('root@example.com');
  const member = await newPage({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1' });
  await signUp(member.page, 'member@example.com', '/member-home');

  const admin = await newPage();
  await admin.page.goto(`${base}/auth/login?return_to=/auth/admin`);
  await admin.page.getByLabel('Email').fill('root@example.com');
  await admin.page.getByLabel('Password').fill(PW);
  await admin.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await admin.page.waitForURL(`${base}/auth/admin`);
  await admin.page.getByText('sign-ups in 24 h').waitFor();
  await admin.page.screenshot({ path: join(SHOTS, 'admin-dashboard.png'), fullPage: true });

  await admin.page.getByLabel('Find a user').fill('member@');
  await admin.page.getByRole('button', { name: 'Search' }).click();
  await admin.page.waitForURL(/\/auth\/admin\/users\?q=/);
  await admin.page.screenshot({ path: join(SHOTS, 'admin-users.png'), fullPage: true });
  await admin.page.getByRole('link', { name: 'member@example.com' }).click();
  await admin.page.waitForURL(/\/auth\/admin\/users\/[0-9a-f-]+$/);
  await admin.page.getByText('Safari on iPhone', { exact: true }).waitFor();
  await admin.page.screenshot({ path: join(SHOTS, 'admin-user.png'), fullPage: true });
  await admin.page.getByRole('button', { name: /^Revoke session / }).first().click();
  await admin.page.getByText('That session was revoked.').waitFor();

  await member.page.goto(`${base}/auth/account`);
  await member.page.waitForURL(/\/auth\/login\?return_to=/);
  assert.equal(await member.page.getByRole('heading', { name: 'Sign in' }).count(), 1, 'the revoked browser is signed out');

  await admin.page.goto(`${base}/auth/admin/audit`);
  await admin.page.locator('td', { hasText: 'user.session_revoked' }).first().waitFor();
  await admin.page.screenshot({ path: join(SHOTS, 'admin-audit.png'), fullPage: true });
  await admin.page.goto(`${base}/auth/admin/failures`);
  await admin.page.screenshot({ path: join(SHOTS, 'admin-failures.png'), fullPage: true });
  await admin.page.goto(`${base}/auth/admin/webhooks`);
  await admin.page.screenshot({ path: join(SHOTS, 'admin-webhooks.png'), fullPage: true });
  await member.context.close();
  await admin.context.close();
});

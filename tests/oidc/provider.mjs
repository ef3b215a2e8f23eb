// A real OpenID provider for the browser tests: `oidc-provider` on a free local port, with its
// development login and consent pages, one confidential test client, and accounts made up on
// the fly: signing in as `ada@example.com` is the account `ada@example.com` with that verified
// email. Used by tests/browser/oauth.test.mjs.
import http from 'node:http';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'authara-test';
export const CLIENT_SECRET = 'authara-test-secret-0123456789';

// Starts the provider; `redirectUris` are the client's registered callbacks.
export async function startIdp({ redirectUris }) {
  const server = http.createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['authara-browser-test-cookie-key'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: true, name: id.split('@')[0] };
        },
      };
    },
  });
  // Quiet: the development-only warnings are expected here.
  provider.on('server_error', (ctx, err) => { console.error('oidc-provider error', err); });
  server.on('request', provider.callback());
  return { issuer, close: () => new Promise((ok) => server.close(ok)) };
}

// Upstream OpenID Connect providers for Portcullis' provider tests (panva/node-oidc-provider, OpenID certified).
//
// One process runs two providers on loopback: "conform" (conformIdTokenClaims: true, the default: the ID token
// carries only sub/nonce/aud/iss..., profile and email come from userinfo) and "nonconform" (the claims are put in
// the ID token too). Each registers the clients
//   rs256 / rs256-secret   ID tokens signed RS256, client_secret_basic
//   es256 / es256-secret   ID tokens signed ES256, client_secret_basic
//   post  / post-secret    RS256, client_secret_post
// with the redirect URIs in REDIRECT_URIS (comma-separated). PKCE (S256) is required. The development login form
// accepts any login and password; the login becomes `sub`, with email <sub>@example.org (verified unless the login
// starts with "unverified"), name "User <sub>", preferred_username <sub> and groups ["users", "<sub>-group"].
//
// Keys are generated at every start with fresh key ids, so a restart is a key rotation. PORTS="p1,p2" reuses
// ports (for a restart); by default free ports are chosen. ISSUERS="i1,i2" announces other issuers than the listening
// addresses (an empty item keeps the address): a proxy in front, such as the tests' fault proxy. The first stdout line is JSON:
// {"conform": "http://127.0.0.1:p1", "nonconform": "http://127.0.0.1:p2"}.
import http from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const stamp = randomUUID().slice(0, 8);
const jwk = (type, opts, kid) => ({ ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), kid, use: 'sig' });
const JWKS = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, `rsa-${stamp}`),
    jwk('ec', { namedCurve: 'P-256' }, `ec-${stamp}`),
  ],
};
const REDIRECT_URIS = (process.env.REDIRECT_URIS || 'http://127.0.0.1:1/oauth/callback/oidc').split(',');
const PORTS = (process.env.PORTS || '0,0').split(',').map(Number);
const ISSUERS = (process.env.ISSUERS || ',').split(',');

const client = (id, alg, auth) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  redirect_uris: REDIRECT_URIS,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: auth,
  id_token_signed_response_alg: alg,
});

const configuration = (conform) => ({
  clients: [
    client('rs256', 'RS256', 'client_secret_basic'),
    client('es256', 'ES256', 'client_secret_basic'),
    client('post', 'RS256', 'client_secret_post'),
  ],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    async claims() {
      return {
        sub,
        email: `${sub}@example.org`,
        email_verified: !sub.startsWith('unverified'),
        name: `User ${sub}`,
        preferred_username: sub,
        groups: ['users', `${sub}-group`],
      };
    },
  }),
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
  cookies: { keys: ['portcullis-test-cookie-key'] },
  jwks: JWKS,
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
  conformIdTokenClaims: conform,
});

const listen = (port) => new Promise((resolve, reject) => {
  const server = http.createServer();
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve(server));
});

const start = async (port, conform, announced) => {
  const server = await listen(port);
  const issuer = announced || `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration(conform));
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  return issuer;
};

const conform = await start(PORTS[0], true, ISSUERS[0]);
const nonconform = await start(PORTS[1], false, ISSUERS[1]);
console.log(JSON.stringify({ conform, nonconform }));

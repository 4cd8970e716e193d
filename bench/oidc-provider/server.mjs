// oidc-provider (panva/node-oidc-provider, OpenID certified) configured for Portcullis' benchmark comparison:
// the same operations Portcullis is measured on, on loopback, in one Node process (run.sh pins it to CPU 0 and
// sets NODE_ENV=production).
//
// * Two confidential clients, `bench` (RS256 ID tokens) and `bench-es` (ES256 ID tokens), secret
//   `bench-client-secret` (client_secret_basic), with the grants client_credentials, refresh_token and
//   authorization_code; refresh tokens rotate on every use, as Portcullis' do (rotateRefreshToken: true), and a
//   refresh with `openid` issues a new ID token, as Portcullis' does.
// * Features: clientCredentials, introspection (POST /token/introspection), userinfo (GET /me).
// * Storage: an unbounded in-process Map (the package's own MemoryAdapter is an LRU of 1,000 entries, which
//   evicts grants under load and is documented as not for production); expired entries are not swept during a
//   run, like Portcullis' SQLite state within a run.
// * The benchmark needs tokens without a browser, so this process mints them through the provider's own models
//   (a Grant with `openid offline_access profile email`, then an AccessToken or RefreshToken of that grant):
//   GET /bench/tokens?refresh=N[&client=bench-es] answers {"access_token": "...", "refresh_tokens": [N fresh tokens]}. Served on the
//   same port, outside the provider's routes.
//
// PORT (default 0: a free port). The first stdout line is JSON: {"issuer": "http://127.0.0.1:<port>"}.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from '../../crates/test-upstreams/peers/oidc/node_modules/oidc-provider/lib/index.js';

const store = new Map();
const grantMembers = new Map();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      let members = grantMembers.get(payload.grantId);
      if (!members) grantMembers.set(payload.grantId, (members = new Set()));
      members.add(key);
    }
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt < Date.now()) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid() {
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) || []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

const jwk = (type, opts, kid) => ({ ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), kid, use: 'sig' });

const configuration = {
  adapter: MapAdapter,
  clients: [['bench', 'RS256'], ['bench-es', 'ES256']].map(([client_id, alg]) => ({
    client_id,
    client_secret: 'bench-client-secret',
    redirect_uris: ['http://127.0.0.1:9/cb'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  })),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    async claims() {
      return { sub, email: `${sub}@bench.invalid`, email_verified: false, name: sub, preferred_username: sub };
    },
  }),
  rotateRefreshToken: true,
  ttl: { AccessToken: 7200, ClientCredentials: 7200, RefreshToken: 86400, IdToken: 3600, Grant: 86400 },
  cookies: { keys: ['portcullis-bench-cookie-key'] },
  jwks: { keys: [jwk('rsa', { modulusLength: 2048 }, 'bench-rsa'), jwk('ec', { namedCurve: 'P-256' }, 'bench-ec')] },
};

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const clients = { bench: await provider.Client.find('bench'), 'bench-es': await provider.Client.find('bench-es') };

/** A new grant of the bench user to a client. */
async function grant(clientId) {
  const g = new provider.Grant({ accountId: 'bench-user', clientId });
  g.addOIDCScope('openid offline_access profile email');
  return g.save();
}

/** `{access_token, refresh_tokens: [n]}` of a client, each refresh token in its own grant (one chain per worker). */
async function mint(n, clientId) {
  const client = clients[clientId];
  if (!client) throw new Error(`unknown client ${clientId}`);
  const base = { accountId: 'bench-user', client, gty: 'authorization_code', authTime: Math.floor(Date.now() / 1000) };
  const access_token = await new provider.AccessToken({ ...base, grantId: await grant(clientId), scope: 'openid profile email' }).save();
  const refresh_tokens = [];
  for (let i = 0; i < n; i += 1) {
    refresh_tokens.push(await new provider.RefreshToken({ ...base, grantId: await grant(clientId), scope: 'openid offline_access' }).save());
  }
  return { access_token, refresh_tokens };
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (!req.url.startsWith('/bench/tokens')) return callback(req, res);
  const params = new URL(req.url, issuer).searchParams;
  const n = Math.min(Number(params.get('refresh') || 0), 1024);
  mint(n, params.get('client') || 'bench').then(
    (body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); },
    (err) => { res.statusCode = 500; res.end(String(err)); },
  );
});
console.log(JSON.stringify({ issuer }));

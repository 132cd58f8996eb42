'use strict';
// panva's oidc-provider (a certified OpenID Connect / OAuth 2.0 server) set
// up as the external authorization server of a SMART on FHIR resource
// server. Only what the tests need is configured; algorithms, lifetimes
// and everything else keep oidc-provider's defaults:
//
//   - clients: a backend service (client_credentials, JWT access tokens), a
//     second backend service whose tokens are opaque (resolved through
//     introspection), a confidential web app (authorization code + PKCE),
//     and the resource server's introspection client;
//   - features: resourceIndicators (RFC 8707: a token requested with
//     resource=<FHIR base> carries aud=<FHIR base>; getResourceServerInfo
//     names the scopes and the token format), clientCredentials,
//     introspection, revocation; devInteractions (oidc-provider's built-in
//     login and consent pages, driven over HTTP by the tests);
//   - extraTokenClaims: the SMART launch context (patient, fhirUser) of
//     tokens that carry patient/ scopes.
//
// The server listens on 127.0.0.1, on a port the kernel picks. rotate()
// replaces the signing keys while serving (a new Provider instance with the
// new key set behind the same listener; grants and tokens live in
// oidc-provider's module-level memory adapter and survive).
//
// Run alone for manual testing:
//   node provider.js <FHIR base>     (prints the issuer and the clients)

const crypto = require('node:crypto');
const http = require('node:http');

// The resource server's scopes, as the tests request them.
const FHIR_SCOPES = [
  'system/*.rs', 'system/Patient.rs', 'system/Observation.rs',
  'patient/*.rs', 'patient/Patient.rs', 'patient/Observation.rs',
];

// The end user a devInteractions login names, and the SMART context the
// tokens issued for that user carry.
const USERS = {
  alice: { patient: '123', fhirUser: 'Practitioner/9' },
};

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${crypto.randomBytes(6).toString('hex')}`, use: 'sig' };
}

function secret() {
  return crypto.randomBytes(24).toString('base64url');
}

// startProvider starts the server. fhirBase() returns the FHIR base URL
// (the audience), read lazily because the FHIR server starts after the
// authorization server it trusts.
async function startProvider({ fhirBase }) {
  const { default: Provider, errors } = await import('oidc-provider');
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const redirectUri = `${issuer}/app-callback`; // never followed: the tests read the code from Location

  const clients = {
    backend: { id: 'backend', secret: secret() },
    backendOpaque: { id: 'backend-opaque', secret: secret() },
    app: { id: 'web-app', secret: secret(), redirectUri },
    introspector: { id: 'fhirguard', secret: secret() },
  };
  const service = (c) => ({
    client_id: c.id, client_secret: c.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
  });

  const configuration = () => ({
    clients: [
      service(clients.backend),
      service(clients.backendOpaque),
      {
        client_id: clients.app.id,
        client_secret: clients.app.secret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [clients.app.redirectUri],
      },
      service(clients.introspector),
    ],
    // The FHIR scopes are also plain (static) scopes, so that a token
    // requested without resource still carries them: such a token is
    // opaque and has no aud (oidc-provider meant it for userinfo), and a
    // resource server must refuse it for that reason alone.
    scopes: ['openid', 'offline_access', ...FHIR_SCOPES],
    jwks: { keys: keys.map((k) => ({ ...k })) },
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== fhirBase()) throw new errors.InvalidTarget();
          return {
            scope: FHIR_SCOPES.join(' '),
            audience: fhirBase(),
            accessTokenFormat: client.clientId === clients.backendOpaque.id ? 'opaque' : 'jwt',
          };
        },
      },
    },
    extraTokenClaims: async (ctx, token) => {
      const user = token.accountId && USERS[token.accountId];
      if (!user || !/(^| )patient\//.test(token.scope || '')) return undefined;
      return { patient: user.patient, fhirUser: user.fhirUser };
    },
  });

  let keys = [newSigningKey()];
  let provider = new Provider(issuer, configuration());
  provider.on('server_error', (ctx, err) => console.error('# oidc-provider server_error:', err));
  server.on('request', (req, res) => provider.callback()(req, res));

  return {
    issuer,
    clients,
    redirectUri,
    keys: () => keys.map((k) => k.kid),
    // rotate publishes a new key in front of the current ones: from now on
    // the new key signs, the old keys stay published.
    rotate() {
      keys = [newSigningKey(), ...keys];
      provider = new Provider(issuer, configuration());
      provider.on('server_error', (ctx, err) => console.error('# oidc-provider server_error:', err));
      return keys[0].kid;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

module.exports = { startProvider, FHIR_SCOPES, USERS };

if (require.main === module) {
  const base = process.argv[2];
  if (!base) {
    console.error('usage: node provider.js <FHIR base URL>');
    process.exit(2);
  }
  startProvider({ fhirBase: () => base }).then((p) => {
    console.log(`issuer ${p.issuer}`);
    console.log(JSON.stringify(p.clients, null, 2));
    console.log(`start the demo with: -issuer ${p.issuer} -introspection-url ${p.issuer}/token/introspection ` +
      `-introspection-client-id ${p.clients.introspector.id} -introspection-client-secret ${p.clients.introspector.secret}`);
  });
}

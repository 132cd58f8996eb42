'use strict';
// The fhirguard demo behind a real, independent authorization server:
// panva's oidc-provider (provider.js), with default algorithm settings.
// The demo is started as shipped, with flags only:
//   -issuer <oidc-provider> (JWKS from its OpenID configuration)
//   -introspection-url/-client-id/-client-secret (opaque tokens)
//
// Needs: DEMO_BIN (a built ./examples/chi), npm ci. Run through ../run.sh.

const crypto = require('node:crypto');
const path = require('node:path');
const H = require('../lib/harness');
const { startProvider } = require('./provider');

const LOG_DIR = process.env.INTEROP_LOG_DIR || '';
// The demo's introspection cache: answers are cached at most this long
// (README, AuthConfig.Introspection: MaxTTL default 60 s; the demo sets
// no other value). A revoked token must be refused within it.
const INTROSPECTION_TTL_S = Number(process.env.INTEROP_INTROSPECTION_TTL_S || 60);
const PATIENT = '123'; // the patient of the devInteractions user "alice"
const OTHER = '456';

const suite = new H.Suite('authserver: the demo behind oidc-provider 9.13.3 (JWT and opaque access tokens)');

let op; // the oidc-provider server
let meta; // its OpenID configuration
let demo; // { demo, base, origin }

const basic = (c) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
const form = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined));

// tokenRequest posts a token request with client_secret_basic.
async function tokenRequest(client, params) {
  const r = await H.request(meta.token_endpoint, {
    method: 'POST',
    headers: { Authorization: basic(client), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form(params),
  });
  H.assert(r.status === 200 && r.body.access_token,
    `token request (${params.grant_type}, client ${client.id}) failed: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

// clientCredentials asks for a token for the FHIR server (resource = FHIR
// base), or with { resource: null } for a token that names no resource.
function clientCredentials(client, scope, { resource = demo.base } = {}) {
  return tokenRequest(client, { grant_type: 'client_credentials', scope, resource: resource || undefined });
}

function jwtParts(token) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(p, 'base64url')) };
}

async function introspect(token) {
  const r = await H.request(meta.introspection_endpoint, {
    method: 'POST',
    headers: { Authorization: basic(op.clients.introspector), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form({ token }),
  });
  H.assertEqual(r.status, 200, `introspection at oidc-provider (${r.text.slice(0, 200)})`);
  return r.body;
}

const fhir = (token, pathAndQuery, opts = {}) => H.request(`${demo.base}/${pathAndQuery}`, H.bearer(token, opts));

function expectStatus(r, want, what) {
  const wants = [].concat(want);
  H.assert(wants.includes(r.status),
    `${what}: HTTP ${r.status}, want ${wants.join(' or ')}; WWW-Authenticate: ${r.headers.get('www-authenticate')}; body: ${r.text.slice(0, 300)}`);
}

// A tiny cookie jar for driving oidc-provider's interaction pages over HTTP
// (every cookie is sent back to the issuer; the flow is sequential).
class CookieJar {
  constructor() { this.cookies = new Map(); }

  store(headers) {
    for (const c of headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now())
        || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

// authorizationCode runs SMART's authorization code flow with PKCE against
// oidc-provider: the authorization request (with resource = FHIR base), the
// built-in login page (user "alice") and consent page submitted over HTTP,
// the redirect with the code, and the token request (resource again, so the
// access token is a JWT for the FHIR server).
async function authorizationCode(scope) {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const state = crypto.randomBytes(12).toString('base64url');
  const jar = new CookieJar();
  let url = `${meta.authorization_endpoint}?${form({
    client_id: op.clients.app.id, response_type: 'code', redirect_uri: op.redirectUri, scope, state,
    resource: demo.base, code_challenge: challenge, code_challenge_method: 'S256',
  })}`;
  let method = 'GET';
  let body;
  const steps = [];
  for (let i = 0; i < 12; i++) {
    const r = await fetch(url, {
      method, body, redirect: 'manual', signal: AbortSignal.timeout(30000),
      headers: { Cookie: jar.header(), ...(body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
    });
    jar.store(r.headers);
    steps.push(`${method} ${new URL(url).pathname} → ${r.status}`);
    method = 'GET';
    body = undefined;
    if (r.status >= 300 && r.status < 400) {
      await r.arrayBuffer();
      url = new URL(r.headers.get('location'), url).href;
      if (url.startsWith(op.redirectUri)) {
        const q = new URL(url).searchParams;
        H.assert(!q.has('error'), `authorization refused: ${q.get('error')}: ${q.get('error_description')}`);
        H.assertEqual(q.get('state'), state, 'state');
        return tokenRequest(op.clients.app, {
          grant_type: 'authorization_code', code: q.get('code'), redirect_uri: op.redirectUri,
          code_verifier: verifier, resource: demo.base,
        });
      }
      continue;
    }
    const html = await r.text();
    H.assertEqual(r.status, 200, `interaction page ${url}: ${html.slice(0, 200)}`);
    const prompt = (html.match(/name="prompt" value="(\w+)"/) || [])[1];
    H.assert(prompt, `no login or consent form at ${url}`);
    method = 'POST';
    body = prompt === 'login' ? form({ prompt, login: 'alice', password: 'any' }) : form({ prompt });
  }
  throw new Error(`the authorization code flow did not end: ${steps.join(', ')}`);
}

suite.test('discovery: the demo serves a SMART configuration derived from oidc-provider\'s metadata', async () => {
  const r = await H.request(`${demo.base}/.well-known/smart-configuration`);
  H.assertEqual(r.status, 200, 'GET .well-known/smart-configuration');
  H.assertEqual(r.body.token_endpoint, meta.token_endpoint, 'token_endpoint');
  H.assertEqual(r.body.authorization_endpoint, meta.authorization_endpoint, 'authorization_endpoint');
  H.assert(Array.isArray(r.body.capabilities) && r.body.capabilities.length > 0, 'no capabilities');
  // SMART App Launch 2.2 rules the derived document must still keep.
  const methods = r.body.code_challenge_methods_supported || [];
  H.assert(methods.includes('S256') && !methods.includes('plain'), `code_challenge_methods_supported ${JSON.stringify(methods)}`);
  if (r.body.capabilities.includes('client-confidential-asymmetric')) {
    const algs = r.body.token_endpoint_auth_signing_alg_values_supported || [];
    H.assert(algs.includes('RS384') || algs.includes('ES384'),
      `client-confidential-asymmetric announced, but token_endpoint_auth_signing_alg_values_supported ${JSON.stringify(algs)} has neither RS384 nor ES384 (oidc-provider's defaults offer neither)`);
  }
  return `capabilities: ${r.body.capabilities.join(' ')}`;
});

suite.test('RFC 9728: protected resource metadata at /.well-known/oauth-protected-resource/fhir', async () => {
  const basePath = new URL(demo.base).pathname;
  const r = await H.request(`${demo.origin}/.well-known/oauth-protected-resource${basePath}`);
  if (r.status !== 200) {
    // Say whether the document exists at least below the FHIR base.
    const below = await H.request(`${demo.base}/.well-known/oauth-protected-resource`);
    throw new Error(`GET /.well-known/oauth-protected-resource${basePath} (no token): HTTP ${r.status}, want 200 ` +
      `(RFC 9728 §3.1 location); ${basePath}/.well-known/oauth-protected-resource answers ${below.status}`);
  }
  H.assertEqual(r.body.resource, demo.base, 'resource');
  H.assert(Array.isArray(r.body.authorization_servers) && r.body.authorization_servers.includes(op.issuer),
    `authorization_servers ${JSON.stringify(r.body.authorization_servers)} lacks ${op.issuer}`);
});

suite.test('system/ scopes: a client_credentials JWT access token (resource = FHIR base) reads across patients', async () => {
  const tok = await clientCredentials(op.clients.backend, 'system/*.rs');
  const { header, claims } = jwtParts(tok.access_token);
  H.assertEqual(header.typ, 'at+jwt', 'JWT typ');
  H.assertEqual(claims.aud, demo.base, 'aud');
  H.assertEqual(claims.iss, op.issuer, 'iss');
  const a = await fhir(tok.access_token, `Patient/${PATIENT}`);
  expectStatus(a, 200, `GET Patient/${PATIENT}`);
  const b = await fhir(tok.access_token, `Patient/${OTHER}`);
  expectStatus(b, 200, `GET Patient/${OTHER}`);
  const s = await fhir(tok.access_token, 'Observation');
  expectStatus(s, 200, 'GET Observation');
  const subjects = new Set((s.body.entry || []).map((e) => e.resource.subject && e.resource.subject.reference));
  H.assert(subjects.has(`Patient/${PATIENT}`) && subjects.has(`Patient/${OTHER}`), `a system search should see both patients, saw ${[...subjects]}`);
});

suite.test('patient/ scopes: authorization code + PKCE through oidc-provider\'s login and consent pages; the JWT\'s patient claim confines it', async () => {
  const tok = await authorizationCode('openid patient/*.rs');
  const { claims } = jwtParts(tok.access_token);
  H.assertEqual(claims.patient, PATIENT, 'patient claim (extraTokenClaims)');
  H.assertEqual(claims.aud, demo.base, 'aud');
  H.assert(/(^| )patient\/\*\.rs( |$)/.test(claims.scope), `scope ${claims.scope}`);
  expectStatus(await fhir(tok.access_token, `Patient/${PATIENT}`), 200, `GET Patient/${PATIENT}`);
  const s = await fhir(tok.access_token, 'Observation');
  expectStatus(s, 200, 'GET Observation');
  H.assert((s.body.entry || []).length > 0, 'no Observation of the patient returned');
  for (const e of s.body.entry) H.assertEqual(e.resource.subject.reference, `Patient/${PATIENT}`, 'Observation subject');
  expectStatus(await fhir(tok.access_token, `Patient/${OTHER}`), [403, 404], `GET Patient/${OTHER} (another patient)`);
  const other = await fhir(tok.access_token, `Observation?patient=${OTHER}`);
  expectStatus(other, [200, 403, 404], `GET Observation?patient=${OTHER}`);
  if (other.status === 200) {
    H.assertEqual((other.body.entry || []).length, 0, `Observation?patient=${OTHER}: entries of another patient`);
  }
});

suite.test('insufficient_scope: 403 with WWW-Authenticate error="insufficient_scope"', async () => {
  const tok = await clientCredentials(op.clients.backend, 'system/Patient.rs');
  expectStatus(await fhir(tok.access_token, `Patient/${PATIENT}`), 200, `GET Patient/${PATIENT} with system/Patient.rs`);
  const r = await fhir(tok.access_token, 'Observation');
  expectStatus(r, 403, 'GET Observation with system/Patient.rs only');
  const www = r.headers.get('www-authenticate') || '';
  H.assert(/^Bearer /.test(www) && /error="insufficient_scope"/.test(www), `WWW-Authenticate: ${www}`);
});

suite.test('opaque token carrying aud: accepted through introspection', async () => {
  const tok = await clientCredentials(op.clients.backendOpaque, 'system/*.rs');
  H.assert(tok.access_token.split('.').length !== 3, 'expected an opaque token');
  const info = await introspect(tok.access_token);
  H.assert(info.active && info.aud === demo.base, `introspection: ${JSON.stringify(info)}`);
  expectStatus(await fhir(tok.access_token, `Patient/${PATIENT}`), 200, `GET Patient/${PATIENT} with an opaque token`);
  const r = await fhir(tok.access_token, 'Observation');
  expectStatus(r, 200, 'GET Observation with an opaque token');
});

suite.test('opaque token without aud (requested without resource): refused with 401', async () => {
  const tok = await clientCredentials(op.clients.backend, 'system/*.rs', { resource: null });
  const info = await introspect(tok.access_token);
  H.assert(info.active && info.scope === 'system/*.rs' && info.aud === undefined,
    `expected an active audience-less token with scope system/*.rs, introspection says ${JSON.stringify(info)}`);
  const r = await fhir(tok.access_token, `Patient/${PATIENT}`);
  expectStatus(r, 401, 'GET with a token that names no audience');
  H.assert(/error="invalid_token"/.test(r.headers.get('www-authenticate') || ''), `WWW-Authenticate: ${r.headers.get('www-authenticate')}`);
});

suite.test('key rotation: oidc-provider publishes a new key and signs with it; the demo accepts the token at once', async () => {
  const before = await clientCredentials(op.clients.backend, 'system/*.rs');
  const oldKid = jwtParts(before.access_token).header.kid;
  expectStatus(await fhir(before.access_token, `Patient/${PATIENT}`), 200, 'GET with a token of the current key');
  const newKid = op.rotate();
  const jwks = await H.request(meta.jwks_uri);
  H.assert(jwks.body.keys.map((k) => k.kid).join() === [newKid, oldKid].join(), `JWKS now: ${jwks.text.slice(0, 200)}`);
  const after = await clientCredentials(op.clients.backend, 'system/*.rs');
  H.assertEqual(jwtParts(after.access_token).header.kid, newKid, 'kid of the new token');
  // One request, no retry: "at once".
  expectStatus(await fhir(after.access_token, `Patient/${PATIENT}`), 200, 'GET with a token signed by the newly published key');
  expectStatus(await fhir(before.access_token, `Patient/${PATIENT}`), 200, 'GET with a token of the old key (still published)');
});

suite.test(`revocation: a revoked opaque token is refused within the introspection cache TTL (${INTROSPECTION_TTL_S} s)`, async () => {
  const tok = await clientCredentials(op.clients.backendOpaque, 'system/*.rs');
  const cachedFrom = Date.now(); // the demo introspects during this request and caches the answer
  expectStatus(await fhir(tok.access_token, `Patient/${PATIENT}`), 200, 'GET before revocation (answer now cached)');
  const cached = Date.now(); // the answer was cached at the latest now
  const rv = await H.request(meta.revocation_endpoint, {
    method: 'POST',
    headers: { Authorization: basic(op.clients.backendOpaque), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form({ token: tok.access_token, token_type_hint: 'access_token' }),
  });
  H.assertEqual(rv.status, 200, `revocation at oidc-provider (${rv.text.slice(0, 200)})`);
  const revoked = Date.now();
  H.assertEqual((await introspect(tok.access_token)).active, false, 'oidc-provider says the token is inactive');
  // Not a timing assertion: a request the demo still answered 200 must
  // have been sent before the cached answer could expire (the demo read
  // it no earlier than the request started), however slow the machine.
  let last;
  let lastOkStart = cachedFrom;
  await H.poll(`the demo to refuse the revoked token (bounded by the ${INTROSPECTION_TTL_S} s cache TTL)`, async () => {
    const start = Date.now();
    last = await fhir(tok.access_token, `Patient/${PATIENT}`);
    if (last.status === 200) { lastOkStart = start; return undefined; }
    return true;
  }, { timeoutMs: (INTROSPECTION_TTL_S + 60) * 1000, intervalMs: 1000 });
  const now = Date.now();
  expectStatus(last, 401, 'the revoked token');
  const okAfterCache = (lastOkStart - cached) / 1000;
  H.assert(okAfterCache <= INTROSPECTION_TTL_S,
    `a request sent ${okAfterCache.toFixed(1)} s after the answer was cached still got 200 (TTL ${INTROSPECTION_TTL_S} s)`);
  return `refused ${((now - revoked) / 1000).toFixed(1)} s after revocation; last 200 for a request sent ${okAfterCache.toFixed(1)} s after caching`;
}, { timeoutMs: (INTROSPECTION_TTL_S + 60) * 1000 });

suite.run({
  setup: async () => {
    let base = null;
    op = await startProvider({ fhirBase: () => base });
    meta = (await H.request(`${op.issuer}/.well-known/openid-configuration`)).body;
    H.assert(meta.introspection_endpoint && meta.revocation_endpoint, 'oidc-provider lists no introspection/revocation endpoint');
    demo = await H.startDemo([
      '-issuer', op.issuer,
      '-introspection-url', meta.introspection_endpoint,
      '-introspection-client-id', op.clients.introspector.id,
      '-introspection-client-secret', op.clients.introspector.secret,
    ], { logFile: LOG_DIR && path.join(LOG_DIR, 'demo-authserver.log') });
    base = demo.base;
    console.log(`# oidc-provider ${op.issuer}, FHIR base ${demo.base}`);
  },
  teardown: async () => {
    if (demo) await demo.demo.stop();
    if (op) await op.close();
  },
});

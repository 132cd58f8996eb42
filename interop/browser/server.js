'use strict';
// A static web server for the SMART app pages: app/ plus fhirclient's
// browser bundle at /fhir-client.js. It listens on 127.0.0.1 port 0 (a port
// the kernel picks), never the FHIR server's port, so every call the app
// makes to the FHIR server and to the authorization server is cross-origin.
//
// Run alone for manual testing: node server.js [port]. Port 9000 matches the
// demo's default -app-redirect-uris (http://127.0.0.1:9000/), so
//   go run ./examples/chi   and   node interop/browser/server.js 9000
// then open http://127.0.0.1:9000/launch.html?iss=http://127.0.0.1:8080/fhir

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const APP_DIR = path.join(__dirname, 'app');
const BUNDLE = path.join(__dirname, 'node_modules', 'fhirclient', 'build', 'fhir-client.js');

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

function startAppServer({ port = 0 } = {}) {
  const log = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://app.invalid');
    let file = null;
    if (url.pathname === '/fhir-client.js') file = BUNDLE;
    else if (url.pathname === '/') file = path.join(APP_DIR, 'index.html');
    else if (/^\/[a-z]+\.html$/.test(url.pathname)) file = path.join(APP_DIR, url.pathname.slice(1));
    log.push({ method: req.method, path: url.pathname });
    if (req.method !== 'GET' || !file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, {
        'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
        'Cache-Control': 'no-store',
      }).end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        origin: `http://127.0.0.1:${port}`,
        log,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

module.exports = { startAppServer };

if (require.main === module) {
  startAppServer({ port: Number(process.argv[2] || 0) }).then((s) => {
    console.log(`SMART app served at ${s.origin} (redirect URI ${s.origin}/).`);
    console.log(`Start the demo with -app-redirect-uris ${s.origin}/ (the default for port 9000), then open`);
    console.log(`  standalone launch: ${s.origin}/launch.html?iss=<FHIR base>`);
    console.log(`  EHR launch:        <demo issuer>/launch?launch_uri=${encodeURIComponent(`${s.origin}/launch.html`)}&patient=123`);
  });
}

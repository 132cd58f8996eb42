'use strict';
// Shared pieces of the interop suites: a tiny sequential test runner that
// ends with the line "N passed, M failed", bounded polling, and starting and
// stopping the fhirguard demo binary. Plain node (no dependencies), so both
// npm projects can require it.

const { spawn } = require('node:child_process');
const fs = require('node:fs');

// Every wait in the suites is a poll bounded by a deadline; this is the
// default, generous for a busy 2-core CI machine.
const DEFAULT_DEADLINE_MS = Number(process.env.INTEROP_DEADLINE_MS || 60000);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// poll calls fn until it returns a value other than undefined/false and
// returns that value. It throws after timeoutMs with the last error or
// value, so a failure says what was being waited for.
async function poll(what, fn, { timeoutMs = DEFAULT_DEADLINE_MS, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      if (err && err.fatal) throw err;
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${why})`);
    }
    await sleep(intervalMs);
  }
}

// withDeadline rejects when promise takes longer than ms.
function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// fatal marks an error that ends a poll at once (waiting longer cannot help).
function fatal(message) {
  const err = new Error(message);
  err.fatal = true;
  return err;
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function assertEqual(actual, expected, message) {
  if (actual !== expected) {
    throw new Error(`${message}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
  }
}

// Suite runs its tests one after the other (they share servers and state),
// prints one line per test, and ends with "N passed, M failed". A test may
// depend on an earlier one; when that one failed it fails too, saying why.
class Suite {
  constructor(name) {
    this.name = name;
    this.tests = [];
    this.results = new Map();
    this.setupError = null;
  }

  test(name, fn, { needs = [], timeoutMs = 2 * DEFAULT_DEADLINE_MS } = {}) {
    this.tests.push({ name, fn, needs, timeoutMs });
  }

  // A test passes when fn returns (a string it returns is printed with the
  // result) and fails when it throws.

  // run executes setup (which may throw: then every test fails with the
  // setup error), then the tests, then teardown, prints the final line and
  // exits the process: status 1 when a test failed.
  async run({ setup, teardown } = {}) {
    const started = Date.now();
    console.log(`# ${this.name}`);
    let passed = 0;
    let failed = 0;
    try {
      if (setup) {
        try {
          await setup();
        } catch (err) {
          this.setupError = err;
          console.log('# setup failed:');
          for (const line of String(err && err.message ? err.message : err).split('\n')) console.log(`#   ${line}`);
        }
      }
      for (const t of this.tests) {
        const t0 = Date.now();
        let err = null;
        let note;
        if (this.setupError) {
          err = new Error('setup failed (see above)');
        } else {
          const missing = t.needs.filter((n) => this.results.get(n) !== true);
          if (missing.length) {
            err = new Error(`needs ${missing.map((n) => JSON.stringify(n)).join(', ')}, which did not pass`);
          } else {
            try {
              note = await withDeadline(Promise.resolve().then(t.fn), t.timeoutMs, `test "${t.name}"`);
            } catch (e) {
              err = e;
            }
          }
        }
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        this.results.set(t.name, err === null);
        if (err === null) {
          passed++;
          console.log(`ok   - ${t.name} (${secs} s${typeof note === 'string' ? `; ${note}` : ''})`);
        } else {
          failed++;
          console.log(`FAIL - ${t.name} (${secs} s)`);
          for (const line of String(err && err.message ? err.message : err).split('\n')) {
            console.log(`       ${line}`);
          }
        }
      }
    } finally {
      if (teardown) {
        try {
          await withDeadline(Promise.resolve().then(teardown), DEFAULT_DEADLINE_MS, 'teardown');
        } catch (err) {
          console.log(`# teardown: ${oneLine(err)}`);
        }
      }
    }
    console.log(`# ${this.name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`${passed} passed, ${failed} failed`);
    // Exit now: a handle left open by a failed teardown must not keep the
    // suite (and CI) waiting. The exit hook kills any demo still running.
    process.exit(failed > 0 || this.tests.length === 0 ? 1 : 0);
  }
}

function oneLine(err) {
  return String(err && err.message ? err.message : err).split('\n').join(' | ');
}

// Demo is a running fhirguard demo binary (go build ./examples/chi).
class Demo {
  constructor(proc, logFile) {
    this.proc = proc;
    this.stdout = '';
    this.stderr = '';
    this.exited = null; // {code, signal} once exited
    this.logStream = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { this.stdout += d; if (this.logStream) this.logStream.write(d); });
    proc.stderr.on('data', (d) => { this.stderr += d; if (this.logStream) this.logStream.write(d); });
    this.exitPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => { this.exited = { code, signal }; resolve(this.exited); });
    });
  }

  // requests returns the demo's request log lines (method, path, status),
  // optionally from a given offset in its stderr.
  requests(since = 0) {
    const out = [];
    for (const line of this.stderr.slice(since).split('\n')) {
      if (!/ msg=request /.test(line)) continue;
      const m = {};
      for (const [, k, v] of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
        m[k] = v.startsWith('"') ? JSON.parse(v) : v;
      }
      out.push({ method: m.method, path: m.path, status: Number(m.status) });
    }
    return out;
  }

  stderrTail(n = 15) {
    return this.stderr.trim().split('\n').slice(-n).join('\n');
  }

  async stop() {
    if (this.exited) return this.exited;
    this.proc.kill('SIGTERM');
    try {
      return await withDeadline(this.exitPromise, 20000, 'demo shutdown');
    } catch {
      this.proc.kill('SIGKILL');
      return this.exitPromise;
    } finally {
      if (this.logStream) this.logStream.end();
    }
  }
}

const demos = new Set();
process.on('exit', () => {
  for (const d of demos) if (!d.exited) d.proc.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const d of demos) if (!d.exited) d.proc.kill('SIGKILL');
    process.exit(130);
  });
}

// startDemo starts the demo binary with args (always on 127.0.0.1 port 0:
// the kernel picks a free port, which the banner reports), waits for its
// banner and for GET <base>/metadata to answer 200, and returns
// { demo, base, origin, issuer }.
async function startDemo(args, { bin = process.env.DEMO_BIN, logFile } = {}) {
  assert(bin, 'DEMO_BIN is not set (interop/run.sh builds the demo and sets it)');
  const proc = spawn(bin, ['-addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const demo = new Demo(proc, logFile);
  demos.add(demo);
  try {
    const base = await poll('the demo banner ("FHIR base:")', () => {
      if (demo.exited) {
        throw fatal(`demo exited (${JSON.stringify(demo.exited)}) before serving; its last words:\n${demo.stderrTail(3)}`);
      }
      const m = demo.stdout.match(/FHIR base:\s+(\S+)/);
      return m ? m[1] : undefined;
    }, { timeoutMs: DEFAULT_DEADLINE_MS });
    const issuer = (demo.stdout.match(/issuer:\s+(\S+)/) || [])[1];
    await poll(`GET ${base}/metadata to answer 200`, async () => {
      if (demo.exited) throw fatal(`demo exited:\n${demo.stderrTail(3)}`);
      const r = await fetch(`${base}/metadata`, { signal: AbortSignal.timeout(10000) });
      return r.status === 200;
    });
    return { demo, base, origin: new URL(base).origin, issuer };
  } catch (err) {
    await demo.stop();
    throw err;
  }
}

// bearer returns fetch options with an Authorization header.
function bearer(token, extra = {}) {
  return { ...extra, headers: { ...(extra.headers || {}), Authorization: `Bearer ${token}` } };
}

// getJSON fetches url and returns { status, headers, body } (body parsed
// as JSON when possible). Redirects are not followed.
async function request(url, opts = {}) {
  const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(30000), ...opts });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body, text };
}

module.exports = {
  DEFAULT_DEADLINE_MS, Suite, Demo, poll, sleep, withDeadline, fatal, assert, assertEqual,
  startDemo, bearer, request, oneLine,
};

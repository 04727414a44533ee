// Shared helpers for the end-to-end tests: start and stop the real `baton`
// binary on a fresh data directory, talk HTTP to it, and run real HTTP
// receivers for webhooks. Everything listens on 127.0.0.1 with port 0.
//
// Every process a test starts is tracked; the test registers stop() with
// t.after(), and a process 'exit' hook SIGKILLs anything still alive, so no
// server outlives the test run even when an assertion throws.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const batonBin = process.env.BATON_BIN
  ? path.resolve(process.env.BATON_BIN)
  : path.join(repoRoot, 'build/src/baton');

/** True when the binary is a sanitizer build (slower; timeouts scale up). */
export const sanitized = /asan|sanitize/i.test(batonBin);
/** Generous multiplier for timeouts that only bound waiting (never assertions on speed). */
export const slow = sanitized ? 3 : 1;

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** A fresh temporary directory; removed by the returned cleanup(). */
export function tempDir(prefix = 'baton-e2e-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function randomKey(prefix) {
  return prefix + Math.random().toString(16).slice(2) + Date.now().toString(16);
}

/**
 * Writes a config YAML. opts: writeKey, adminKeys [{key, scopes}], top (top-level
 * fields), limits, engine, delivery (objects of scalar values written as they are).
 */
export function writeConfig(file, { writeKey, adminKeys = [], top, limits, engine, delivery } = {}) {
  const lines = [];
  for (const [k, v] of Object.entries(top ?? {})) lines.push(`${k}: ${v}`);
  if (writeKey) lines.push('sources:', '  - name: test', `    write_key: ${writeKey}`);
  if (adminKeys.length) {
    lines.push('admin_keys:');
    for (const k of adminKeys) lines.push(`  - key: ${k.key}`, `    scopes: [${k.scopes.join(', ')}]`);
  }
  for (const [name, sec] of [['limits', limits], ['engine', engine], ['delivery', delivery]]) {
    if (!sec) continue;
    lines.push(`${name}:`);
    for (const [k, v] of Object.entries(sec)) lines.push(`  ${k}: ${v}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Runs `baton ARGS...` to completion: {code, signal, stdout, stderr}. */
export function runBaton(args, { env, timeoutMs = 30000 * slow } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(batonBin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); }, timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); live.delete(p); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(p);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function runBatonSync(args) {
  const r = spawnSync(batonBin, args, { encoding: 'utf8', timeout: 30000 * slow });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Low-level HTTP request with full control of headers and body bytes. */
export function request(url, { method = 'GET', headers = {}, body, agent, chunked = false, timeoutMs = 30000 * slow } = {}) {
  return new Promise((resolve, reject) => {
    const buf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    // Without Content-Length node sends the body chunked.
    if (buf && !chunked && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) h['Content-Length'] = buf.length;
    const req = http.request(url, { method, headers: h, agent: agent ?? false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (buf && chunked) {
      // Several chunks, so the server cannot know the size up front.
      for (let i = 0; i < buf.length; i += 1000) req.write(buf.subarray(i, i + 1000));
    } else if (buf) {
      req.write(buf);
    }
    req.end();
  });
}

export const basic = (writeKey) => 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');

/** Polls fn() until it returns a truthy value; throws with `what` on timeout. */
export async function waitFor(fn, { timeoutMs = 10000 * slow, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await delay(intervalMs);
  }
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A running `baton serve`. Use Baton.start(); register srv.stop in t.after.
 */
export class Baton {
  static async start({ dataDir, configFile, journeysDir, args = [], logLevel = 'debug', writeKey, adminKey, env } = {}) {
    const argv = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', logLevel];
    if (configFile) argv.push('--config', configFile);
    if (journeysDir) argv.push('--journeys', journeysDir);
    argv.push(...args);
    const b = new Baton();
    b.dataDir = dataDir;
    b.writeKey = writeKey;
    b.adminKey = adminKey;
    b.proc = spawn(batonBin, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(b.proc);
    b.stdout = '';
    b.stderr = '';
    b.exited = new Promise((resolve) => {
      b.proc.on('close', (code, signal) => { live.delete(b.proc); b.exit = { code, signal }; resolve(b.exit); });
    });
    b.proc.stdout.on('data', (d) => { b.stdout += d; });
    let listeningTimer;
    const listening = new Promise((resolve, reject) => {
      let partial = '';
      b.proc.stderr.on('data', (d) => {
        b.stderr += d;
        partial += d;
        let nl;
        while ((nl = partial.indexOf('\n')) >= 0) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          try {
            const j = JSON.parse(line);
            if (j.msg === 'listening') resolve(j.port);
          } catch { /* not JSON; operations.test checks that */ }
        }
      });
      b.exited.then((e) => reject(new Error(`baton serve exited before listening: ${JSON.stringify(e)}\n${b.stderr}`)));
      const t = setTimeout(() => reject(new Error(`baton serve did not log "listening" in time\n${b.stderr}`)), 30000 * slow);
      b.exited.then(() => clearTimeout(t));
      listeningTimer = t;
    });
    b.proc.on('error', () => {});
    try {
      b.port = await listening;
      clearTimeout(listeningTimer);
    } catch (e) {
      b.proc.kill('SIGKILL');
      await b.exited;
      throw e;
    }
    b.url = `http://127.0.0.1:${b.port}`;
    if (!b.writeKey && !b.adminKey && existsSync(path.join(dataDir, 'credentials.json'))) {
      const c = JSON.parse((await import('node:fs')).readFileSync(path.join(dataDir, 'credentials.json'), 'utf8'));
      b.writeKey = c.write_key;
      b.adminKey = c.admin_key;
    }
    return b;
  }

  get alive() { return !this.exit; }

  /** SIGTERM and wait; SIGKILL if it does not stop in time. Returns {code, signal}. */
  async stop(timeoutMs = 30000 * slow) {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  async kill() {
    if (this.exit) return this.exit;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  /** The stderr lines parsed as JSON (throws on a line that is not). */
  logLines() {
    return this.stderr.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
  }

  ingest(pathname, body, { writeKey = this.writeKey, headers = {}, agent } = {}) {
    const h = { 'Content-Type': 'application/json', ...headers };
    if (writeKey !== null) h.Authorization = basic(writeKey);
    return request(this.url + pathname, { method: 'POST', headers: h, body, agent });
  }

  admin(method, pathname, { body, key = this.adminKey, headers = {} } = {}) {
    const h = { ...headers };
    if (key !== null) h.Authorization = `Bearer ${key}`;
    return request(this.url + pathname, { method, headers: h, body });
  }

  async stats() {
    const r = await this.admin('GET', '/v1/stats');
    if (r.status !== 200) throw new Error(`GET /v1/stats: ${r.status} ${r.text}`);
    return r.json;
  }

  /** Waits until the engine has applied everything durable at the time of the call. */
  async settled() {
    const target = (await this.stats()).log.durable_lsn;
    return waitFor(async () => {
      const s = await this.stats();
      return s.engine.applied_lsn >= target && s;
    }, { what: `engine applied_lsn >= ${target}` });
  }

  async profile(id) {
    return this.admin('GET', '/v1/profiles/' + encodeURIComponent(id));
  }

  putJourney(id, yaml) {
    return this.admin('PUT', '/v1/journeys/' + id, { body: yaml, headers: { 'Content-Type': 'application/yaml' } });
  }
}

/**
 * Checks a stopped server ended cleanly: exit 0, no sanitizer report, and
 * every stderr line a JSON log line with time, level and msg.
 */
export function assertCleanExit(assert, srv, e) {
  assert.deepEqual(e, { code: 0, signal: null }, `baton exited ${JSON.stringify(e)}; stderr tail:\n${srv.stderr.slice(-3000)}`);
  assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, 'sanitizer report in stderr');
  for (const line of srv.stderr.split('\n')) {
    if (!line) continue;
    let j;
    try { j = JSON.parse(line); } catch { assert.fail(`stderr line is not JSON: ${line}`); }
    assert.ok(typeof j.time === 'string' && typeof j.level === 'string' && typeof j.msg === 'string', `log line without time/level/msg: ${line}`);
  }
}

/**
 * Starts a fresh server with a config written from opts (see writeConfig) on
 * a new temp dir; returns {srv, dir, config, restart()}. Registers cleanup on t.
 */
export async function freshServer(t, opts = {}) {
  const { dir, cleanup } = tempDir();
  const writeKey = opts.writeKey ?? randomKey('wk_');
  const adminKey = opts.adminKey ?? randomKey('ak_');
  const adminKeys = [{ key: adminKey, scopes: ['admin'] }, ...(opts.extraAdminKeys ?? [])];
  const config = writeConfig(path.join(dir, 'baton.yaml'), { ...opts, writeKey, adminKeys });
  const dataDir = path.join(dir, 'data');
  const servers = [];
  const ctx = { dir, dataDir, config, writeKey, adminKey, servers };
  ctx.start = async (more = {}) => {
    const srv = await Baton.start({ dataDir, configFile: config, writeKey, adminKey, ...more });
    servers.push(srv);
    ctx.srv = srv;
    return srv;
  };
  t.after(async () => {
    for (const s of servers) await s.kill();
    cleanup();
  });
  await ctx.start({ journeysDir: opts.journeysDir });
  return ctx;
}

/**
 * A real HTTP receiver for webhooks. handler(call, index) may return
 * {status, body} or {hold: true} (the request is kept open and never
 * answered until close()). calls: [{method, url, headers, body, json, at}].
 */
export async function startReceiver(t, handler = () => ({ status: 200 })) {
  const calls = [];
  const held = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = JSON.parse(body); } catch { json = undefined; }
      const call = { method: req.method, url: req.url, headers: req.headers, body, json, at: Date.now() };
      calls.push(call);
      const out = handler(call, calls.length - 1) ?? { status: 200 };
      if (out.hold) {
        held.push(res);
        return;
      }
      res.writeHead(out.status ?? 200, { 'Content-Type': 'application/json' });
      res.end(out.body ?? '{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const rx = {
    calls,
    port,
    url: (p = '/hook') => `http://127.0.0.1:${port}${p}`,
    waitCalls: (n, opts = {}) => waitFor(() => calls.length >= n, { what: `${n} webhook call(s), got ${calls.length}`, ...opts }),
    async close() {
      for (const r of held) r.destroy();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
  t.after(() => rx.close());
  return rx;
}

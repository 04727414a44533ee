// Running Baton: health, clean stop on SIGTERM with JSON logs, restart on the
// same data directory, the command line's help, and first-start credentials.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import { Baton, assertCleanExit, freshServer, request, runBaton, startReceiver, tempDir, waitFor } from './lib/baton.mjs';

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

function assertJsonLogs(stderr) {
  const lines = stderr.split('\n');
  assert.equal(lines.pop(), '', 'stderr ends with a newline');
  assert.ok(lines.length > 0);
  for (const line of lines) {
    let j;
    assert.doesNotThrow(() => { j = JSON.parse(line); }, `not a JSON line: ${line}`);
    assert.equal(typeof j, 'object');
    assert.ok(!Number.isNaN(Date.parse(j.time)) && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(j.time), `time: ${line}`);
    assert.ok(LEVELS.has(j.level), `level: ${line}`);
    assert.equal(typeof j.msg, 'string');
    assert.ok(j.msg.length > 0);
  }
  return lines.map((l) => JSON.parse(l));
}

test('operations: /healthz answers without auth', async (t) => {
  const { srv } = await freshServer(t);
  const r = await request(srv.url + '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  assert.equal((await request(srv.url + '/healthz', { method: 'HEAD' })).status, 200);
  const post = await request(srv.url + '/healthz', { method: 'POST', body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.json.code, 'method_not_allowed');
  assertCleanExit(assert, srv, await srv.stop());
});

test('operations: SIGTERM stops cleanly with exit 0; every log line is JSON', async (t) => {
  const { srv } = await freshServer(t);
  // Some activity so the log has more than start-up lines, then stop.
  assert.equal((await srv.ingest('/v1/track', { userId: 'u', event: 'E' })).status, 200);
  assert.equal((await srv.ingest('/v1/track', { userId: 'u', event: 5 })).status, 400);
  await srv.settled();
  const e = await srv.stop();
  assertCleanExit(assert, srv, e);
  const logs = assertJsonLogs(srv.stderr);
  const msgs = logs.map((l) => l.msg);
  assert.ok(msgs.includes('listening'));
  const stopping = logs.find((l) => l.msg === 'stopping');
  assert.equal(stopping?.signal, 'SIGTERM');
  assert.equal(msgs.at(-1), 'stopped');
  assert.equal(srv.stdout, '', 'with keys in the config nothing is printed on stdout');
});

test('operations: a second server on the same data directory is refused', async (t) => {
  const ctx = await freshServer(t);
  const r = await runBaton(['serve', '--listen', '127.0.0.1:0', '--data-dir', ctx.dataDir, '--config', ctx.config]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /in use by another baton process/);
  // The first one still works.
  assert.equal((await ctx.srv.ingest('/v1/track', { userId: 'u', event: 'E' })).status, 200);
  assertCleanExit(assert, ctx.srv, await ctx.srv.stop());
});

test('operations: several HTTP event loops share one listening socket; another server cannot take the port', async (t) => {
  const ctx = await freshServer(t, { top: { http_threads: 3 }, limits: { max_connections: 64 } });
  const srv = ctx.srv;
  const listening = assertJsonLogs(srv.stderr).find((l) => l.msg === 'listening');
  assert.equal(listening.event_loops, 3);
  assert.equal(listening.max_connections, 66, 'each loop takes its share, rounded up');
  // 40 keep-alive connections at once, 10 requests each: every one is answered on whichever
  // loop accepted its connection, and every event is stored once.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 40 });
  t.after(() => agent.destroy());
  const auth = 'Basic ' + Buffer.from(`${ctx.writeKey}:`).toString('base64');
  const post = (i) => new Promise((resolve, reject) => {
    const body = JSON.stringify({ userId: `loop-${i % 40}`, event: 'Loop Test', properties: { i } });
    const req = http.request(srv.url + '/v1/track', {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', Authorization: auth, 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
  const statuses = await Promise.all(Array.from({ length: 400 }, (_, i) => post(i)));
  assert.deepEqual([...new Set(statuses)], [200]);
  await srv.settled();
  const stats = (await request(srv.url + '/v1/stats', { headers: { Authorization: `Bearer ${ctx.adminKey}` } })).json;
  assert.equal(stats.engine.events, 400);
  const p = await request(srv.url + '/v1/profiles/loop-7', { headers: { Authorization: `Bearer ${ctx.adminKey}` } });
  assert.equal(p.status, 200);
  assert.equal(p.json.eventCount, 10);
  // The port is taken: a second server refuses to start instead of sharing it.
  const other = tempDir();
  t.after(() => other.cleanup());
  const r = await runBaton(['serve', '--listen', `127.0.0.1:${srv.port}`, '--data-dir', path.join(other.dir, 'data'),
    '--config', ctx.config]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot listen/);
  assert.match(r.stderr, /Address already in use/);
  // Request headers: an 8 KB cookie fits in a connection's memory, 20 KB of headers do not (431).
  const cookie = (n) => 'c=' + 'x'.repeat(n);
  const ok = await request(srv.url + '/v1/track', { method: 'POST', body: '{"userId":"h","event":"E"}',
    headers: { Authorization: auth, 'Content-Type': 'application/json', Cookie: cookie(8 * 1024) } });
  assert.equal(ok.status, 200);
  // (Read raw: libmicrohttpd 0.9.75 writes its 431 page with a stray copy of the status line
  // after it, which Node's HTTP parser rejects.)
  const raw = await new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
    sock.end(`POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nCookie: ${cookie(20 * 1024)}\r\n` +
      'Content-Length: 2\r\n\r\n{}');
  });
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assertCleanExit(assert, srv, await srv.stop());
});

/** A journey summary without its live figures (entered, active, ...). */
function definition(j) {
  return { ...j, versions: j.versions.map((v) => v.version) };
}

test('operations: a restart on the same data directory keeps profiles, journeys and messages', async (t) => {
  const rx = await startReceiver(t);
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const jdir = path.join(dir, 'journeys');
  mkdirSync(jdir);
  const hookYaml = (name) => `id: hello\nname: ${name}\ntrigger:\n  event: Signed Up\nreentry: never\nsteps:\n  - id: hook\n    type: webhook\n    url: ${rx.url('/h')}\n`;
  writeFileSync(path.join(jdir, 'hello.yaml'), hookYaml('Hello'));
  const ctx = await freshServer(t, { journeysDir: jdir });
  let srv = ctx.srv;
  // Version 2 through the API; the directory's file is version 1.
  assert.deepEqual((await srv.putJourney('hello', hookYaml('Hello again'))).json, { id: 'hello', version: 2 });
  assert.equal((await srv.ingest('/v1/identify', { userId: 'ann', anonymousId: 'anon-ann', traits: { tier: 'gold', n: 1 } })).status, 200);
  assert.equal((await srv.ingest('/v1/batch', { batch: [
    { type: 'track', userId: 'ann', event: 'Signed Up', messageId: 'm-signup' },
    { type: 'page', anonymousId: 'visitor', name: 'Home', messageId: 'm-page' },
  ] })).status, 200);
  await rx.waitCalls(1);
  await waitFor(async () => (await srv.profile('ann')).json.messages[0]?.state === 'delivered', { what: 'delivered' });
  await srv.settled();
  const before = {
    ann: (await srv.profile('ann')).json,
    visitor: (await srv.profile('visitor')).json,
    journeys: (await srv.admin('GET', '/v1/journeys')).json,
    hello: (await srv.admin('GET', '/v1/journeys/hello')).json,
    stats: await srv.stats(),
  };
  assert.equal(before.ann.eventCount, 2);
  assert.equal(before.ann.messages.length, 1);
  assertCleanExit(assert, srv, await srv.stop());

  // Restart without the journeys dir (its file is version 1's text, which
  // would be published again as version 3); it is tested further down.
  srv = await ctx.start();
  const after = {
    ann: (await srv.profile('ann')).json,
    visitor: (await srv.profile('visitor')).json,
    journeys: (await srv.admin('GET', '/v1/journeys')).json,
    hello: (await srv.admin('GET', '/v1/journeys/hello')).json,
    stats: await srv.stats(),
  };
  assert.deepEqual(after.ann, before.ann);
  assert.deepEqual(after.visitor, before.visitor);
  // Definitions and versions are kept (the per-version figures are checked
  // in the next test).
  assert.deepEqual(after.journeys.map(definition), before.journeys.map(definition));
  assert.deepEqual(definition(after.hello), definition(before.hello));
  assert.equal(after.hello.source, before.hello.source);
  assert.equal(after.hello.version, 2);
  assert.deepEqual(after.hello.versions.map((v) => v.version), [2, 1]);
  assert.equal(after.stats.engine.events, before.stats.engine.events);
  assert.equal(after.stats.engine.profiles, 2);
  assert.equal(after.stats.log.durable_lsn, before.stats.log.durable_lsn);
  assert.equal(after.ann.messages[0].state, 'delivered');
  assert.deepEqual(after.ann.traits, { tier: 'gold', n: 1 });
  assert.deepEqual(after.ann.events.map((e) => e.messageId).slice(0, 1), ['m-signup']);
  // The same source again keeps its version after the restart too.
  assert.deepEqual((await srv.putJourney('hello', hookYaml('Hello again'))).json, { id: 'hello', version: 2 });
  // New events still work and the profile continues from where it was.
  assert.equal((await srv.ingest('/v1/identify', { userId: 'ann', traits: { n: 2 } })).status, 200);
  await srv.settled();
  const ann = (await srv.profile('ann')).json;
  assert.equal(ann.eventCount, 3);
  assert.deepEqual(ann.traits, { tier: 'gold', n: 2 });
  // reentry: never survives the restart: a second Signed Up sends nothing.
  assert.equal((await srv.ingest('/v1/track', { userId: 'ann', event: 'Signed Up' })).status, 200);
  await srv.settled();
  assert.equal((await srv.profile('ann')).json.journeys[0].entries, 1);
  assert.equal((await srv.stats()).engine.messages, after.stats.engine.messages, 'no new message');
  assertCleanExit(assert, srv, await srv.stop());

  // With the journeys dir: a file equal to the latest version keeps it.
  writeFileSync(path.join(jdir, 'hello.yaml'), hookYaml('Hello again'));
  srv = await ctx.start({ journeysDir: jdir });
  assert.equal((await srv.admin('GET', '/v1/journeys/hello')).json.version, 2);
  const loaded = srv.logLines().find((l) => l.msg === 'journey file loaded');
  assert.equal(loaded?.version, 2);
  assertCleanExit(assert, srv, await srv.stop());
  assert.equal(rx.calls.length, 1, 'the delivered message was not sent again by any restart');
});

test('operations: --version and --help describe the commands', async () => {
  const v = await runBaton(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^baton \d+\.\d+\.\d+\S*\n$/);
  const h = await runBaton(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^usage: baton/);
  assert.match(h.stdout, /\n\s+serve\s+\S/);
  assert.match(h.stdout, /\n\s+journey\s+\S/);
  const s = await runBaton(['serve', '--help']);
  assert.equal(s.code, 0);
  assert.match(s.stdout, /^usage: baton serve/);
  for (const opt of ['--config', '--listen', '--data-dir', '--journeys', '--log-level']) assert.ok(s.stdout.includes(opt), opt);
  assert.match(s.stdout, /SIGTERM/);
  const j = await runBaton(['journey', '--help']);
  assert.equal(j.code, 0);
  assert.match(j.stdout, /^usage: baton journey publish/);
  for (const word of ['publish', 'list', 'show', '--url', '--admin-key']) assert.ok(j.stdout.includes(word), word);
  // Mistakes exit 2 with a message on stderr.
  const none = await runBaton([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: baton/);
  const bad = await runBaton(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /'frobnicate' is not a baton command/);
  const badOpt = await runBaton(['serve', '--bogus']);
  assert.equal(badOpt.code, 2);
  assert.match(badOpt.stderr, /unknown or incomplete option '--bogus'/);
});

test('operations: credentials are created on first start and printed once', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dataDir = path.join(dir, 'data');
  const servers = [];
  t.after(async () => { for (const s of servers) await s.kill(); });
  let srv = await Baton.start({ dataDir });
  servers.push(srv);
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'credentials.json'), 'utf8'));
  assert.match(creds.write_key, /^wk_[0-9a-f]{16,}$/);
  assert.match(creds.admin_key, /^ak_[0-9a-f]{16,}$/);
  assert.equal(statSync(path.join(dataDir, 'credentials.json')).mode & 0o077, 0, 'credentials.json is private');
  await waitFor(() => srv.stdout.includes('admin key'), { what: 'credentials on stdout' });
  assert.ok(srv.stdout.includes(`write key: ${creds.write_key}`), srv.stdout);
  assert.ok(srv.stdout.includes(`admin key: ${creds.admin_key}`), srv.stdout);
  // The printed keys work.
  assert.equal((await srv.ingest('/v1/track', { userId: 'c', event: 'E' }, { writeKey: creds.write_key })).status, 200);
  await srv.settled();
  assert.equal((await srv.admin('GET', '/v1/profiles/c', { key: creds.admin_key })).status, 200);
  // The CLI finds the admin key in the data directory's credentials.json.
  const jl = await runBaton(['journey', 'list', '--url', srv.url, '--data-dir', dataDir]);
  assert.equal(jl.code, 0, jl.stderr);
  assert.match(jl.stdout, /^ID\s+VERSION/);
  assertCleanExit(assert, srv, await srv.stop());

  srv = await Baton.start({ dataDir });
  servers.push(srv);
  assert.equal(srv.writeKey, creds.write_key);
  assert.equal(srv.adminKey, creds.admin_key);
  assert.equal((await srv.admin('GET', '/v1/profiles/c')).json.eventCount, 1);
  assertCleanExit(assert, srv, await srv.stop());
  assert.equal(srv.stdout, '', 'the second start prints nothing on stdout');
  assert.deepEqual(JSON.parse(readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')), creds);
});

test('operations: per-version journey figures survive a restart', async (t) => {
  const rx = await startReceiver(t);
  const ctx = await freshServer(t);
  let srv = ctx.srv;
  const yaml = `id: fig\ntrigger:\n  event: Go\nsteps:\n  - id: hook\n    type: webhook\n    url: ${rx.url()}\n`;
  assert.equal((await srv.putJourney('fig', yaml)).status, 200);
  assert.equal((await srv.ingest('/v1/track', { userId: 'x', event: 'Go' })).status, 200);
  await rx.waitCalls(1);
  await srv.settled();
  const before = (await srv.admin('GET', '/v1/journeys/fig')).json.versions;
  const messagesBefore = (await srv.stats()).engine.messages;
  assert.equal(before[0].entered, 1);
  assert.equal(messagesBefore, 1);
  assertCleanExit(assert, srv, await srv.stop());
  srv = await ctx.start();
  const after = (await srv.admin('GET', '/v1/journeys/fig')).json.versions;
  const messagesAfter = (await srv.stats()).engine.messages;
  assertCleanExit(assert, srv, await srv.stop());
  assert.deepEqual(after, before);
  assert.equal(messagesAfter, messagesBefore);
});

test('operations: SIGTERM under load exits 0 and keeps every acknowledged event (4 rounds)', async (t) => {
  // Regression: a request suspended while waiting for its fsync when the
  // server stopped made libmicrohttpd abort (SIGABRT) instead of exiting 0.
  const ctx = await freshServer(t, { engine: { recent_events: 10000 } });
  let srv = ctx.srv;
  const acked = [];
  let seq = 0;
  for (let round = 0; round < 4; round++) {
    if (round) srv = await ctx.start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let stop = false;
    const work = async () => {
      while (!stop) {
        const s = seq++;
        try {
          const r = await srv.ingest('/v1/track', { userId: `l-${s % 10}`, event: 'E', messageId: `l-${s}` }, { agent });
          if (r.status === 200) {
            acked.push(s);
          } else {
            assert.equal(r.status, 503, r.text); // shutting down: not acknowledged
            assert.equal(r.json.code, 'shutting_down');
            return;
          }
        } catch {
          return; // the server closed the connection
        }
      }
    };
    const target = acked.length + 200;
    const ws = Array.from({ length: 16 }, work);
    await waitFor(() => acked.length >= target, { what: `${target} acks` });
    const e = await srv.stop();
    stop = true;
    await Promise.all(ws);
    agent.destroy();
    assertCleanExit(assert, srv, e);
    assertJsonLogs(srv.stderr);
  }
  srv = await ctx.start();
  const stats = await srv.settled();
  let stored = 0;
  const have = new Set();
  for (let u = 0; u < 10; u++) {
    const p = (await srv.profile(`l-${u}`)).json;
    stored += p.eventCount;
    for (const ev of p.events) have.add(ev.messageId);
  }
  assert.equal(stats.engine.events, stored);
  assert.equal(have.size, stored);
  assert.ok(stored >= acked.length);
  for (const s of acked) assert.ok(have.has(`l-${s}`), `acknowledged l-${s} missing after SIGTERM`);
  assertCleanExit(assert, srv, await srv.stop());
});

test('operations: SIGINT stops cleanly too', async (t) => {
  const { srv } = await freshServer(t);
  srv.proc.kill('SIGINT');
  const e = await srv.exited;
  assertCleanExit(assert, srv, e);
  assert.equal(srv.logLines().find((l) => l.msg === 'stopping')?.signal, 'SIGINT');
});

test('operations: a bad config or journey file stops the start with file:line:col', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dataDir = path.join(dir, 'data');
  // Regression: the config text was freed before the YAML document that
  // points into it was read, so every message (and every value) was garbage.
  const cfg = path.join(dir, 'bad.yaml');
  writeFileSync(cfg, 'sources:\n  - name: web\n    write_key: wk_0123456789\nlimitz:\n  max_body_bytes: 10\n');
  let r = await runBaton(['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--data-dir', dataDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^baton serve: ${cfg}:4:1: config: unknown field 'limitz'`));
  writeFileSync(cfg, 'limits:\n  max_body_bytes: 10\n');
  r = await runBaton(['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--data-dir', dataDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^baton serve: ${cfg}:2:19: limits.max_body_bytes: expected an integer from 1024`));
  writeFileSync(cfg, 'admin_keys:\n  - key: short\n    scopes: [admin]\n');
  r = await runBaton(['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--data-dir', dataDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /admin_keys: key must have at least 8 characters/);

  // A journeys dir with an invalid file: logged with its position, exit 1.
  const jdir = path.join(dir, 'journeys');
  mkdirSync(jdir);
  writeFileSync(path.join(jdir, 'bad.yaml'), 'id: bad\ntrigger:\n  event: E\nsteps:\n  - id: w\n    type: wait\n    duration: forever\n');
  r = await runBaton(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--journeys', jdir]);
  assert.equal(r.code, 1);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const bad = lines.find((l) => l.msg === 'invalid journey');
  assert.ok(bad, r.stderr);
  assert.equal(bad.level, 'error');
  assert.ok(bad.error.startsWith(`${path.join(jdir, 'bad.yaml')}:7:15: `), bad.error);
  assert.match(r.stderr, /cannot start/);
});

test('operations: SIGTERM with a webhook in flight waits for it, records the outcome, and does not resend', async (t) => {
  let hold = true;
  const rx = await startReceiver(t, () => (hold ? { hold: true } : { status: 200 }));
  const ctx = await freshServer(t, { delivery: { timeout: '1s' } });
  let srv = ctx.srv;
  assert.equal((await srv.putJourney('p', `id: p\ntrigger:\n  event: Go\nsteps:\n  - id: hook\n    type: webhook\n    url: ${rx.url()}\n`)).status, 200);
  assert.equal((await srv.ingest('/v1/track', { userId: 'x', event: 'Go' })).status, 200);
  await rx.waitCalls(1);
  const t0 = Date.now();
  const e = await srv.stop();
  assertCleanExit(assert, srv, e);
  // The stop waits for the attempt (1 s timeout), not forever.
  assert.ok(Date.now() - t0 < 8000, `stop took ${Date.now() - t0} ms`);
  hold = false;
  srv = await ctx.start();
  const m = (await srv.profile('x')).json.messages;
  assert.equal(m.length, 1);
  // Sent and unanswered within the timeout: the receiver may have acted on it.
  assert.equal(m[0].state, 'unknown');
  assert.equal(m[0].attempts, 1);
  const st = await srv.stats();
  assert.equal(st.delivery.duplicates_refused + st.delivery.delivered, 0);
  assertCleanExit(assert, srv, await srv.stop());
  assert.equal(rx.calls.length, 1);
});

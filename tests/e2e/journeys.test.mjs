// Journeys end to end: publishing (CLI and PUT) with versions, validation
// errors with positions, and webhooks fired to real receivers: wait timing,
// body and headers, re-entry rules, retries and final failures.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import { assertCleanExit, delay, freshServer, runBaton, startReceiver, waitFor } from './lib/baton.mjs';

function journeyYaml({ id, name = id, event, reentry = 'after_exit', steps }) {
  const out = [`id: ${id}`, `name: ${name}`, 'trigger:', `  event: ${event}`, `reentry: ${reentry}`, 'steps:'];
  for (const s of steps) {
    out.push(`  - id: ${s.id}`, `    type: ${s.type}`);
    if (s.duration) out.push(`    duration: ${s.duration}`);
    if (s.url) out.push(`    url: ${s.url}`);
    if (s.headers) {
      out.push('    headers:');
      for (const [k, v] of Object.entries(s.headers)) out.push(`      ${k}: ${v}`);
    }
  }
  return out.join('\n') + '\n';
}

async function track(srv, userId, event, properties = {}, extra = {}) {
  const r = await srv.ingest('/v1/track', { userId, event, properties, ...extra });
  assert.equal(r.status, 200, r.text);
}

async function messages(srv, id) {
  const r = await srv.profile(id);
  assert.equal(r.status, 200, r.text);
  return r.json.messages;
}

test('journeys: publish with the CLI and PUT; versions follow the source', async (t) => {
  const ctx = await freshServer(t);
  const { srv } = ctx;
  const file = path.join(ctx.dir, 'welcome.yaml');
  const v1 = journeyYaml({ id: 'welcome', event: 'Signed Up', steps: [{ id: 'hello', type: 'webhook', url: 'http://127.0.0.1:9/x' }] });
  writeFileSync(file, v1);
  const cli = (...args) => runBaton(['journey', ...args, '--url', srv.url, '--admin-key', ctx.adminKey]);

  let r = await cli('publish', file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'published welcome version 1\n');
  r = await cli('publish', file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'published welcome version 1\n', 'an unchanged file keeps its version');

  // The same text through PUT: still version 1.
  let put = await srv.putJourney('welcome', v1);
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(put.json, { id: 'welcome', version: 1 });

  // A changed source is a new version, through either path.
  const v2 = v1.replace('name: welcome', 'name: Welcome series');
  put = await srv.putJourney('welcome', v2);
  assert.deepEqual(put.json, { id: 'welcome', version: 2 });
  writeFileSync(file, v2.replace('hello', 'greet'));
  r = await cli('publish', file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'published welcome version 3\n');
  r = await cli('publish', file, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { id: 'welcome', version: 3 });

  // A second journey, then the list (table and JSON) and one journey's view.
  put = await srv.putJourney('cart', journeyYaml({ id: 'cart', event: 'Cart Abandoned', reentry: 'never', steps: [{ id: 'w', type: 'wait', duration: '1h' }, { id: 'e', type: 'exit' }] }));
  assert.deepEqual(put.json, { id: 'cart', version: 1 });
  r = await cli('list');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^ID\s+VERSION\s+ACTIVE\s+ENTERED\s+TRIGGER$/);
  assert.equal(lines.length, 3);
  assert.match(lines[1], /^cart\s+1\s+0\s+0\s+event Cart Abandoned$/);
  assert.match(lines[2], /^welcome\s+3\s+0\s+0\s+event Signed Up$/);
  r = await cli('list', '--json');
  const list = JSON.parse(r.stdout);
  assert.deepEqual(list.map((j) => [j.id, j.version, j.reentry, j.trigger.event]), [
    ['cart', 1, 'never', 'Cart Abandoned'],
    ['welcome', 3, 'after_exit', 'Signed Up'],
  ]);
  assert.deepEqual(list[1].versions.map((v) => v.version), [3, 2, 1]);
  assert.deepEqual(list[1].steps, [{ id: 'greet', type: 'webhook' }]);
  const one = await srv.admin('GET', '/v1/journeys/welcome');
  assert.equal(one.status, 200);
  assert.equal(one.json.name, 'Welcome series');
  assert.equal(one.json.source, v2.replace('hello', 'greet'));
  assert.equal((await srv.admin('GET', '/v1/journeys/nope')).status, 404);
  r = await cli('show', 'welcome');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), one.json);

  // CLI failures: exit 1 with the reason on stderr.
  r = await runBaton(['journey', 'publish', file, '--url', srv.url, '--admin-key', 'ak_wrong_wrong_wrong']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server answered 401: an admin key is required/);
  r = await cli('show', 'nope');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server answered 404: no journey has this id/);
  r = await cli('publish', path.join(ctx.dir, 'missing.yaml'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read .*missing\.yaml/);
  const closed = net.createServer();
  await new Promise((res) => closed.listen(0, '127.0.0.1', res));
  const deadPort = closed.address().port;
  await new Promise((res) => closed.close(res));
  r = await runBaton(['journey', 'list', '--url', `http://127.0.0.1:${deadPort}`, '--admin-key', ctx.adminKey]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+/);
  assert.equal((await srv.admin('GET', '/v1/journeys/welcome')).json.version, 3, 'failed publishes changed nothing');
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: an invalid journey is refused with its line and column', async (t) => {
  const ctx = await freshServer(t);
  const { srv } = ctx;
  const bad = [
    'id: bad',
    'trigger:',
    '  event: Signed Up',
    'steps:',
    '  - id: w',
    '    type: wait',
    '    duration: soon', // line 7, the value starts at column 15
    '',
  ].join('\n');
  const put = await srv.putJourney('bad', bad);
  assert.equal(put.status, 400, put.text);
  assert.equal(put.json.code, 'invalid_journey');
  assert.equal(put.json.line, 7);
  assert.equal(put.json.column, 15);
  assert.match(put.json.error, /duration/);
  assert.match(put.json.error, /soon/);

  // More cases: [source, line, column, what the message names].
  const cases = [
    ['id: bad2\ntrigger: {event: X}\n steps: x\n', 3, 2, /indentation/], // YAML syntax
    ['id: bad2\ntrigger: {event: X}\nsteps:\n  - id: a\n    type: wat\n', 5, 11, /unknown step type 'wat'/],
    ['id: bad2\ntrigger: {event: X}\nsteps: [\n', 4, 1, /flow sequence/], // unclosed at end of input
  ];
  for (const [src, line, column, what] of cases) {
    const r2 = await srv.putJourney('bad2', src);
    assert.equal(r2.status, 400, r2.text);
    assert.equal(r2.json.code, 'invalid_journey');
    assert.deepEqual([r2.json.line, r2.json.column], [line, column], `${JSON.stringify(src)}: ${r2.text}`);
    assert.match(r2.json.error, what);
  }

  // The CLI validates locally: file:line:col on stderr, exit 1, nothing sent.
  const file = path.join(ctx.dir, 'bad.yaml');
  writeFileSync(file, bad);
  const r = await runBaton(['journey', 'publish', file, '--url', srv.url, '--admin-key', ctx.adminKey]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.startsWith(`${file}:7:15: `), r.stderr);
  assert.match(r.stderr, /duration/);

  const list = await srv.admin('GET', '/v1/journeys');
  assert.deepEqual(list.json, []);
  assert.equal((await srv.stats()).engine.journeys, 0);
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: Signed Up, wait 1s, webhook: exactly one POST with the right body and headers', async (t) => {
  const rx = await startReceiver(t);
  const ctx = await freshServer(t);
  const { srv } = ctx;
  const put = await srv.putJourney('welcome', journeyYaml({
    id: 'welcome', event: 'Signed Up', reentry: 'never',
    steps: [
      { id: 'settle', type: 'wait', duration: '1s' },
      { id: 'notify', type: 'webhook', url: rx.url('/hooks/welcome'), headers: { 'X-Source': 'baton' } },
      { id: 'done', type: 'exit' },
    ],
  }));
  assert.deepEqual(put.json, { id: 'welcome', version: 1 });
  const idr = await srv.ingest('/v1/identify', { userId: 'u1', anonymousId: 'a1', traits: { email: 'u1@example.com' } });
  assert.equal(idr.status, 200);
  const sentAt = Date.now();
  await track(srv, 'u1', 'Signed Up', { plan: 'free' }, { messageId: 'signup-1' });
  await srv.settled();

  // While waiting (the wait is 1s; nothing may have been sent yet), the
  // profile shows the customer at the wait step.
  const during = (await srv.profile('u1')).json;
  assert.equal(rx.calls.length, 0, 'the webhook must not fire before the wait is over');
  assert.equal(during.journeys.length, 1);
  assert.equal(during.journeys[0].id, 'welcome');
  assert.equal(during.journeys[0].active.step, 'settle');
  assert.equal(during.journeys[0].active.entry, 1);
  const until = Date.parse(during.journeys[0].active.waitingUntil);
  assert.equal(until - Date.parse(during.journeys[0].active.entered), 1000);

  await rx.waitCalls(1);
  const c = rx.calls[0];
  assert.ok(c.at - sentAt >= 1000, `webhook came ${c.at - sentAt} ms after the event; the wait is 1s`);
  assert.equal(c.method, 'POST');
  assert.equal(c.url, '/hooks/welcome');
  assert.match(c.headers['content-type'], /^application\/json/);
  assert.equal(c.headers['x-source'], 'baton');
  assert.match(c.json.id, /^msg_[0-9a-f]{32}$/);
  assert.equal(c.headers['webhook-id'], c.json.id);
  assert.equal(c.headers['idempotency-key'], c.json.id);
  assert.equal(c.json.type, 'baton.journey.webhook');
  assert.ok(!Number.isNaN(Date.parse(c.json.time)));
  assert.deepEqual(c.json.journey, { id: 'welcome', version: 1, step: 'notify', entry: 1 });
  assert.deepEqual(c.json.customer, { key: 'u:u1', userId: 'u1', anonymousId: 'a1', traits: { email: 'u1@example.com' } });
  assert.equal(c.json.event.messageId, 'signup-1');
  assert.equal(c.json.event.event, 'Signed Up');
  assert.equal(c.json.event.type, 'track');
  assert.deepEqual(c.json.event.properties, { plan: 'free' });

  // The outcome is recorded; the run has exited.
  const msgs = await waitFor(async () => {
    const m = await messages(srv, 'u1');
    return m.length === 1 && m[0].state === 'delivered' && m;
  }, { what: 'message delivered on the profile' });
  assert.equal(msgs[0].id, c.json.id);
  assert.equal(msgs[0].attempts, 1);
  assert.equal(msgs[0].http_status, 200);
  assert.equal(msgs[0].journey, 'welcome');
  assert.equal(msgs[0].step, 'notify');
  const p = (await srv.profile('u1')).json;
  assert.equal(p.journeys[0].entries, 1);
  assert.equal(p.journeys[0].active, undefined);
  assert.ok(p.journeys[0].lastExit);
  const s = await srv.stats();
  assert.equal(s.delivery.delivered, 1);
  assert.equal(s.engine.messages, 1);
  assert.equal(s.engine.active_runs, 0);
  assert.equal(rx.calls.length, 1);
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: reentry never vs after_exit, and no re-entry while in the journey', async (t) => {
  const rxNever = await startReceiver(t);
  const rxAfter = await startReceiver(t);
  const { srv } = await freshServer(t);
  assert.equal((await srv.putJourney('once', journeyYaml({
    id: 'once', event: 'Tap', reentry: 'never',
    steps: [{ id: 'hook', type: 'webhook', url: rxNever.url() }, { id: 'end', type: 'exit' }],
  }))).status, 200);
  assert.equal((await srv.putJourney('again', journeyYaml({
    id: 'again', event: 'Tap', reentry: 'after_exit',
    steps: [{ id: 'pause', type: 'wait', duration: '500ms' }, { id: 'hook', type: 'webhook', url: rxAfter.url() }],
  }))).status, 200);

  await track(srv, 'u', 'Tap', { n: 1 });
  await track(srv, 'u', 'Tap', { n: 2 }); // 'again' is still waiting: no second entry
  await srv.settled();
  let p = (await srv.profile('u')).json;
  const entries = (prof) => Object.fromEntries(prof.journeys.map((j) => [j.id, j.entries]));
  assert.deepEqual(entries(p), { once: 1, again: 1 });

  await rxAfter.waitCalls(1);
  await waitFor(async () => (await srv.profile('u')).json.journeys.find((j) => j.id === 'again').active === undefined,
    { what: "'again' run to exit" });
  await track(srv, 'u', 'Tap', { n: 3 }); // 'again' exited: enters again; 'once' never again
  await rxAfter.waitCalls(2);
  await srv.settled();
  p = (await srv.profile('u')).json;
  assert.deepEqual(entries(p), { once: 1, again: 2 });
  assert.deepEqual(rxAfter.calls.map((c) => [c.json.journey.entry, c.json.event.properties.n]), [[1, 1], [2, 3]]);
  assert.notEqual(rxAfter.calls[0].json.id, rxAfter.calls[1].json.id);
  assert.equal(rxNever.calls.length, 1);
  assert.equal(rxNever.calls[0].json.event.properties.n, 1);
  const s = await srv.stats();
  assert.equal(s.engine.messages, 3);
  await waitFor(async () => (await srv.stats()).delivery.delivered === 3, { what: '3 deliveries' });
  assert.equal(rxNever.calls.length + rxAfter.calls.length, 3);
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: 500 then 200 is retried and delivered; 400 is a final failure', async (t) => {
  const flaky = await startReceiver(t, (_c, i) => ({ status: i === 0 ? 500 : 200 }));
  const refusing = await startReceiver(t, () => ({ status: 400, body: '{"error":"no"}' }));
  const { srv } = await freshServer(t, { delivery: { backoff: '100ms', max_attempts: 5 } });
  assert.equal((await srv.putJourney('flaky', journeyYaml({
    id: 'flaky', event: 'Go', steps: [{ id: 'send', type: 'webhook', url: flaky.url('/f') }],
  }))).status, 200);
  assert.equal((await srv.putJourney('refused', journeyYaml({
    id: 'refused', event: 'Stop', steps: [{ id: 'send', type: 'webhook', url: refusing.url('/r') }],
  }))).status, 200);
  await track(srv, 'f', 'Go');
  await track(srv, 'r', 'Stop');

  const fm = await waitFor(async () => {
    const m = await messages(srv, 'f');
    return m.length === 1 && m[0].state === 'delivered' && m[0];
  }, { what: 'flaky message delivered' });
  assert.equal(fm.attempts, 2);
  assert.equal(fm.http_status, 200);
  assert.equal(flaky.calls.length, 2);
  assert.equal(flaky.calls[0].headers['webhook-id'], fm.id);
  assert.equal(flaky.calls[1].headers['webhook-id'], fm.id, 'a retry carries the same webhook-id');
  assert.equal(flaky.calls[1].body, flaky.calls[0].body, 'a retry sends the same body');
  assert.ok(flaky.calls[1].at - flaky.calls[0].at >= 90, 'the retry waits for the backoff');

  const rm = await waitFor(async () => {
    const m = await messages(srv, 'r');
    return m.length === 1 && m[0].state !== 'sending' && m[0].state !== 'queued' && m[0];
  }, { what: 'refused message settled' });
  assert.equal(rm.state, 'failed');
  assert.equal(rm.attempts, 1);
  assert.equal(rm.http_status, 400);
  assert.match(rm.error, /400/);
  assert.equal(refusing.calls.length, 1);

  const s = await srv.stats();
  assert.equal(s.delivery.delivered, 1);
  assert.equal(s.delivery.failed, 1);
  assert.equal(s.delivery.retries, 1);
  // A failed message is not retried later: wait past several backoff periods.
  await delay(500);
  assert.equal(refusing.calls.length, 1);
  assert.equal(flaky.calls.length, 2);
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: customers in flight stay on the version they entered', async (t) => {
  const rxOld = await startReceiver(t);
  const rxNew = await startReceiver(t);
  const { srv } = await freshServer(t);
  const yaml = (url) => journeyYaml({ id: 'vv', event: 'Go', steps: [{ id: 'w', type: 'wait', duration: '700ms' }, { id: 'hook', type: 'webhook', url }] });
  assert.deepEqual((await srv.putJourney('vv', yaml(rxOld.url()))).json, { id: 'vv', version: 1 });
  await track(srv, 'early', 'Go');
  await srv.settled();
  assert.deepEqual((await srv.putJourney('vv', yaml(rxNew.url()))).json, { id: 'vv', version: 2 });
  await track(srv, 'late', 'Go');
  await rxOld.waitCalls(1);
  await rxNew.waitCalls(1);
  assert.equal(rxOld.calls[0].json.customer.userId, 'early');
  assert.equal(rxOld.calls[0].json.journey.version, 1);
  assert.equal(rxNew.calls[0].json.customer.userId, 'late');
  assert.equal(rxNew.calls[0].json.journey.version, 2);
  const j = (await srv.admin('GET', '/v1/journeys/vv')).json;
  assert.deepEqual(j.versions.map((v) => [v.version, v.entered]), [[2, 1], [1, 1]]);
  await waitFor(async () => (await srv.stats()).delivery.delivered === 2, { what: '2 deliveries' });
  assert.equal(rxOld.calls.length + rxNew.calls.length, 2);
  assertCleanExit(assert, srv, await srv.stop());
});

test('journeys: always 500 ends dead after max_attempts; no answer in time is unknown, not retried', async (t) => {
  const failing = await startReceiver(t, () => ({ status: 503 }));
  const silent = await startReceiver(t, () => ({ hold: true }));
  const { srv } = await freshServer(t, { delivery: { backoff: '50ms', max_attempts: 3, timeout: '500ms' } });
  assert.equal((await srv.putJourney('dead', journeyYaml({ id: 'dead', event: 'D', steps: [{ id: 's', type: 'webhook', url: failing.url() }] }))).status, 200);
  assert.equal((await srv.putJourney('slow', journeyYaml({ id: 'slow', event: 'S', steps: [{ id: 's', type: 'webhook', url: silent.url() }] }))).status, 200);
  await track(srv, 'd', 'D');
  await track(srv, 's', 'S');
  const dm = await waitFor(async () => {
    const m = await messages(srv, 'd');
    return m[0]?.state === 'dead' && m[0];
  }, { what: 'dead message' });
  assert.equal(dm.attempts, 3);
  assert.equal(dm.http_status, 503);
  assert.equal(failing.calls.length, 3);
  assert.equal(new Set(failing.calls.map((c) => c.headers['webhook-id'])).size, 1);
  const sm = await waitFor(async () => {
    const m = await messages(srv, 's');
    return m[0]?.state === 'unknown' && m[0];
  }, { what: 'unknown message' });
  assert.equal(sm.attempts, 1);
  assert.equal(silent.calls.length, 1);
  const s = await srv.stats();
  assert.equal(s.delivery.dead, 1);
  assert.equal(s.delivery.unknown, 1);
  assert.equal(s.delivery.retries, 2);
  // Neither is tried again (several backoff periods later).
  await delay(400);
  assert.equal(failing.calls.length, 3);
  assert.equal(silent.calls.length, 1);
  assertCleanExit(assert, srv, await srv.stop());
});

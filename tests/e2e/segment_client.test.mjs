// The unmodified @segment/analytics-node client against a real baton serve:
// every call type arrives, is acknowledged, and shows on the profile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Analytics } from '@segment/analytics-node';

import { assertCleanExit, freshServer } from './lib/baton.mjs';

/** A client that records every HTTP answer and every error it reports. */
function client(srv, opts = {}) {
  const a = new Analytics({ writeKey: srv.writeKey, host: srv.url, flushInterval: 50, maxRetries: 0, ...opts });
  const responses = [];
  const errors = [];
  a.on('http_response', (r) => responses.push(r.status));
  a.on('error', (e) => errors.push(e));
  return { a, responses, errors };
}

/** Calls a Segment method and resolves with the context its callback gets. */
function call(a, method, params) {
  return new Promise((resolve, reject) => {
    a[method](params, (err, ctx) => (err ? reject(err) : resolve(ctx)));
  });
}

test('segment client: identify, track, page, screen, group, alias reach the profile', async (t) => {
  const { srv } = await freshServer(t);
  const { a, responses, errors } = client(srv, { flushAt: 3 });
  const ctxs = await Promise.all([
    call(a, 'identify', { userId: 'alice', anonymousId: 'anon-alice', traits: { email: 'alice@example.com', plan: 'pro', seats: 3 } }),
    call(a, 'track', { userId: 'alice', event: 'Order Completed', properties: { total: 42.5, items: ['laptop'] } }),
    call(a, 'page', { userId: 'alice', category: 'Docs', name: 'Pricing', properties: { url: 'https://example.com/pricing' } }),
    call(a, 'screen', { userId: 'alice', name: 'Home', properties: { variant: 'b' } }),
    call(a, 'group', { userId: 'alice', groupId: 'acme', traits: { industry: 'telco' } }),
    call(a, 'alias', { userId: 'alice', previousId: 'anon-alice' }),
  ]);
  // Sent only after the first two batches were acknowledged, so it is the newest.
  ctxs.push(await call(a, 'identify', { userId: 'alice', traits: { plan: 'enterprise' } }));
  await a.closeAndFlush({ timeout: 20000 });
  assert.deepEqual(errors, []);
  assert.ok(responses.length >= 3, `expected at least 3 batches (flushAt 3), got ${responses.length}`);
  assert.ok(responses.every((s) => s === 200), `statuses: ${responses}`);
  await srv.settled();

  const r = await srv.profile('alice');
  assert.equal(r.status, 200, r.text);
  const p = r.json;
  assert.equal(p.key, 'u:alice');
  assert.equal(p.userId, 'alice');
  assert.deepEqual(p.anonymousIds, ['anon-alice']);
  // Later identify wins per trait; earlier traits stay.
  assert.deepEqual(p.traits, { email: 'alice@example.com', plan: 'enterprise', seats: 3 });
  assert.equal(p.eventCount, 7);
  assert.equal(p.events.length, 7);
  // The message ids the client generated are the ones stored, one each.
  const sentIds = ctxs.map((c) => c.event.messageId);
  assert.equal(new Set(sentIds).size, 7);
  assert.deepEqual(new Set(p.events.map((e) => e.messageId)), new Set(sentIds));
  const byId = new Map(p.events.map((e) => [e.messageId, e]));
  const ev = (i) => byId.get(sentIds[i]);
  assert.equal(ev(0).type, 'identify');
  assert.equal(ev(0).traits.email, 'alice@example.com');
  assert.equal(ev(1).type, 'track');
  assert.equal(ev(1).event, 'Order Completed');
  assert.deepEqual(ev(1).properties, { total: 42.5, items: ['laptop'] });
  assert.equal(ev(2).type, 'page');
  assert.equal(ev(2).name, 'Pricing');
  assert.equal(ev(2).properties.url, 'https://example.com/pricing');
  assert.equal(ev(3).type, 'screen');
  assert.equal(ev(3).name, 'Home');
  assert.equal(ev(4).type, 'group');
  assert.equal(ev(4).groupId, 'acme');
  assert.equal(ev(4).traits.industry, 'telco');
  assert.equal(ev(5).type, 'alias');
  assert.equal(ev(5).previousId, 'anon-alice');
  for (const e of p.events) {
    assert.equal(e.userId, 'alice');
    assert.ok(!('writeKey' in e), 'the write key must not be stored with the event');
    assert.equal(e.context.library.name, '@segment/analytics-node');
    assert.ok(!Number.isNaN(Date.parse(e.timestamp)) && !Number.isNaN(Date.parse(e.receivedAt)));
  }
  // Newest first: the last identify was sent in the last batch.
  assert.equal(p.events[0].messageId, sentIds[6]);
  assert.ok(Date.parse(p.firstSeen) <= Date.parse(p.lastSeen));
  // The anonymous id finds the same profile.
  const byAnon = await srv.profile('anon-alice');
  assert.equal(byAnon.status, 200);
  assert.equal(byAnon.json.key, 'u:alice');

  const s = await srv.stats();
  assert.equal(s.engine.events, 7);
  assert.equal(s.engine.profiles, 1);
  assertCleanExit(assert, srv, await srv.stop());
});

test('segment client: a few hundred events across many users', async (t) => {
  const { srv } = await freshServer(t);
  const { a, responses, errors } = client(srv, { flushAt: 50 });
  const users = 60;
  const perUser = 6; // 1 identify + 5 tracks; within recent_events (20)
  const sent = new Map(); // userId -> [messageId] in send order
  const pending = [];
  for (let round = 0; round < perUser; round++) {
    for (let u = 0; u < users; u++) {
      const userId = `user-${u}`;
      const p = round === 0
        ? call(a, 'identify', { userId, traits: { n: u, name: `User ${u}` } })
        : call(a, 'track', { userId, event: 'Viewed', properties: { round, u } });
      pending.push(p.then((ctx) => {
        if (!sent.has(userId)) sent.set(userId, []);
        sent.get(userId).push(ctx.event.messageId);
      }));
    }
  }
  await Promise.all(pending);
  await a.closeAndFlush({ timeout: 30000 });
  assert.deepEqual(errors, []);
  assert.ok(responses.length >= (users * perUser) / 50, `batches: ${responses.length}`);
  assert.ok(responses.every((s) => s === 200), `statuses: ${responses}`);
  await srv.settled();
  const s = await srv.stats();
  assert.equal(s.engine.events, users * perUser);
  assert.equal(s.engine.profiles, users);
  for (let u = 0; u < users; u++) {
    const r = await srv.profile(`user-${u}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.eventCount, perUser);
    assert.deepEqual(r.json.traits, { n: u, name: `User ${u}` });
    assert.deepEqual(new Set(r.json.events.map((e) => e.messageId)), new Set(sent.get(`user-${u}`)));
    const rounds = r.json.events.filter((e) => e.type === 'track').map((e) => e.properties.round).sort();
    assert.deepEqual(rounds, [1, 2, 3, 4, 5]);
  }
  assertCleanExit(assert, srv, await srv.stop());
});

// The unmodified @segment/analytics-node client against a real baton serve:
// every call type arrives, is acknowledged, and shows on the profile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { Analytics } from '@segment/analytics-node';

import { assertCleanExit, freshServer, request } from './lib/baton.mjs';

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

test('tracking API details: browser short paths, body write key, CORS, ids, timestamps, batch context', async (t) => {
  const { srv } = await freshServer(t);
  // CORS preflight, as a browser sends it before a cross-origin POST.
  const pre = await request(srv.url + '/v1/t', { method: 'OPTIONS', headers: { Origin: 'https://shop.example', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  assert.match(pre.headers['access-control-allow-methods'], /POST/);
  assert.match(pre.headers['access-control-allow-headers'], /Content-Type/);
  assert.match(pre.headers['access-control-allow-headers'], /Authorization/);

  // Browser style: short paths, text/plain, write key in the body.
  const browser = (p, body) => request(srv.url + p, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: { ...body, writeKey: srv.writeKey } });
  const calls = [
    ['/v1/t', { anonymousId: 'anon-b', event: 'Viewed Product', properties: { sku: 'X1' }, messageId: 's-t' }, 'track'],
    ['/v1/p', { anonymousId: 'anon-b', name: 'Home', messageId: 's-p' }, 'page'],
    ['/v1/s', { anonymousId: 'anon-b', name: 'Cart', messageId: 's-s' }, 'screen'],
    ['/v1/i', { anonymousId: 'anon-b', userId: 'bob', traits: { email: 'bob@example.com' }, messageId: 's-i' }, 'identify'],
    ['/v1/g', { userId: 'bob', groupId: 'g1', messageId: 's-g' }, 'group'],
    ['/v1/a', { userId: 'bob', previousId: 'anon-b', messageId: 's-a' }, 'alias'],
    ['/v1/b', { batch: [{ type: 'track', userId: 'bob', event: 'Checked Out', messageId: 's-b' }] }, 'track'],
  ];
  for (const [p, body] of calls) {
    const r = await browser(p, body);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.deepEqual(r.json, { success: true });
    assert.equal(r.headers['access-control-allow-origin'], '*');
  }
  await srv.settled();
  // The anonymous profile became bob's when the userId first came with it.
  const bob = (await srv.profile('bob')).json;
  assert.equal(bob.key, 'a:anon-b');
  assert.equal(bob.userId, 'bob');
  assert.deepEqual(bob.anonymousIds, ['anon-b']);
  assert.deepEqual(bob.traits, { email: 'bob@example.com' });
  assert.equal(bob.eventCount, calls.length);
  assert.deepEqual(bob.events.map((e) => [e.messageId, e.type]).reverse(), calls.map(([, b, type]) => [b.messageId ?? b.batch[0].messageId, type]));
  for (const e of bob.events) assert.ok(!('writeKey' in e));
  assert.equal((await srv.profile('anon-b')).json.key, 'a:anon-b');

  // Numeric ids are accepted as strings; timestamps are corrected for the
  // client's clock skew (sentAt); batch context applies to events without one.
  const r = await srv.ingest('/v1/batch', {
    sentAt: '2026-01-01T00:00:10.000Z',
    context: { ip: '10.1.2.3' },
    batch: [
      { type: 'track', userId: 12345, event: 'Skewed', timestamp: '2026-01-01T00:00:00.000Z' },
      { type: 'track', userId: 12345, event: 'Own Context', context: { locale: 'de-DE' } },
    ],
  });
  assert.equal(r.status, 200, r.text);
  assert.equal((await srv.ingest('/v1/track', { userId: 12345, event: 'Stamped', timestamp: '2025-06-01T12:00:00Z' })).status, 200);
  await srv.settled();
  const n = (await srv.profile('12345')).json;
  assert.equal(n.userId, '12345');
  const [stamped, own, skewed] = n.events;
  assert.equal(skewed.userId, '12345');
  assert.equal(skewed.originalTimestamp, '2026-01-01T00:00:00.000Z');
  assert.equal(Date.parse(skewed.timestamp), Date.parse(skewed.receivedAt) - 10000, 'timestamp = receivedAt - (sentAt - timestamp)');
  assert.deepEqual(skewed.context, { ip: '10.1.2.3' });
  assert.deepEqual(own.context, { locale: 'de-DE' });
  assert.match(skewed.messageId, /^baton-[0-9a-f]{32}$/);
  assert.match(own.messageId, /^baton-[0-9a-f]{32}$/);
  assert.notEqual(skewed.messageId, own.messageId);
  assert.equal(stamped.timestamp, '2025-06-01T12:00:00.000Z', 'without sentAt the timestamp is kept');
  assert.equal(n.firstSeen, '2025-06-01T12:00:00.000Z');
  assertCleanExit(assert, srv, await srv.stop());
});

test('gzip and deflate bodies are accepted, also when they inflate to near the body limit', async (t) => {
  // Regression: the inflated body went into a buffer capped at exactly
  // max_body_bytes while the inflater asks for room for one byte over the
  // limit: with a limit under 64 KiB every gzip body got 413, and with a
  // limit that is not a multiple of 64 KiB so did bodies inflating past the
  // last 64 KiB step below it.
  const { srv } = await freshServer(t, { engine: { recent_events: 30 }, limits: { max_body_bytes: 100000 } });
  const h = (enc) => ({ headers: { 'Content-Encoding': enc } });
  const small = await srv.ingest('/v1/track', gzipSync(JSON.stringify({ userId: 'gz', event: 'Zipped', properties: { n: 1 } })), h('gzip'));
  assert.equal(small.status, 200, small.text);
  const defl = await srv.ingest('/v1/identify', deflateSync(JSON.stringify({ userId: 'gz', traits: { via: 'deflate' } })), h('deflate'));
  assert.equal(defl.status, 200, defl.text);
  // A batch inflating to ~95 KB (limit 100000): 5 events of ~19 KB each.
  const batch = { batch: Array.from({ length: 5 }, (_, i) => ({ type: 'track', userId: 'gz', event: 'Big', messageId: `big-${i}`, properties: { pad: 'p'.repeat(19000) } })) };
  const text = JSON.stringify(batch);
  assert.ok(text.length > 90000 && text.length < 100000, `${text.length}`);
  const big = await srv.ingest('/v1/batch', gzipSync(text), h('gzip'));
  assert.equal(big.status, 200, big.text);
  await srv.settled();
  const p = (await srv.profile('gz')).json;
  assert.equal(p.eventCount, 7);
  assert.deepEqual(p.traits, { via: 'deflate' });
  assert.equal(p.events.find((e) => e.event === 'Zipped').properties.n, 1);
  assert.deepEqual(p.events.filter((e) => e.event === 'Big').map((e) => e.messageId).reverse(), batch.batch.map((e) => e.messageId));
  assert.ok(p.events.every((e) => e.event !== 'Big' || e.properties.pad.length === 19000));
  assertCleanExit(assert, srv, await srv.stop());
});

test('profiles keep the newest recent_events events and count them all', async (t) => {
  const ctx = await freshServer(t, { engine: { recent_events: 5 } });
  let srv = ctx.srv;
  for (let i = 0; i < 12; i++) {
    const r = await srv.ingest('/v1/track', { userId: 'busy', event: 'E', messageId: `e-${i}` });
    assert.equal(r.status, 200);
  }
  await srv.settled();
  const p = (await srv.profile('busy')).json;
  assert.equal(p.eventCount, 12);
  assert.deepEqual(p.events.map((e) => e.messageId), ['e-11', 'e-10', 'e-9', 'e-8', 'e-7']);
  assertCleanExit(assert, srv, await srv.stop());
  // The same after a restart (loaded from the store's timeline).
  srv = await ctx.start();
  assert.deepEqual((await srv.profile('busy')).json, p);
  assertCleanExit(assert, srv, await srv.stop());
});

test('a client retry with the same messageIds is acknowledged but stored once, also after a restart', async (t) => {
  const ctx = await freshServer(t);
  let srv = ctx.srv;
  const batch = { batch: [
    { type: 'track', userId: 'r', event: 'Paid', messageId: 'pay-1', properties: { amount: 10 } },
    { type: 'identify', userId: 'r', messageId: 'id-1', traits: { plan: 'pro' } },
  ] };
  for (let i = 0; i < 2; i++) assert.equal((await srv.ingest('/v1/batch', batch)).status, 200);
  let s = await srv.settled();
  assert.equal(s.engine.events, 2);
  assert.equal(s.engine.duplicates, 2);
  assert.equal((await srv.profile('r')).json.eventCount, 2);
  assertCleanExit(assert, srv, await srv.stop());
  srv = await ctx.start();
  assert.equal((await srv.ingest('/v1/track', batch.batch[0])).status, 200);
  // A new messageId is a new event even with the same content.
  assert.equal((await srv.ingest('/v1/track', { ...batch.batch[0], messageId: 'pay-2' })).status, 200);
  s = await srv.settled();
  const p = (await srv.profile('r')).json;
  assert.equal(p.eventCount, 3);
  assert.deepEqual(p.events.map((e) => e.messageId), ['pay-2', 'id-1', 'pay-1']);
  assert.equal(s.engine.events, 3);
  assertCleanExit(assert, srv, await srv.stop());
});

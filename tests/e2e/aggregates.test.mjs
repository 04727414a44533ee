// Computed aggregates through the public interface: declared in the config,
// shown on the profile, kept across restarts and merges, and backfilled from
// stored history when a definition is added.
import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { freshServer } from './lib/baton.mjs';

const DAY = 86400000;
const iso = (ms) => new Date(ms).toISOString();

test('aggregates: counts, sums and windows on the profile, across restarts, merges and new definitions', async (t) => {
  const ctx = await freshServer(t);
  appendFileSync(ctx.config, [
    'aggregates:',
    '  - {name: orders, event: Order Completed}',
    '  - {name: orders_30d, event: Order Completed, kind: count, window: 30d}',
    '  - {name: revenue, event: Order Completed, kind: sum, property: order.total}',
    '  - {name: biggest, event: Order Completed, kind: max, property: order.total}',
    '  - {name: last_plan, event: Plan Changed, kind: last, property: plan}',
    '',
  ].join('\n'));
  await ctx.srv.stop();
  let srv = await ctx.start(); // restart so the config's aggregates apply
  const now = Date.now();
  const order = (userId, total, ts, extra = {}) => ({ type: 'track', userId, event: 'Order Completed', properties: { order: { total } }, timestamp: iso(ts), ...extra });
  const batch = [
    order('ann', 100, now - 90 * DAY),   // outside the 30-day window
    order('ann', 20, now - 2 * DAY),
    order('ann', 5.5, now - 1000),
    { type: 'track', userId: 'ann', event: 'Plan Changed', properties: { plan: 'pro' }, timestamp: iso(now - 500) },
    { type: 'track', userId: 'ann', event: 'Order Completed', properties: { order: { total: 'n/a' } }, timestamp: iso(now - 100) }, // not a number
  ];
  assert.equal((await srv.ingest('/v1/batch', { batch })).status, 200);
  await srv.settled();
  const want = { orders: 4, orders_30d: 3, revenue: 125.5, biggest: 100 };
  let a = (await srv.profile('ann')).json.aggregates;
  assert.deepEqual({ orders: a.orders, orders_30d: a.orders_30d, revenue: a.revenue, biggest: a.biggest }, want);
  assert.equal(a.last_plan.value, 'pro');

  // A clean stop and a start: the same figures.
  await srv.stop();
  srv = await ctx.start();
  a = (await srv.profile('ann')).json.aggregates;
  assert.deepEqual({ orders: a.orders, orders_30d: a.orders_30d, revenue: a.revenue, biggest: a.biggest }, want);

  // An anonymous visitor's order merges into ann's figures when they log in.
  assert.equal((await srv.ingest('/v1/track', order(undefined, 7, now - 50, { anonymousId: 'ann-phone', userId: undefined }))).status, 200);
  assert.equal((await srv.ingest('/v1/identify', { userId: 'ann', anonymousId: 'ann-phone' })).status, 200);
  await srv.settled();
  a = (await srv.profile('ann')).json.aggregates;
  assert.equal(a.orders, 5);
  assert.equal(a.revenue, 132.5);

  // A definition added later is computed from the stored history at the next start.
  await srv.stop();
  appendFileSync(ctx.config, '  - {name: small_orders_sum, event: Order Completed, kind: min, property: order.total}\n');
  srv = await ctx.start();
  assert.match(srv.stderr, /aggregates backfilled from stored timelines/);
  a = (await srv.profile('ann')).json.aggregates;
  assert.equal(a.small_orders_sum, 5.5);
  assert.equal(a.orders, 5);

  // A bad definition stops the start with its position.
  await srv.stop();
  appendFileSync(ctx.config, '  - {name: broken, event: X, kind: sum}\n');
  await assert.rejects(ctx.start(), /aggregates.broken.property: required for sum/);
});

// Scenario S2 of the product brief, end to end: a "renew your contract" step
// is held back while the customer's billing dispute is open — with the reason
// on their timeline — and goes out once the dispute is resolved, exactly once.
// The billing department's system opens and closes the case through the API.
import test from 'node:test';
import assert from 'node:assert/strict';
import { freshServer, startReceiver, waitFor, delay, slow } from './lib/baton.mjs';

test('scenario: no renewal offer during a billing dispute; it goes out after', async (t) => {
  const rx = await startReceiver(t);
  const { srv } = await freshServer(t);
  const journey = [
    'id: renewal',
    'name: Contract renewal',
    'trigger: {event: Contract Expiring}',
    'steps:',
    '  - id: check-dispute',
    '    type: branch',
    '    condition: openCases("billing_dispute") == 0',
    '    then: renewal-offer',
    '    else: wait-for-resolution',
    '  - id: wait-for-resolution',
    '    type: wait',
    '    duration: 500ms',
    '    next: check-dispute',
    `  - {id: renewal-offer, type: webhook, url: "${rx.url('/renew')}"}`,
    '',
  ].join('\n');
  const pub = await srv.putJourney('renewal', journey);
  assert.equal(pub.status, 200, pub.text);

  // Billing opens a dispute for dana; sam has none.
  for (const u of ['dana', 'sam']) assert.equal((await srv.ingest('/v1/identify', { userId: u, traits: { plan: 'pro' } })).status, 200);
  await srv.settled();
  const opened = await srv.admin('POST', '/v1/profiles/dana/cases', { body: { id: 'disp-1', type: 'billing_dispute', department: 'billing', text: 'charged twice' } });
  assert.equal(opened.status, 201, opened.text);

  for (const u of ['dana', 'sam'])
    assert.equal((await srv.ingest('/v1/track', { userId: u, event: 'Contract Expiring', properties: { ends: '2027-01-31' } })).status, 200);

  // sam gets the offer; dana does not while the dispute is open.
  await rx.waitCalls(1);
  assert.equal(rx.calls[0].json.customer.userId, 'sam');
  await delay(1500 * slow);
  assert.equal(rx.calls.length, 1, 'no offer to dana during the dispute');
  const timeline = (await srv.admin('GET', '/v1/profiles/dana/events?limit=100')).json.events;
  const held = timeline.filter((e) => e.type === 'baton.branch' && e.journey === 'renewal');
  assert.ok(held.length >= 2, 'the check is recorded each time it holds the offer back');
  assert.ok(held.every((e) => e.result === false && e.step === 'check-dispute'));
  const dana = (await srv.profile('dana')).json;
  assert.equal(dana.journeys.find((j) => j.id === 'renewal').active.step, 'wait-for-resolution');

  // Billing resolves the dispute: the offer goes out, once.
  const closed = await srv.admin('PATCH', '/v1/profiles/dana/cases/disp-1', { body: { status: 'closed' } });
  assert.equal(closed.status, 200, closed.text);
  await rx.waitCalls(2);
  assert.equal(rx.calls[1].json.customer.userId, 'dana');
  assert.equal(rx.calls[1].json.journey.step, 'renewal-offer');
  await delay(1200 * slow);
  assert.equal(rx.calls.length, 2, 'exactly one offer each');
  await waitFor(async () => {
    const m = (await srv.profile('dana')).json.messages;
    return m.length === 1 && m[0].state === 'delivered';
  }, { what: "dana's offer recorded as delivered" });
  const after = (await srv.admin('GET', '/v1/profiles/dana/events?limit=100')).json.events;
  assert.ok(after.some((e) => e.type === 'baton.branch' && e.result === true));
  assert.ok(after.some((e) => e.type === 'baton.case' && e.action === 'closed'));
});

// The durability promise: events acknowledged with 200 survive SIGKILL, a
// journey timer pending at the kill fires its webhook exactly once after the
// restart, and a webhook in flight at the kill is not sent again (at most
// once) and shows as "unknown".
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { assertCleanExit, freshServer, request, basic, slow, startReceiver, waitFor } from './lib/baton.mjs';

const TOTAL_EVENTS = 10000;
const USERS = 250; // 40 events each at most: all fit in recent_events
const WORKERS = 8;
const SIGNUP_AFTER_ACKS = 2000; // events acknowledged before the journey trigger is sent
const KILL_AFTER_MORE_ACKS = 400; // and this many more after its ack, then SIGKILL

/** The whole stream: single-event tracks and small batches, unique messageIds. */
function buildPlan() {
  const plan = [];
  let seq = 0;
  let k = 0;
  while (seq < TOTAL_EVENTS) {
    const n = k % 3 === 0 ? 1 : Math.min(2 + (k % 9), TOTAL_EVENTS - seq);
    const events = [];
    for (let i = 0; i < n; i++, seq++) {
      events.push({ type: 'track', userId: `u-${seq % USERS}`, event: 'Tick', messageId: `m-${seq}`, properties: { seq } });
    }
    plan.push(n === 1 && k % 2 === 0
      ? { path: '/v1/track', body: { ...events[0], type: undefined }, events }
      : { path: '/v1/batch', body: { batch: events }, events });
    k++;
  }
  return plan;
}

function post(url, pathname, body, writeKey, agent) {
  return request(url + pathname, {
    method: 'POST',
    agent,
    headers: { 'Content-Type': 'application/json', Authorization: basic(writeKey) },
    body,
  });
}

test('crash: SIGKILL mid-stream loses no acknowledged event; resending the rest stores each event once; a pending 2s timer fires exactly once after restart', async (t) => {
  const rx = await startReceiver(t);
  const ctx = await freshServer(t, { engine: { recent_events: 64, checkpoint_interval: '500ms' } });
  let srv = ctx.srv;
  const put = await srv.putJourney('welcome', [
    'id: welcome', 'trigger:', '  event: Signed Up', 'reentry: never', 'steps:',
    '  - id: settle', '    type: wait', '    duration: 2s',
    '  - id: notify', '    type: webhook', `    url: ${rx.url('/welcome')}`,
    '',
  ].join('\n'));
  assert.deepEqual(put.json, { id: 'welcome', version: 1 });

  const plan = buildPlan();
  const results = new Array(plan.length); // {status} or {error}
  let queue = plan.map((_, i) => i); // request indices still to send
  let qi = 0;
  let ackedEvents = 0;
  let stopped = false;
  let url = srv.url;
  let agent = new http.Agent({ keepAlive: true, maxSockets: WORKERS });

  async function worker() {
    while (!stopped && qi < queue.length) {
      const i = queue[qi++];
      const p = plan[i];
      try {
        const r = await post(url, p.path, p.body, ctx.writeKey, agent);
        results[i] = { status: r.status, text: r.text };
        if (r.status === 200) ackedEvents += p.events.length;
      } catch (e) {
        results[i] = { error: e.code ?? e.message };
      }
    }
  }

  // Phase 1: stream until the kill.
  const workers = Array.from({ length: WORKERS }, worker);
  await waitFor(() => ackedEvents >= SIGNUP_AFTER_ACKS, { timeoutMs: 60000 * slow, intervalMs: 5, what: 'first acks' });
  const signupSentAt = Date.now();
  const signup = await post(url, '/v1/track', { userId: 'journey-user', event: 'Signed Up', messageId: 'signup' }, ctx.writeKey);
  assert.equal(signup.status, 200, signup.text);
  const signupAckedAt = Date.now();
  const acksAtSignup = ackedEvents;
  await waitFor(() => ackedEvents >= acksAtSignup + KILL_AFTER_MORE_ACKS || Date.now() - signupAckedAt > 400,
    { intervalMs: 2, what: 'more acks' });
  // One request is surely in flight at the kill: its body is half sent.
  const halfBody = Buffer.from(JSON.stringify({ userId: 'half-sent', event: 'Tick', messageId: 'half' }));
  const half = http.request(url + '/v1/track', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': halfBody.length, Authorization: basic(ctx.writeKey) },
  });
  const halfResult = new Promise((resolve) => {
    half.on('response', (res) => resolve({ status: res.statusCode }));
    half.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
  half.write(halfBody.subarray(0, 20));
  await new Promise((r) => half.once('socket', (sock) => (sock.connecting ? sock.once('connect', r) : r())));
  stopped = true;
  await srv.kill();
  const killedAt = Date.now();
  assert.ok((await halfResult).error, 'the half-sent request cannot have been answered');
  assert.equal(rx.calls.length, 0, 'the 2s timer must still be pending at the kill');
  assert.ok(killedAt - signupAckedAt < 1500, `killed ${killedAt - signupAckedAt} ms after the trigger`);
  await Promise.all(workers);
  agent.destroy();
  const sentInPhase1 = queue.slice(0, qi);
  const failedAtKill = sentInPhase1.filter((i) => results[i].error).length;
  const ackedAtKill = ackedEvents;
  assert.ok(ackedAtKill >= SIGNUP_AFTER_ACKS && ackedAtKill < TOTAL_EVENTS / 2, `acked ${ackedAtKill}`);
  for (const i of sentInPhase1) {
    const r = results[i];
    if (r.status !== undefined) assert.ok([200, 429, 503].includes(r.status), `unexpected answer ${r.status} ${r.text}`);
  }
  const user = (u) => `u-${u}`;
  const sentBy = new Map(); // user -> Set(messageId) of every event in the plan
  const ackedBy = new Map(); // user -> [messageId] acknowledged before the kill
  for (let u = 0; u < USERS; u++) {
    sentBy.set(user(u), new Set());
    ackedBy.set(user(u), []);
  }
  plan.forEach((p) => p.events.forEach((e) => sentBy.get(e.userId).add(e.messageId)));
  for (const i of sentInPhase1) {
    if (results[i].status === 200) plan[i].events.forEach((e) => ackedBy.get(e.userId).push(e.messageId));
  }

  // Restart on the same data directory: every acknowledged event is in its
  // profile; nothing appears twice or from nowhere; eventCount matches.
  srv = await ctx.start();
  url = srv.url;
  let stats = await srv.settled();
  let storedAfterCrash = 0;
  let ackedTotal = 0;
  for (let u = 0; u < USERS; u++) {
    const id = user(u);
    const r = await srv.profile(id);
    if (!ackedBy.get(id).length && r.status === 404) continue;
    assert.equal(r.status, 200, `${id}: ${r.text}`);
    const ids = r.json.events.map((e) => e.messageId);
    assert.equal(r.json.eventCount, ids.length, `${id}: eventCount ${r.json.eventCount} but ${ids.length} events listed`);
    assert.equal(new Set(ids).size, ids.length, `${id}: an event is listed twice`);
    for (const m of ids) assert.ok(sentBy.get(id).has(m), `${id}: ${m} was never sent`);
    const have = new Set(ids);
    for (const m of ackedBy.get(id)) assert.ok(have.has(m), `${id}: acknowledged event ${m} is missing after the crash`);
    // Each listed event is the one sent under that id, not another's copy.
    for (const e of r.json.events) assert.equal(`m-${e.properties.seq}`, e.messageId);
    storedAfterCrash += ids.length;
    ackedTotal += ackedBy.get(id).length;
  }
  assert.equal(ackedTotal, ackedAtKill);
  assert.ok(storedAfterCrash >= ackedAtKill);
  assert.equal(stats.engine.events, storedAfterCrash + 1, 'engine.events = stored Tick events + the signup');
  assert.equal((await srv.profile('half-sent')).status, 404, 'a half-received request stored an event');

  // Phase 2, as a real client would: resend every request that got no 200
  // (some were stored before the kill: the messageId de-duplication must
  // drop those), then send the rest of the stream.
  queue = [...sentInPhase1.filter((i) => results[i].status !== 200), ...queue.slice(qi)];
  qi = 0;
  agent = new http.Agent({ keepAlive: true, maxSockets: WORKERS });
  stopped = false;
  await Promise.all(Array.from({ length: WORKERS }, worker));
  agent.destroy();
  for (const r of results) assert.equal(r.status, 200, JSON.stringify(r));
  stats = await srv.settled();
  // Now every one of the 10,000 events is stored exactly once.
  for (let u = 0; u < USERS; u++) {
    const p = (await srv.profile(user(u))).json;
    const ids = p.events.map((e) => e.messageId);
    assert.equal(p.eventCount, sentBy.get(user(u)).size, `${user(u)}: eventCount`);
    assert.deepEqual(new Set(ids), sentBy.get(user(u)), `${user(u)}: events`);
    assert.equal(ids.length, p.eventCount);
  }
  assert.equal(stats.engine.events, TOTAL_EVENTS + 1);
  assert.equal(stats.engine.duplicates, storedAfterCrash - ackedAtKill, 'resent events stored before the kill are de-duplicated');
  assert.equal(stats.engine.profiles, USERS + 1);
  t.diagnostic(`events acknowledged before the kill: ${ackedAtKill}, requests failed by the kill: ${failedAtKill}, ` +
    `stored after the crash: ${storedAfterCrash} (${storedAfterCrash - ackedAtKill} without an ack), ${TOTAL_EVENTS} in the end`);

  // The pending timer fires once, after the restart, 2s after the trigger.
  await rx.waitCalls(1, { timeoutMs: 20000 * slow });
  const call = rx.calls[0];
  // The timer is due 2 s after the server received the trigger, which was
  // after signupSentAt by this same wall clock.
  assert.ok(call.at - signupSentAt >= 2000, `fired ${call.at - signupSentAt} ms after the trigger was sent`);
  assert.equal(call.json.customer.userId, 'journey-user');
  assert.deepEqual(call.json.journey, { id: 'welcome', version: 1, step: 'notify', entry: 1 });
  assert.equal(call.json.event.messageId, 'signup');
  const msg = await waitFor(async () => {
    const m = (await srv.profile('journey-user')).json.messages;
    return m.length === 1 && m[0].state === 'delivered' && m[0];
  }, { what: 'the message delivered on the profile' });
  assert.equal(msg.id, call.json.id);
  assert.equal(msg.attempts, 1);
  // Exactly once: nothing more arrives in the 3 s after the first call.
  await waitFor(() => Date.now() >= call.at + 3000, { timeoutMs: 5000, what: '3 s after the webhook' });
  assert.equal(rx.calls.length, 1, 'the webhook was sent more than once');
  assertCleanExit(assert, srv, await srv.stop());
});

test('crash: a webhook in flight at SIGKILL is not sent again and shows as unknown', async (t) => {
  let hold = true;
  const rx = await startReceiver(t, () => (hold ? { hold: true } : { status: 200 }));
  const ctx = await freshServer(t, { delivery: { timeout: '60s', backoff: '100ms' } });
  let srv = ctx.srv;
  assert.equal((await srv.putJourney('ping', [
    'id: ping', 'trigger:', '  event: Ping', 'steps:',
    '  - id: hook', '    type: webhook', `    url: ${rx.url('/ping')}`, '',
  ].join('\n'))).status, 200);
  assert.equal((await srv.ingest('/v1/track', { userId: 'p', event: 'Ping', messageId: 'ping-1' })).status, 200);
  await rx.waitCalls(1); // the receiver holds it: the attempt is in flight
  const msgId = rx.calls[0].json.id;
  const during = (await srv.profile('p')).json.messages;
  assert.deepEqual(during.map((m) => [m.id, m.state]), [[msgId, 'sending']]);
  await srv.kill();

  hold = false; // from now on the receiver would accept a second attempt
  srv = await ctx.start();
  const m = (await srv.profile('p')).json.messages;
  assert.equal(m.length, 1);
  assert.equal(m[0].id, msgId);
  assert.equal(m[0].state, 'unknown');
  assert.match(m[0].error, /at most once/);
  assert.ok(srv.logLines().some((l) => l.msg === 'messages in doubt after a crash marked unknown' && l.count === 1));
  // Not sent again: delivery loads its outbox before the server listens, so
  // a resend would start right away; give it well over a second anyway.
  await waitFor(async () => (await srv.stats()).engine.applied_lsn >= 2, { what: 'replay' });
  const t0 = Date.now();
  await waitFor(() => Date.now() - t0 >= 1500, { what: '1.5 s' });
  assert.equal(rx.calls.length, 1, 'the in-doubt message was sent again');
  assert.equal((await srv.profile('p')).json.messages[0].state, 'unknown');
  // The customer can still receive other messages: a new entry is a new id.
  assert.equal((await srv.ingest('/v1/track', { userId: 'p', event: 'Ping', messageId: 'ping-2' })).status, 200);
  await rx.waitCalls(2);
  assert.notEqual(rx.calls[1].json.id, msgId);
  assert.equal(rx.calls[1].json.journey.entry, 2);
  await waitFor(async () => (await srv.profile('p')).json.messages.some((x) => x.state === 'delivered'), { what: 'second delivered' });
  assertCleanExit(assert, srv, await srv.stop());
});

test('crash: three kills in a row (one right after a restart) lose nothing; the timer still fires once', async (t) => {
  const rx = await startReceiver(t);
  const ctx = await freshServer(t, { engine: { recent_events: 200, checkpoint_interval: '300ms' } });
  let srv = ctx.srv;
  assert.equal((await srv.putJourney('later', [
    'id: later', 'trigger:', '  event: Signed Up', 'steps:',
    '  - id: w', '    type: wait', '    duration: 2s',
    '  - id: hook', '    type: webhook', `    url: ${rx.url('/later')}`, '',
  ].join('\n'))).status, 200);
  const acked = new Set();
  const sent = new Set();
  let seq = 0;
  let signupSentAt = 0;

  // Streams batches of 5 from 4 connections until `acks` more events are
  // acknowledged (or maxMs passed), then kills the server with requests in
  // flight.
  async function streamAndKill(acks, maxMs = Infinity) {
    const t0 = Date.now();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const target = acked.size + acks;
    let stop = false;
    const work = async () => {
      while (!stop) {
        const batch = Array.from({ length: 5 }, () => {
          const s = seq++;
          return { type: 'track', userId: `k-${s % 20}`, event: 'Tick', messageId: `k-${s}` };
        });
        batch.forEach((e) => sent.add(e.messageId));
        try {
          const r = await post(srv.url, '/v1/batch', { batch }, ctx.writeKey, agent);
          if (r.status === 200) batch.forEach((e) => acked.add(e.messageId));
        } catch { /* killed */ }
      }
    };
    const ws = Array.from({ length: 4 }, work);
    await waitFor(() => acked.size >= target || Date.now() - t0 > maxMs, { timeoutMs: 60000 * slow, intervalMs: 2, what: `${target} acks` });
    stop = true;
    await srv.kill();
    await Promise.all(ws);
    agent.destroy();
  }

  await streamAndKill(600);
  srv = await ctx.start();
  signupSentAt = Date.now();
  assert.equal((await post(srv.url, '/v1/track', { userId: 'waiter', event: 'Signed Up' }, ctx.writeKey)).status, 200);
  await streamAndKill(600, 600); // well before the 2 s timer is due
  // Restart and kill again at once, before the engine's first checkpoint.
  srv = await ctx.start();
  await srv.kill();
  assert.equal(rx.calls.length, 0, 'the timer must still be pending after the second kill');
  srv = await ctx.start();
  const stats = await srv.settled();

  let stored = 0;
  for (let u = 0; u < 20; u++) {
    const p = (await srv.profile(`k-${u}`)).json;
    const ids = p.events.map((e) => e.messageId);
    assert.equal(p.eventCount, ids.length);
    assert.equal(new Set(ids).size, ids.length);
    for (const m of ids) assert.ok(sent.has(m));
    stored += ids.length;
  }
  for (const m of acked) {
    const u = `k-${Number(m.slice(2)) % 20}`;
    assert.ok((await srv.profile(u)).json.events.some((e) => e.messageId === m), `acknowledged ${m} lost`);
  }
  assert.equal(stats.engine.events, stored + 1);
  t.diagnostic(`acknowledged ${acked.size}, stored ${stored}, sent ${sent.size}`);

  await rx.waitCalls(1, { timeoutMs: 20000 * slow });
  const call = rx.calls[0];
  assert.ok(call.at - signupSentAt >= 2000);
  assert.equal(call.json.customer.userId, 'waiter');
  await waitFor(async () => (await srv.profile('waiter')).json.messages[0]?.state === 'delivered', { what: 'delivered' });
  await waitFor(() => Date.now() >= call.at + 3000, { timeoutMs: 5000, what: '3 s after the webhook' });
  assert.equal(rx.calls.length, 1, 'the webhook was sent more than once');
  assertCleanExit(assert, srv, await srv.stop());
});

test('crash: a message delivered but not yet checkpointed is not sent again when the log is replayed', async (t) => {
  const rx = await startReceiver(t);
  // No checkpoint during the test: after the kill everything is replayed from
  // the log and the webhook message is produced again with the same id.
  const ctx = await freshServer(t, { engine: { checkpoint_interval: '1h' } });
  let srv = ctx.srv;
  assert.equal((await srv.putJourney('now', [
    'id: now', 'trigger:', '  event: Bought', 'steps:',
    '  - id: thanks', '    type: webhook', `    url: ${rx.url('/thanks')}`, '',
  ].join('\n'))).status, 200);
  assert.equal((await srv.ingest('/v1/track', { userId: 'buyer', event: 'Bought', messageId: 'b-1' })).status, 200);
  await rx.waitCalls(1);
  await waitFor(async () => (await srv.profile('buyer')).json.messages[0]?.state === 'delivered', { what: 'delivered' });
  assert.equal((await srv.stats()).engine.checkpoints, 0, 'no checkpoint was written before the kill');
  await srv.kill();

  srv = await ctx.start();
  const p = (await srv.profile('buyer')).json;
  assert.equal(p.eventCount, 1);
  assert.equal(p.events[0].messageId, 'b-1');
  assert.deepEqual(p.messages.map((m) => [m.id, m.state]), [[rx.calls[0].json.id, 'delivered']]);
  assert.equal(p.journeys[0].entries, 1);
  // Replay re-produced the message; delivery refused it as already sent.
  await waitFor(async () => (await srv.stats()).delivery.duplicates_refused === 1, { what: 'the replayed message refused' });
  assert.equal(rx.calls.length, 1, 'the delivered message was sent again after replay');
  assertCleanExit(assert, srv, await srv.stop());
  assert.equal(rx.calls.length, 1);
});

// Regression: a message waiting for its retry was in no durable outbox (the
// checkpoint skips messages that have a ledger record, and a replayed copy
// was refused as a duplicate), so after any restart it stayed "retrying"
// forever: silently dropped.
for (const [how, checkpoint] of [['SIGTERM', '200ms'], ['SIGKILL', '200ms'], ['SIGKILL', '1h']]) {
  test(`crash: a message waiting to be retried is delivered after a restart (${how}, checkpoint ${checkpoint})`, async (t) => {
    let answer = 500;
    const rx = await startReceiver(t, () => ({ status: answer }));
    // A long backoff: the retry can only come from the restarted process.
    const ctx = await freshServer(t, { delivery: { backoff: '1h', max_attempts: 5 }, engine: { checkpoint_interval: checkpoint } });
    let srv = ctx.srv;
    assert.equal((await srv.putJourney('retry', [
      'id: retry', 'trigger:', '  event: Go', 'steps:',
      '  - id: hook', '    type: webhook', `    url: ${rx.url('/r')}`, '',
    ].join('\n'))).status, 200);
    assert.equal((await srv.ingest('/v1/track', { userId: 'x', event: 'Go' })).status, 200);
    await rx.waitCalls(1);
    await waitFor(async () => (await srv.profile('x')).json.messages[0]?.state === 'retrying', { what: 'retrying' });
    if (checkpoint !== '1h') {
      const cps = (await srv.stats()).engine.checkpoints;
      await waitFor(async () => (await srv.stats()).engine.checkpoints > cps, { what: 'a checkpoint after the failed attempt' });
    }
    if (how === 'SIGTERM') assertCleanExit(assert, srv, await srv.stop());
    else await srv.kill();
    answer = 200;
    srv = await ctx.start();
    const m = await waitFor(async () => {
      const x = (await srv.profile('x')).json.messages[0];
      return x.state === 'delivered' && x;
    }, { what: 'the retried message delivered after the restart' });
    assert.equal(m.attempts, 2);
    assert.equal(rx.calls.length, 2);
    assert.equal(rx.calls[1].headers['webhook-id'], rx.calls[0].headers['webhook-id']);
    assert.equal(rx.calls[1].body, rx.calls[0].body);
    assertCleanExit(assert, srv, await srv.stop());
    assert.equal(rx.calls.length, 2);
  });
}

// The unmodified @rudderstack/rudder-sdk-node library, gzip on (its default;
// set explicitly here too), sends every call type to Baton through its
// dataPlaneUrl. A recording proxy in between proves the bodies really were
// gzip; the profile API then shows every call, the timestamps normalised by
// Segment's rule, and the merges the calls imply.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {gunzipSync} from 'node:zlib'
import Analytics from '@rudderstack/rudder-sdk-node'
import {Node, waitFor} from './support/baton.mjs'
import {recordingProxy} from './support/proxy.mjs'

test('rudder-sdk-node: all call types arrive gzip-compressed, merge, and are normalised', async (t) => {
  const node = await Node.create(t)
  const proxy = await recordingProxy(() => node.url)
  t.after(proxy.close)
  const errors = []
  const client = new Analytics(node.writeKey, {
    dataPlaneUrl: proxy.url, gzip: true, flushAt: 3, flushInterval: 60000, retryCount: 0,
    logLevel: 'error', errorHandler: (e) => errors.push(e),
  })
  const run = Date.now().toString(36)
  const U = `rs-user-${run}`, A1 = `rs-anon-1-${run}`, A2 = `rs-anon-2-${run}`
  const email = `rs-${run}@example.com`
  const historical = new Date('2026-03-01T10:00:00.000Z')
  const sent = [] // [call type, the message we passed]
  const call = (type, msg) => { sent.push([type, msg]); client[type](msg) }

  // Device 1, anonymous: a page view and a product view (with a client timestamp from the past).
  call('page', {anonymousId: A1, name: 'Home', properties: {path: '/'}})
  call('track', {anonymousId: A1, event: 'Product Viewed', properties: {sku: 'SKU-1', price: 9.5},
    timestamp: historical})
  // Device 2, anonymous: an app screen.
  call('screen', {anonymousId: A2, name: 'Dashboard', properties: {tab: 'home'}})
  // The library may send its batches on parallel connections, whose order at the server is
  // then anyone's guess: let the anonymous history arrive before the login.
  const answered = () => proxy.seen.filter((r) => r.status)
    .reduce((n, r) => n + JSON.parse(gunzipSync(r.body)).batch.length, 0)
  await waitFor(async () => { await client.flush(); return answered() === sent.length },
    {what: 'the anonymous calls sent and answered'})
  // Login on device 1: the anonymous profile becomes the user's (no merge).
  call('identify', {userId: U, anonymousId: A1, traits: {email, plan: 'pro', name: 'Rudy'}})
  call('group', {userId: U, groupId: 'acme', traits: {name: 'Acme Inc'}})
  // alias: device 2's anonymous profile is merged into the user's.
  call('alias', {userId: U, previousId: A2})
  await waitFor(async () => { await client.flush(); return answered() === sent.length },
    {what: 'the login calls sent and answered'})
  call('track', {userId: U, event: 'Order Completed', properties: {order_id: 'o-1', revenue: 42}})
  // flush() sends one batch of at most flushAt: flush until every call was answered.
  await waitFor(async () => { await client.flush(); return answered() === sent.length },
    {what: 'every call sent and answered'})
  assert.deepEqual(errors, [])

  // Every request went through the proxy gzip-compressed, with the write key as the Basic user,
  // and Baton answered 200.
  assert.ok(proxy.seen.length >= 3, `${proxy.seen.length} requests`)
  const got = []
  for (const r of proxy.seen) {
    assert.equal(r.path, '/v1/batch')
    assert.equal(r.headers['content-encoding'], 'gzip')
    assert.deepEqual([...r.body.subarray(0, 2)], [0x1f, 0x8b], 'a gzip stream')
    assert.equal(r.headers.authorization, 'Basic ' + Buffer.from(`${node.writeKey}:`).toString('base64'))
    assert.equal(r.status, 200, r.answer)
    assert.equal(r.answer, '{"success":true}')
    got.push(...JSON.parse(gunzipSync(r.body)).batch)
  }
  assert.deepEqual(got.map((m) => m.type), sent.map(([type]) => type))
  const ids = got.map((m) => m.messageId)

  // One profile holds it all: found by userId, by either anonymousId, and by email.
  await node.settled() // a 200 means durable; wait until applied too
  const p = await node.profile(U)
  assert.ok(p, 'profile of the userId')
  assert.equal(p.userId, U)
  assert.equal(p.key, `a:${A1}`, 'the anonymous profile became the user\'s: its key stays')
  assert.deepEqual(p.merged, [`a:${A2}`])
  assert.deepEqual(new Set(p.anonymousIds), new Set([A1, A2]))
  assert.deepEqual(
    new Set(p.identities.map((i) => `${i.type}=${i.value}`)),
    new Set([`userId=${U}`, `anonymousId=${A1}`, `anonymousId=${A2}`, `email=${email}`]))
  assert.equal(p.traits.email, email)
  assert.equal(p.traits.plan, 'pro')
  assert.equal(p.traits.name, 'Rudy')
  assert.equal(p.eventCount, sent.length)
  for (const other of [[A1], [A2], [A2, 'anonymousId'], [email, 'email'], [U, 'userId']]) {
    const q = await node.profile(...other)
    assert.equal(q?.key, p.key, `lookup ${other.join(' by ')}`)
  }

  // The timeline: every call exactly once (by messageId), plus the alias merge.
  const {entries} = await node.timeline(U, {limit: 4})
  const calls = entries.filter((e) => !e.type.startsWith('baton.'))
  assert.deepEqual(calls.map((e) => e.messageId).sort(), [...ids].sort())
  const merges = entries.filter((e) => e.type === 'baton.merge')
  assert.equal(merges.length, 1)
  assert.equal(merges[0].other, `a:${A2}`)
  assert.equal(merges[0].reason, 'alias')
  assert.equal(entries.filter((e) => e.type === 'baton.merge_refused').length, 0)

  // Timestamps: Segment's rule, timestamp = receivedAt - (sentAt - originalTimestamp),
  // with the client's own timestamp counting as its original timestamp.
  const byId = new Map(calls.map((e) => [e.messageId, e]))
  for (const m of got) {
    const e = byId.get(m.messageId)
    assert.equal(e.type, m.type)
    assert.equal(e.sentAt, m.sentAt)
    const orig = m.timestamp ?? m.originalTimestamp
    const want = Date.parse(e.receivedAt) - (Date.parse(m.sentAt) - Date.parse(orig))
    assert.equal(e.timestamp, new Date(want).toISOString(), `${m.type} ${m.messageId}`)
    assert.equal(e.originalTimestamp, m.originalTimestamp, 'the client\'s originalTimestamp is kept')
    assert.ok(!('writeKey' in e))
  }
  const viewed = calls.find((e) => e.event === 'Product Viewed')
  assert.ok(Math.abs(Date.parse(viewed.timestamp) - historical.getTime()) < 5000,
    `historical timestamp kept (±clock drift): ${viewed.timestamp}`)
  assert.deepEqual(viewed.properties, {sku: 'SKU-1', price: 9.5})
  const order = calls.find((e) => e.event === 'Order Completed')
  assert.equal(order.userId, U)
  assert.deepEqual(order.properties, {order_id: 'o-1', revenue: 42})
  assert.equal(calls.find((e) => e.type === 'group').groupId, 'acme')
  assert.equal(calls.find((e) => e.type === 'alias').previousId, A2)
  assert.equal(calls.find((e) => e.type === 'screen').name, 'Dashboard')
  assert.equal(calls.find((e) => e.type === 'page').name, 'Home')
  assert.equal(calls.find((e) => e.type === 'identify').context.library.name, 'analytics-node')

  const s = await node.settled()
  assert.equal(s.engine.events, sent.length)
  assert.equal(s.engine.profiles, 1)
  assert.equal(s.engine.merges, 1)
  assert.equal(s.engine.duplicates, 0)
  await node.stop()
})

test('rudder-sdk-node: a wrong write key is refused with 401 and nothing is stored', async (t) => {
  const node = await Node.create(t)
  const errors = []
  const client = new Analytics('wk_not_a_configured_key', {
    dataPlaneUrl: node.url, gzip: true, flushAt: 1, retryCount: 0, logLevel: 'error',
    errorHandler: (e) => errors.push(e),
  })
  client.track({userId: 'nobody', event: 'Should Not Arrive'})
  await client.flush().catch(() => {})
  await waitFor(() => errors.length > 0, {what: 'the SDK to report the refusal'})
  assert.equal(errors[0].response?.status, 401)
  assert.equal(errors[0].response?.data?.code, 'invalid_write_key')
  const s = await node.stats()
  assert.equal(s.engine.events, 0)
  assert.equal(s.log.durable_lsn, 0)
  assert.equal(await node.profile('nobody'), null)
  await node.stop()
})

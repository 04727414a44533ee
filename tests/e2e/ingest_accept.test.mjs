// What the tracking API accepts, as real clients send it: every call type on
// its long and short path, any Content-Type, the write key as the Basic user
// (with or without a password) or in the body, gzip/x-gzip/deflate/identity
// bodies, integer ids, batch-level sentAt and context; and the timestamps
// normalised by Segment's rule, checked to the millisecond.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {gzipSync, deflateSync} from 'node:zlib'
import {Node, basic, request} from './support/baton.mjs'

const calls = {
  track: {event: 'Thing Happened', properties: {n: 1}},
  identify: {traits: {plan: 'basic'}},
  page: {name: 'Home', properties: {path: '/'}},
  screen: {name: 'Settings'},
  group: {groupId: 'g-1', traits: {size: 10}},
  alias: {}, // previousId set per call (one alias would merge the next)
}
const paths = [['track', '/v1/track'], ['track', '/v1/t'], ['identify', '/v1/identify'], ['identify', '/v1/i'],
  ['page', '/v1/page'], ['page', '/v1/p'], ['screen', '/v1/screen'], ['screen', '/v1/s'], ['group', '/v1/group'],
  ['group', '/v1/g'], ['alias', '/v1/alias'], ['alias', '/v1/a']]
const ctypes = [undefined, 'application/json', 'text/plain', 'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded', 'application/octet-stream']
const encodings = [[undefined, (b) => b], ['identity', (b) => b], ['gzip', gzipSync], ['x-gzip', gzipSync],
  ['deflate', deflateSync], ['GZIP', gzipSync]]

test('every call type on every path, any Content-Type, every key form and encoding', async (t) => {
  const node = await Node.create(t, {sources: [{name: 'web', key: 'wk_e2e3_web_key'}, {name: 'ios', key: 'wk_e2e3_ios_key'}]})
  const sent = []
  let i = 0
  for (const [type, path] of paths) {
    for (const keyForm of ['basic', 'basic+password', 'body', 'body-ios']) {
      const id = `acc-${i++}`
      const body = {userId: id, messageId: `mid-${id}`, ...calls[type]}
      if (type === 'alias') body.previousId = `old-${id}`
      const headers = {}
      const ctype = ctypes[i % ctypes.length]
      if (ctype) headers['Content-Type'] = ctype
      const [enc, pack] = encodings[i % encodings.length]
      if (enc) headers['Content-Encoding'] = enc
      if (keyForm === 'basic') headers.Authorization = basic('wk_e2e3_web_key')
      if (keyForm === 'basic+password') headers.Authorization = 'Basic ' + Buffer.from('wk_e2e3_ios_key:ignored').toString('base64')
      if (keyForm === 'body') body.writeKey = 'wk_e2e3_web_key'
      if (keyForm === 'body-ios') body.writeKey = 'wk_e2e3_ios_key'
      const r = await request(node.url + path, {method: 'POST', headers, body: pack(Buffer.from(JSON.stringify(body)))})
      assert.equal(r.status, 200, `${path} ${keyForm} ${ctype} ${enc}: ${r.text}`)
      assert.equal(r.text, '{"success":true}')
      assert.equal(r.headers['access-control-allow-origin'], '*')
      sent.push({id, type, path})
    }
  }
  await node.settled()
  for (const {id, type, path} of sent) {
    const p = await node.profile(id)
    assert.ok(p, `${id} (${path})`)
    assert.equal(p.eventCount, 1)
    const e = p.events[0]
    assert.equal(e.type, type)
    assert.equal(e.messageId, `mid-${id}`)
    assert.ok(!('writeKey' in e))
    for (const [k, v] of Object.entries(calls[type])) assert.deepEqual(e[k], v, `${id}.${k}`)
    if (type === 'identify') assert.equal(p.traits.plan, 'basic')
    if (type === 'alias') {
      assert.equal(e.previousId, `old-${id}`)
      assert.deepEqual(p.anonymousIds, [`old-${id}`], 'a previousId never seen becomes an identity')
    }
  }
  const s = await node.stats()
  assert.equal(s.engine.events, sent.length)
  // Latency histograms: every 200 counted once; the log wrote and synced; buckets add up.
  assert.equal(s.ingest.ack.calls, sent.length)
  assert.equal(s.ingest.resume.calls, sent.length)
  for (const h of [s.ingest.ack, s.ingest.resume, s.log.write, s.log.sync]) {
    assert.equal(h.hist_us.length, 24)
    assert.equal(h.hist_us.reduce((a, b) => a + b, 0), h.calls)
    assert.ok(h.max_ms <= h.ms + 1e-9 && h.ms >= 0)
  }
  assert.ok(s.log.sync.calls >= 1 && s.log.sync.calls <= sent.length)
  assert.ok(s.log.write.calls >= s.log.sync.calls)
  await node.stop()
})

test('ids, generated messageIds, batch sentAt and context, and timestamps by Segment\'s rule', async (t) => {
  const node = await Node.create(t)
  const iso = (ms) => new Date(ms).toISOString()
  const now = Date.now()
  // A device clock one hour ahead: sentAt and the event's timestamp both read ahead; the stored
  // timestamp is receivedAt - (sentAt - timestamp), i.e. 30 s before Baton received it.
  const skewed = {userId: 'ts-1', event: 'Skewed', messageId: 'ts-skew', sentAt: iso(now + 3600e3),
    timestamp: iso(now + 3600e3 - 30e3)}
  const onlyTs = {userId: 'ts-1', event: 'Historical', messageId: 'ts-hist', timestamp: '2024-02-29T12:34:56.789+02:00'}
  const onlyOrig = {userId: 'ts-1', event: 'Orig', messageId: 'ts-orig', originalTimestamp: iso(now - 5000),
    sentAt: iso(now - 1000)}
  const none = {userId: 42, event: 'Nothing', properties: {x: 1}}
  for (const body of [skewed, onlyTs, onlyOrig, none]) {
    const r = await node.ingest('/v1/track', body)
    assert.equal(r.status, 200, r.text)
  }
  // A batch: its sentAt applies to events without their own, its context to events without one.
  const r = await node.ingest('/v1/batch', {sentAt: iso(now + 60e3), context: {app: {name: 'shop', version: '2.1'}},
    batch: [
      {type: 'track', userId: 'ts-1', event: 'B1', messageId: 'ts-b1', timestamp: iso(now + 60e3 - 10e3)},
      {type: 'track', userId: 'ts-1', event: 'B2', messageId: 'ts-b2', timestamp: iso(now + 60e3 - 20e3),
        sentAt: iso(now + 60e3 - 5e3), context: {ip: '10.0.0.1'}},
    ]})
  assert.equal(r.status, 200, r.text)
  await node.settled()
  const {entries} = await node.timeline('ts-1')
  const by = Object.fromEntries(entries.map((e) => [e.messageId, e]))
  const rule = (e, sentAt, ts) => iso(Date.parse(e.receivedAt) - (Date.parse(sentAt) - Date.parse(ts)))
  assert.equal(by['ts-skew'].timestamp, rule(by['ts-skew'], skewed.sentAt, skewed.timestamp))
  assert.ok(Math.abs(Date.parse(by['ts-skew'].timestamp) - (now - 30e3)) < 10000)
  assert.equal(by['ts-skew'].originalTimestamp, skewed.timestamp, 'the client\'s timestamp kept as originalTimestamp')
  assert.equal(by['ts-hist'].timestamp, '2024-02-29T10:34:56.789Z', 'no sentAt: the client\'s timestamp, in UTC')
  assert.equal(by['ts-orig'].timestamp, rule(by['ts-orig'], onlyOrig.sentAt, onlyOrig.originalTimestamp))
  const b1 = by['ts-b1'], b2 = by['ts-b2']
  assert.equal(b1.timestamp, rule(b1, iso(now + 60e3), iso(now + 60e3 - 10e3)), 'batch sentAt applies')
  assert.equal(b2.timestamp, rule(b2, iso(now + 60e3 - 5e3), iso(now + 60e3 - 20e3)), 'own sentAt wins')
  assert.deepEqual(b1.context, {app: {name: 'shop', version: '2.1'}}, 'batch context applies')
  assert.deepEqual(b2.context, {ip: '10.0.0.1'}, 'own context wins')
  // An integer userId becomes a string; a missing messageId is generated; no timestamp: receivedAt.
  const p42 = await node.profile('42')
  assert.equal(p42.userId, '42')
  const e = p42.events[0]
  assert.equal(e.userId, '42')
  assert.match(e.messageId, /^baton-[0-9a-f]{32}$/)
  assert.equal(e.timestamp, e.receivedAt)
  await node.stop()
})

test('back-pressure: 429 busy with Retry-After while the engine is behind, nothing stored; the retry is taken', async (t) => {
  const node = await Node.create(t, {limits: {max_engine_lag: 1000, max_batch_events: 20000, max_body_bytes: 4194304}})
  // A batch of 20,000 events is durable before the engine has applied it: a request arriving in
  // that window finds the engine more than max_engine_lag records behind. Try until one does.
  let busy, probes = 0, bigs = 0
  const deadline = Date.now() + 60000
  while (!busy && Date.now() < deadline) {
    const big = {batch: Array.from({length: 20000}, (_, i) => ({type: 'track', userId: `bp-${i % 50}`, event: 'Bulk'}))}
    const r = await node.ingest('/v1/batch', big)
    if (r.status === 429) continue // still behind from the previous round
    assert.equal(r.status, 200, r.text)
    bigs++
    const probe = await node.ingest('/v1/track', {userId: `probe-${probes}`, event: 'Probe', messageId: `probe-${probes}`})
    probes++
    if (probe.status === 429) busy = {probe, id: `probe-${probes - 1}`}
    else assert.equal(probe.status, 200, probe.text)
  }
  assert.ok(busy, `no 429 in ${probes} tries`)
  const {probe, id} = busy
  assert.equal(probe.headers['retry-after'], '1')
  assert.equal(probe.json.code, 'busy')
  assert.equal(probe.headers['access-control-allow-origin'], '*')
  const s = await node.settled()
  assert.equal(await node.profile(id), null, 'the refused request stored nothing')
  assert.equal(s.engine.events, bigs * 20000 + probes - 1)
  // The client's retry (after Retry-After) is taken.
  const again = await node.ingest('/v1/track', {userId: id, event: 'Probe', messageId: id})
  assert.equal(again.status, 200, again.text)
  await node.settled()
  assert.equal((await node.profile(id)).eventCount, 1)
  await node.stop()
})

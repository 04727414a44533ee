// What a merge keeps besides events and traits: journey memberships (a run
// moves to the survivor; when both were in the same journey the survivor's
// run goes on and the other ends, entries added up) and message history
// (both profiles' messages, their delivery records in the export, the
// baton.message entries on the timeline); and all of it after a restart.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import {Node, waitFor} from './support/baton.mjs'

async function receiver() {
  const calls = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      calls.push({url: req.url, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8'))})
      res.writeHead(200, {'Content-Type': 'application/json'})
      res.end('{"ok":true}')
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {calls, url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()) })}
}

const journey = (id, event, hook) => `id: ${id}
trigger:
  event: ${event}
steps:
  - id: notify
    type: webhook
    url: ${hook}/${id}
  - id: hold
    type: wait
    duration: 1h
  - id: done
    type: exit
`

test('a merge keeps journey memberships and message history, also after a restart', async (t) => {
  const node = await Node.create(t)
  const hook = await receiver()
  t.after(hook.close)
  for (const [id, ev] of [['welcome', 'Signed Up'], ['vip', 'Became VIP']]) {
    const r = await node.admin('PUT', `/v1/journeys/${id}`, {body: journey(id, ev, hook.url),
      headers: {'Content-Type': 'application/yaml'}})
    assert.deepEqual([r.status, r.json], [200, {id, version: 1}], r.text)
  }
  const send = async (body) => {
    const r = await node.ingest('/v1/track', body)
    assert.equal(r.status, 200, r.text)
    await node.settled()
  }
  // An anonymous visitor signs up (welcome), a known user becomes VIP (vip), and a second
  // anonymous device also becomes VIP (vip).
  await send({anonymousId: 'mj-anon-1', event: 'Signed Up'})
  await send({userId: 'mj-user', event: 'Became VIP'})
  await send({anonymousId: 'mj-anon-2', event: 'Became VIP'})
  await waitFor(() => hook.calls.length === 3, {what: 'three webhooks delivered'})
  const delivered = async (id, n) => {
    const p = await node.profile(id)
    return p.messages.length === n && p.messages.every((m) => m.state === 'delivered') && p
  }
  const anon1 = await waitFor(() => delivered('mj-anon-1', 1), {what: 'anon-1 message delivered'})
  const anon2 = await waitFor(() => delivered('mj-anon-2', 1), {what: 'anon-2 message delivered'})
  const user = await waitFor(() => delivered('mj-user', 1), {what: 'user message delivered'})
  assert.deepEqual(anon1.journeys.map((j) => [j.id, j.entries, j.active?.step]), [['welcome', 1, 'hold']])

  // Both devices log in: merged into the user.
  await send({userId: 'mj-user', anonymousId: 'mj-anon-1', event: 'Logged In'})
  await send({userId: 'mj-user', anonymousId: 'mj-anon-2', event: 'Logged In'})
  const p = await node.profile('mj-user')
  assert.deepEqual(p.merged, ['a:mj-anon-1', 'a:mj-anon-2'])
  const js = Object.fromEntries(p.journeys.map((j) => [j.id, j]))
  assert.deepEqual(Object.keys(js).sort(), ['vip', 'welcome'])
  // welcome: only anon-1 was in it, its run moved over and goes on.
  assert.equal(js.welcome.entries, 1)
  assert.equal(js.welcome.active.step, 'hold')
  assert.equal(js.welcome.active.entered, anon1.journeys[0].active.entered)
  assert.equal(js.welcome.active.waitingUntil, anon1.journeys[0].active.waitingUntil)
  // vip: both were in it: the user's run goes on, entries added up.
  assert.equal(js.vip.entries, 2)
  assert.equal(js.vip.active.entry, 1)
  assert.equal(js.vip.active.entered, user.journeys[0].active.entered)
  // Messages: all three histories, delivered.
  const msgIds = [anon1, anon2, user].map((q) => q.messages[0].id).sort()
  assert.deepEqual(p.messages.map((m) => m.id).sort(), msgIds)
  assert.ok(p.messages.every((m) => m.state === 'delivered' && m.http_status === 200))
  assert.deepEqual(hook.calls.map((c) => c.body.id).sort(), msgIds)
  const {entries} = await node.timeline('mj-user', {limit: 4})
  assert.deepEqual(entries.filter((e) => e.type === 'baton.message').map((e) => e.messageId).sort(), msgIds)
  const ex = await node.admin('GET', '/v1/profiles/mj-user/export')
  assert.deepEqual(ex.json.messages.map((m) => m.id).sort(), msgIds)
  assert.ok(ex.json.messages.every((m) => m.state === 'delivered'))
  const figures = (await node.admin('GET', '/v1/journeys/vip')).json.versions[0]
  assert.deepEqual([figures.entered, figures.active, figures.completed], [2, 1, 1])

  // After a restart: the same memberships and messages, and no webhook sent again.
  await node.stop()
  await node.start()
  await node.settled()
  const again = await node.profile('mj-user')
  assert.deepEqual(again.journeys, p.journeys)
  assert.deepEqual(again.messages.map((m) => [m.id, m.state]), p.messages.map((m) => [m.id, m.state]))
  assert.deepEqual((await node.timeline('mj-user', {limit: 4})).entries, entries)
  assert.equal(hook.calls.length, 3)
  await node.stop()
})

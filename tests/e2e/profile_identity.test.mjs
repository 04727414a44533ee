// Identity resolution and the profile API end to end: merges (first login,
// a second device, an email external id written differently, alias, a merge
// refused between two known customers), lookups by any identity, the
// timeline paged with a cursor (everything exactly once, newest first), the
// export, notes and cases with their errors and scopes; then all of it again
// after a clean restart and after kill -9.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {Node, waitFor} from './support/baton.mjs'

const READ_KEY = 'ak_e2e3_read_only'
const WRITE_KEY = 'ak_e2e3_profiles_write'

/** Sends one call and waits until the engine has applied it (the 200 means durable, not applied). */
async function send(node, path, body) {
  const r = await node.ingest(path, body)
  assert.equal(r.status, 200, `${path}: ${r.text}`)
  await node.settled()
}

/** Waits for a checkpoint covering everything applied: timelines are then read from the store. */
async function checkpointed(node) {
  const {engine} = await node.settled()
  await waitFor(async () => (await node.stats()).engine.checkpoint_lsn >= engine.applied_lsn,
    {what: `a checkpoint at ${engine.applied_lsn}`})
}

const ids = (entries) => entries.map((e) => e.messageId ?? `${e.type}:${e.id ?? e.case?.id ?? e.other}`)

/** The profile as the API shows it, the whole timeline, and the export: what must survive restarts. */
async function snapshot(node, id) {
  const profile = await node.profile(id)
  const {entries} = await node.timeline(id, {limit: 7})
  const ex = await node.admin('GET', `/v1/profiles/${id}/export`)
  assert.equal(ex.status, 200, ex.text)
  return {profile, entries, exported: ex.json}
}

test('identity resolution, timeline, export, notes and cases; durable across restart and kill -9', async (t) => {
  const node = await Node.create(t, {
    admin: [{name: 'crm', key: READ_KEY, scopes: ['profiles:read']},
            {name: 'callcenter', key: WRITE_KEY, scopes: ['profiles:write']}],
    engine: {checkpoint_interval: '200ms'},
  })

  // 1. First login: the anonymous visitor becomes alice (no merge, the key stays a:...).
  await send(node, '/v1/track', {anonymousId: 'dev-1', event: 'Visited', messageId: 'm-visit'})
  await send(node, '/v1/identify', {userId: 'alice', anonymousId: 'dev-1', messageId: 'm-login',
    traits: {email: 'Alice@Example.com ', plan: 'free'}})
  let alice = await node.profile('alice')
  assert.equal(alice.key, 'a:dev-1')
  assert.equal(alice.userId, 'alice')
  assert.equal(alice.merged, undefined)

  // 2. A second device with traits of its own, then alice logs in on it: merged, her values win.
  await send(node, '/v1/identify', {anonymousId: 'dev-2', messageId: 'm-dev2-traits', traits: {plan: 'trial', device: 'ios'}})
  await send(node, '/v1/screen', {anonymousId: 'dev-2', name: 'Home', messageId: 'm-dev2-screen'})
  await checkpointed(node) // dev-2's entries stored under its own key before the merge
  await send(node, '/v1/t', {userId: 'alice', anonymousId: 'dev-2', event: 'App Opened', messageId: 'm-dev2-login'})
  alice = await node.profile('alice')
  assert.deepEqual(alice.merged, ['a:dev-2'])
  assert.equal(alice.traits.plan, 'free', 'the survivor keeps its own values')
  assert.equal(alice.traits.device, 'ios', 'and takes the traits it lacks')

  // 3. An anonymous form fill with alice's email written differently: merged into her profile.
  await send(node, '/v1/identify', {anonymousId: 'dev-3', messageId: 'm-dev3-form',
    traits: {email: '  ALICE@example.COM', phone: ' +1 555 0100 ', newsletter: true}})
  // 4. alias: a known anonymous profile, and an id never seen before.
  await send(node, '/v1/page', {anonymousId: 'dev-4', name: 'Pricing', messageId: 'm-dev4-page'})
  await checkpointed(node)
  await send(node, '/v1/alias', {userId: 'alice', previousId: 'dev-4', messageId: 'm-alias-4'})
  await send(node, '/v1/a', {userId: 'alice', previousId: 'crm-7781', messageId: 'm-alias-crm'})
  await send(node, '/v1/track', {anonymousId: 'crm-7781', event: 'Ticket Opened', messageId: 'm-crm-ticket'})

  // 5. Two known customers sharing an email: refused and recorded, nothing merged.
  await send(node, '/v1/identify', {userId: 'bob', messageId: 'm-bob', traits: {email: 'bob@example.com'}})
  await send(node, '/v1/identify', {userId: 'carol', messageId: 'm-carol', traits: {email: ' BOB@Example.com'}})
  // ... and one known customer's device seen with another userId: refused too.
  await send(node, '/v1/track', {userId: 'carol', anonymousId: 'dev-1', event: 'Borrowed Phone', messageId: 'm-carol-dev1'})

  // 6. Many events, for the pages: one batch of 60 (applied in order).
  const batch = Array.from({length: 60}, (_, i) => ({type: 'track', userId: 'alice', event: 'Step',
    properties: {i}, messageId: `m-step-${i}`}))
  await send(node, '/v1/batch', {batch})

  alice = await node.profile('alice')
  assert.equal(alice.key, 'a:dev-1')
  assert.deepEqual(alice.merged, ['a:dev-2', 'a:dev-3', 'a:dev-4'])
  assert.deepEqual(new Set(alice.identities.map((i) => `${i.type}=${i.value}`)), new Set([
    'userId=alice', 'anonymousId=dev-1', 'anonymousId=dev-2', 'anonymousId=dev-3', 'anonymousId=dev-4',
    'anonymousId=crm-7781', 'email=alice@example.com', 'phone=+1 555 0100']))
  assert.deepEqual(alice.traits, {email: '  ALICE@example.COM', plan: 'free', device: 'ios',
    phone: ' +1 555 0100 ', newsletter: true}, 'identify traits apply last; merges keep the survivor\'s')
  const aliceIds = ['m-visit', 'm-login', 'm-dev2-traits', 'm-dev2-screen', 'm-dev2-login', 'm-dev3-form',
    'm-dev4-page', 'm-alias-4', 'm-alias-crm', 'm-crm-ticket', ...batch.map((e) => e.messageId)]
  assert.equal(alice.eventCount, aliceIds.length)
  assert.equal(alice.events.length, 20, 'engine.recent_events')
  assert.deepEqual(alice.events.map((e) => e.messageId), batch.slice(-20).reverse().map((e) => e.messageId))

  // Every identity finds her; emails and phones compare trimmed (emails case-blind).
  for (const [id, by] of [['alice'], ['dev-2'], ['dev-3', 'anonymousId'], ['crm-7781'], ['alice', 'userId'],
    ['ALICE@EXAMPLE.COM', 'email'], [' alice@example.com ', 'email'], ['+1 555 0100', 'phone']])
    assert.equal((await node.profile(id, by))?.key, 'a:dev-1', `${id} by ${by}`)
  assert.equal(await node.profile('alice', 'anonymousId'), null)
  assert.equal(await node.profile('nobody@example.com', 'email'), null)
  const bad = await node.admin('GET', '/v1/profiles/nobody')
  assert.deepEqual([bad.status, bad.json.code], [404, 'not_found'])

  // The refused merges: bob keeps the email, carol has the refusals on her timeline.
  assert.equal((await node.profile('bob@example.com', 'email')).userId, 'bob')
  const carol = await node.profile('carol')
  assert.equal(carol.merged, undefined)
  assert.equal(carol.traits.email, ' BOB@Example.com')
  const carolTl = (await node.timeline('carol')).entries
  const refused = carolTl.filter((e) => e.type === 'baton.merge_refused')
  assert.deepEqual(refused.map((e) => e.other).sort(), ['a:dev-1', 'u:bob'])
  assert.equal((await node.profile('bob')).merged, undefined)
  assert.equal((await node.profile('dev-1', 'anonymousId')).userId, 'alice', 'dev-1 stays alice\'s')

  // 7. Notes and cases, with their errors and scopes.
  const post = (path, body, key = WRITE_KEY, method = 'POST') => node.admin(method, path, {body, key})
  let r = await post('/v1/profiles/alice/notes', {text: 'prefers mornings'}, READ_KEY)
  assert.deepEqual([r.status, r.json.code], [403, 'forbidden'])
  r = await post('/v1/profiles/alice/notes', {text: 'prefers mornings'}, null)
  assert.deepEqual([r.status, r.json.code], [401, 'unauthorized'])
  r = await post('/v1/profiles/alice/notes', {text: 'prefers mornings', department: 'field-service', author: 'tech-12'})
  assert.equal(r.status, 201, r.text)
  const noteId = r.json.id
  assert.match(noteId, /^note_[0-9a-f]{16}$/)
  for (const [body, field] of [[{}, 'text'], [{text: 5}, 'text'], [{text: ''}, 'text'],
    [{text: 'x', mood: 'ok'}, 'body'], [{text: 'x'.repeat(10001)}, 'text'], [{text: 'x', department: 'd'.repeat(65)}, 'department'],
    [[], 'body']]) {
    r = await post('/v1/profiles/alice/notes', body)
    assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', field], JSON.stringify(body).slice(0, 80))
  }
  r = await node.admin('POST', '/v1/profiles/alice/notes', {body: '{"text":', key: WRITE_KEY})
  assert.deepEqual([r.status, r.json.code], [400, 'invalid_json'])
  r = await node.admin('POST', '/v1/profiles/alice/notes', {body: '{"text":"call 555\\u0000 after 6"}', key: WRITE_KEY})
  assert.deepEqual([r.status, r.json.code], [400, 'invalid_json'], 'a note cut at \\u0000 would lose its text')
  r = await post('/v1/profiles/nobody/notes', {text: 'x'})
  assert.deepEqual([r.status, r.json.code], [404, 'not_found'])
  r = await node.admin('GET', '/v1/profiles/alice/notes', {key: WRITE_KEY})
  assert.deepEqual([r.status, r.json.code], [405, 'method_not_allowed'])
  // An identity kind too long to exist is refused, not dropped (the note went to the userId's profile).
  r = await post(`/v1/profiles/alice/notes?by=${'e'.repeat(65)}`, {text: 'lost'})
  assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', 'by'])
  // by email, through ?by=
  r = await post('/v1/profiles/ALICE%40example.com/notes?by=email', {text: 'asked about invoices', department: 'billing'})
  assert.equal(r.status, 201, r.text)
  const note2 = r.json.id

  r = await post('/v1/profiles/alice/cases', {type: 'callback_request', text: 'call me 20 minutes before you arrive',
    department: 'call-center', id: 'cb-1'})
  assert.deepEqual([r.status, r.json], [201, {id: 'cb-1'}])
  r = await post('/v1/profiles/alice/cases', {type: 'callback_request', id: 'cb-1'})
  assert.deepEqual([r.status, r.json.code, r.json.field], [409, 'conflict', 'id'])
  r = await post('/v1/profiles/alice/cases', {type: 'x', id: 'a/b'})
  assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', 'id'], 'a case PATCH could never reach')
  r = await post('/v1/profiles/alice/cases', {text: 'no type'})
  assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', 'type'])
  r = await post('/v1/profiles/alice/cases', {type: 'x', status: 'solved'})
  assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', 'status'])
  r = await post('/v1/profiles/alice/cases', {type: 'billing_dispute', department: 'billing'}, READ_KEY)
  assert.equal(r.status, 403)
  r = await post('/v1/profiles/alice/cases', {type: 'billing_dispute', department: 'billing', status: 'pending'})
  assert.equal(r.status, 201, r.text)
  const case2 = r.json.id
  assert.match(case2, /^case_[0-9a-f]{16}$/)
  r = await post('/v1/profiles/alice/cases/cb-1', {status: 'pending'}, WRITE_KEY, 'PATCH')
  assert.deepEqual([r.status, r.json], [200, {id: 'cb-1'}])
  r = await post('/v1/profiles/alice/cases/cb-1', {status: 'closed', text: 'done, arrived 10:20'}, WRITE_KEY, 'PATCH')
  assert.equal(r.status, 200, r.text)
  const closedAt = (await node.profile('alice')).cases.find((c) => c.id === 'cb-1').closed
  assert.ok(closedAt)
  // Editing a closed case keeps it closed, and keeps when it was closed; closing again too.
  r = await post('/v1/profiles/alice/cases/cb-1', {department: 'field-service'}, WRITE_KEY, 'PATCH')
  assert.equal(r.status, 200, r.text)
  r = await post('/v1/profiles/alice/cases/cb-1', {status: 'closed'}, WRITE_KEY, 'PATCH')
  assert.equal(r.status, 200, r.text)
  r = await post('/v1/profiles/alice/cases/nope', {status: 'closed'}, WRITE_KEY, 'PATCH')
  assert.deepEqual([r.status, r.json.code], [404, 'not_found'])
  r = await post('/v1/profiles/alice/cases/cb-1', {}, WRITE_KEY, 'PATCH')
  assert.deepEqual([r.status, r.json.code], [400, 'invalid_field'])
  r = await post('/v1/profiles/alice/cases/cb-1', {type: 'other'}, WRITE_KEY, 'PATCH')
  assert.deepEqual([r.status, r.json.code, r.json.field], [400, 'invalid_field', 'body'])
  r = await post('/v1/profiles/alice/cases/cb-1', {status: 'open'}, READ_KEY, 'PATCH')
  assert.equal(r.status, 403)
  r = await post('/v1/profiles/nobody/cases/cb-1', {status: 'open'}, WRITE_KEY, 'PATCH')
  assert.equal(r.status, 404)

  alice = await node.profile('alice')
  assert.equal(alice.cases.length, 2)
  const cb = alice.cases.find((c) => c.id === 'cb-1')
  assert.deepEqual({...cb, opened: 0, updated: 0, closed: 0}, {id: 'cb-1', type: 'callback_request', status: 'closed',
    text: 'done, arrived 10:20', department: 'field-service', opened: 0, updated: 0, closed: 0})
  assert.equal(cb.closed, closedAt, 'closed when it was first closed')
  assert.ok(cb.opened <= cb.closed && cb.closed <= cb.updated)
  const dispute = alice.cases.find((c) => c.id === case2)
  assert.equal(dispute.status, 'pending')
  assert.equal(dispute.closed, undefined)
  // A read-only key reads everything.
  r = await node.admin('GET', '/v1/profiles/alice', {key: READ_KEY})
  assert.equal(r.status, 200)
  r = await node.admin('GET', '/v1/profiles/alice/events?limit=1', {key: READ_KEY})
  assert.equal(r.status, 200)
  for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=abc', 'cursor='])
    assert.equal((await node.admin('GET', `/v1/profiles/alice/events?${q}`)).status, 400, q)

  // 8. The timeline: everything exactly once, newest first, the same whatever the page size.
  const paged = await node.timeline('alice', {limit: 7})
  const whole = await node.timeline('alice', {limit: 1000})
  assert.equal(whole.pages, 1)
  assert.ok(paged.pages >= 12, `${paged.pages} pages`)
  assert.deepEqual(paged.entries, whole.entries)
  const tl = paged.entries
  const calls = tl.filter((e) => !e.type.startsWith('baton.'))
  assert.deepEqual(calls.map((e) => e.messageId), [...aliceIds].reverse(), 'every event once, newest first')
  const merges = tl.filter((e) => e.type === 'baton.merge')
  assert.deepEqual(merges.map((e) => [e.other, e.reason]).reverse(), [
    ['a:dev-2', 'anonymousId seen with userId'], ['a:dev-3', 'email'], ['a:dev-4', 'alias']])
  assert.ok(merges.every((e) => e.profile === 'a:dev-1'))
  const notes = tl.filter((e) => e.type === 'baton.note')
  assert.deepEqual(notes.map((n) => [n.id, n.text, n.department]),
    [[note2, 'asked about invoices', 'billing'], [noteId, 'prefers mornings', 'field-service']])
  assert.equal(notes[1].author, 'tech-12')
  const caseEntries = tl.filter((e) => e.type === 'baton.case')
  assert.deepEqual(caseEntries.map((e) => [e.case.id, e.action, e.case.status]).reverse(), [
    ['cb-1', 'opened', 'open'], [case2, 'opened', 'pending'], ['cb-1', 'updated', 'pending'], ['cb-1', 'closed', 'closed'],
    ['cb-1', 'updated', 'closed'], ['cb-1', 'updated', 'closed']])
  assert.equal(tl.length, aliceIds.length + 3 + 2 + 6)
  // The merge sits between the events around it (dev-2 merged when m-dev2-login arrived).
  const pos = (id) => tl.findIndex((e) => e.messageId === id)
  const mergeDev2 = tl.indexOf(merges.find((e) => e.other === 'a:dev-2'))
  assert.ok(pos('m-dev3-form') < mergeDev2 && mergeDev2 < pos('m-dev2-screen'), 'merge in order')

  // 9. The export: the profile, the same timeline, messages (none: no journeys here).
  const ex = await node.admin('GET', '/v1/profiles/alice/export', {key: READ_KEY})
  assert.equal(ex.status, 200)
  assert.ok(Math.abs(Date.parse(ex.json.exportedAt) - Date.now()) < 60000)
  assert.deepEqual(ex.json.profile, alice)
  assert.deepEqual(ex.json.timeline, tl)
  assert.deepEqual(ex.json.messages, [])
  const exBy = await node.admin('GET', '/v1/profiles/%2B1%20555%200100/export?by=phone')
  assert.deepEqual(exBy.json.timeline, tl)
  assert.equal((await node.admin('GET', '/v1/profiles/nobody/export')).status, 404)

  // 10. A clean restart: everything the same.
  const before = {alice: await snapshot(node, 'alice'), carol: await snapshot(node, 'carol'),
    bob: await snapshot(node, 'bob')}
  const stats = await node.settled()
  assert.equal(stats.engine.merges, 3)
  assert.equal(stats.engine.profiles, 3, 'alice, bob, carol')
  await node.stop()
  await node.start()
  const strip = (s) => ({...s, exported: {...s.exported, exportedAt: 0}})
  for (const who of ['alice', 'carol', 'bob'])
    assert.deepEqual(strip(await snapshot(node, who)), strip(before[who]), `${who} after restart`)
  let s = await node.settled()
  assert.equal(s.engine.events, stats.engine.events)
  assert.equal(s.engine.profiles, stats.engine.profiles)
  // (engine.merges and engine.duplicates count since the process started, replay included: not
  // compared across restarts.)

  // 11. kill -9 right after the acknowledgements: all of it is there after the restart.
  await send(node, '/v1/identify', {userId: 'alice', messageId: 'm-after-restart', traits: {plan: 'pro'}})
  await send(node, '/v1/identify', {anonymousId: 'dev-9', messageId: 'm-dev9', traits: {email: 'ALICE@example.com'}})
  r = await post('/v1/profiles/alice/notes', {text: 'acknowledged just before the crash'})
  assert.equal(r.status, 201)
  const lastNote = r.json.id
  r = await post('/v1/profiles/dev-9/cases', {type: 'x'})
  assert.equal(r.status, 201, 'dev-9 is alice now')
  r = await post('/v1/profiles/alice/cases/' + case2, {status: 'closed'}, WRITE_KEY, 'PATCH')
  assert.equal(r.status, 200)
  const crashStats = await node.stats()
  const crashed = await snapshot(node, 'alice')
  await node.kill()
  await node.start()
  s = await node.settled()
  assert.equal(s.log.durable_lsn, crashStats.log.durable_lsn)
  assert.equal(s.engine.events, crashStats.engine.events)
  assert.deepEqual(strip(await snapshot(node, 'alice')), strip(crashed))
  alice = await node.profile('alice')
  assert.equal(alice.traits.plan, 'pro')
  assert.deepEqual(alice.merged, ['a:dev-2', 'a:dev-3', 'a:dev-4', 'a:dev-9'])
  assert.equal(alice.cases.find((c) => c.id === case2).status, 'closed')
  assert.equal(alice.cases.length, 3)
  const after = (await node.timeline('alice', {limit: 3})).entries
  assert.equal(after[0].type, 'baton.case')
  assert.equal(after.find((e) => e.type === 'baton.note').id, lastNote)
  // Six new entries (two events, the merge of dev-9, a note, a case opened and one closed) above the old ones.
  assert.deepEqual(ids(after).slice(6), ids(tl), 'the older timeline unchanged below the new entries')
  assert.deepEqual(after.slice(0, 6).map((e) => e.type).sort(),
    ['baton.case', 'baton.case', 'baton.merge', 'baton.note', 'identify', 'identify'])
  await node.stop()
})

test('configured external ids: lookups by a custom trait, merges on it, only the configured ones', async (t) => {
  const node = await Node.create(t, {identity: {external_ids: ['email', 'crm_id']}})
  const send = async (path, body) => {
    const r = await node.ingest(path, body)
    assert.equal(r.status, 200, r.text)
  }
  await send('/v1/identify', {userId: 'x-1', traits: {crm_id: ' C-77 ', phone: '+1 555 0199'}})
  await send('/v1/identify', {anonymousId: 'x-anon', traits: {crm_id: 'C-77', seen: 'kiosk'}})
  await send('/v1/identify', {userId: 'x-2', traits: {crm_id: 1234}})
  await node.settled()
  const p = await node.profile('C-77', 'crm_id')
  assert.equal(p?.userId, 'x-1')
  assert.deepEqual(p.merged, ['a:x-anon'], 'the same crm_id merged the anonymous profile')
  assert.equal(p.traits.seen, 'kiosk')
  assert.equal(await node.profile('c-77', 'crm_id'), null, 'only emails compare case-blind')
  assert.equal(await node.profile('+1 555 0199', 'phone'), null, 'phone is not configured here')
  assert.equal((await node.profile('1234', 'crm_id'))?.userId, 'x-2', 'an integer trait is an id too')
  assert.deepEqual(p.identities.map((i) => i.type).sort(), ['anonymousId', 'crm_id', 'userId'])
  await node.stop()
})

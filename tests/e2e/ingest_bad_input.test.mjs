// A table of bad requests to the tracking API, each answered with the right
// status, code and field and a message that names the problem, and none of
// them changing anything: the event log's durable LSN and the engine's event
// count stay where they were, and no profile appears for any id they carry.
// Small limits in the config keep the oversize cases fast.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {gzipSync, deflateSync} from 'node:zlib'
import {Node, basic, request} from './support/baton.mjs'

const LIMITS = {max_body_bytes: 65536, max_event_bytes: 1024, max_batch_events: 5}

const ok = (id, more = {}) => ({userId: id, event: 'Fine', ...more})
const json = (v) => JSON.stringify(v)
const nest = (depth) => '['.repeat(depth) + ']'.repeat(depth)
const utf8 = (s) => Buffer.from(s, 'utf8')
const bytes = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? utf8(p) : Buffer.from(p))))

// [name, path, body (string | Buffer | object), expected {status, code, field}, options]
// The id in each body ("bad-N") must never become a profile.
const cases = [
  ['empty body', '/v1/track', '', {status: 400, code: 'invalid_json', field: 'body'}],
  ['truncated JSON', '/v1/track', '{"userId":"bad-1","event":"Sig', {status: 400, code: 'invalid_json', field: 'body'}],
  ['trailing data', '/v1/track', json(ok('bad-2')) + ' {}', {status: 400, code: 'invalid_json', field: 'body'}],
  ['an array, not an object', '/v1/track', json([ok('bad-3')]), {status: 400, code: 'invalid_json', field: 'body'}],
  ['null body', '/v1/identify', 'null', {status: 400, code: 'invalid_json', field: 'body'}],
  ['invalid UTF-8 (lone continuation byte)', '/v1/track', bytes('{"userId":"bad-4', [0x80], '","event":"E"}'), {status: 400, code: 'invalid_utf8', field: 'body'}],
  ['invalid UTF-8 (overlong slash)', '/v1/track', bytes('{"userId":"bad-5', [0xc0, 0xaf], '","event":"E"}'), {status: 400, code: 'invalid_utf8', field: 'body'}],
  ['invalid UTF-8 (encoded surrogate)', '/v1/track', bytes('{"userId":"bad-6', [0xed, 0xa0, 0x80], '","event":"E"}'), {status: 400, code: 'invalid_utf8', field: 'body'}],
  ['lone surrogate escape', '/v1/track', '{"userId":"bad-7\\ud800","event":"E"}', {status: 400, code: 'invalid_json', field: 'body'}],
  ['\\u0000 in userId (would truncate to another id)', '/v1/track', '{"userId":"bad-8\\u0000x","event":"E"}', {status: 400, code: 'invalid_json', field: 'body', msg: /u0000/}],
  ['raw control character in a string', '/v1/track', bytes('{"userId":"bad-9', [0x01], '","event":"E"}'), {status: 400, code: 'invalid_json', field: 'body', msg: /control character/}],
  ['10,000-deep nesting', '/v1/track', `{"userId":"bad-10","event":"E","properties":{"d":${nest(10000)}}}`, {status: 400, code: 'invalid_json', field: 'body'}],
  ['1e400 in properties', '/v1/track', '{"userId":"bad-11","event":"E","properties":{"price":1e400}}', {status: 400, code: 'invalid_field', field: 'properties.price', msg: /out of range/}],
  ['-1e400 deep in batch traits', '/v1/batch', '{"batch":[{"type":"identify","userId":"bad-12","traits":{"a":{"b":[0,-1e400]}}}]}', {status: 400, code: 'invalid_field', field: 'batch[0].traits.a.b[1]'}],
  ['1e400 as userId', '/v1/track', '{"userId":1e400,"event":"E","anonymousId":"bad-13"}', {status: 400, code: 'invalid_field', field: 'userId'}],
  ['userId an object', '/v1/track', {userId: {id: 'bad-14'}, event: 'E'}, {status: 400, code: 'invalid_field', field: 'userId'}],
  ['userId an array', '/v1/track', {userId: ['bad-15'], event: 'E'}, {status: 400, code: 'invalid_field', field: 'userId'}],
  ['userId a boolean', '/v1/track', {userId: true, anonymousId: 'bad-16', event: 'E'}, {status: 400, code: 'invalid_field', field: 'userId'}],
  ['userId a fraction', '/v1/track', {userId: 1.5, anonymousId: 'bad-17', event: 'E'}, {status: 400, code: 'invalid_field', field: 'userId'}],
  ['userId over 1,024 bytes', '/v1/track', {userId: 'bad-18' + 'x'.repeat(1020), event: 'E'}, {status: 400, code: 'invalid_field', field: 'userId'}],
  ['anonymousId an object', '/v1/page', {anonymousId: {a: 'bad-19'}, userId: 'bad-19'}, {status: 400, code: 'invalid_field', field: 'anonymousId'}],
  ['anonymousId a boolean', '/v1/p', {anonymousId: false}, {status: 400, code: 'invalid_field', field: 'anonymousId'}],
  ['no identity at all', '/v1/track', {event: 'E', properties: {who: 'bad-20'}}, {status: 400, code: 'missing_identity', field: 'userId'}],
  ['empty userId, null anonymousId', '/v1/identify', {userId: '', anonymousId: null, traits: {name: 'bad-21'}}, {status: 400, code: 'missing_identity', field: 'userId'}],
  ['track without event', '/v1/track', {userId: 'bad-22'}, {status: 400, code: 'invalid_field', field: 'event'}],
  ['event a number', '/v1/t', {userId: 'bad-23', event: 7}, {status: 400, code: 'invalid_field', field: 'event'}],
  ['event an empty string', '/v1/track', {userId: 'bad-24', event: ''}, {status: 400, code: 'invalid_field', field: 'event'}],
  ['event over 256 characters', '/v1/track', {userId: 'bad-25', event: 'E'.repeat(257)}, {status: 400, code: 'invalid_field', field: 'event'}],
  ['page name a number', '/v1/page', {userId: 'bad-26', name: 5}, {status: 400, code: 'invalid_field', field: 'name'}],
  ['properties an array', '/v1/track', {userId: 'bad-27', event: 'E', properties: [1]}, {status: 400, code: 'invalid_field', field: 'properties'}],
  ['properties a string', '/v1/track', {userId: 'bad-28', event: 'E', properties: 'x'}, {status: 400, code: 'invalid_field', field: 'properties'}],
  ['traits an array', '/v1/identify', {userId: 'bad-29', traits: ['a']}, {status: 400, code: 'invalid_field', field: 'traits'}],
  ['traits a number', '/v1/i', {userId: 'bad-30', traits: 3}, {status: 400, code: 'invalid_field', field: 'traits'}],
  ['context a string', '/v1/track', {userId: 'bad-31', event: 'E', context: 'web'}, {status: 400, code: 'invalid_field', field: 'context'}],
  ['integrations a number', '/v1/track', {userId: 'bad-32', event: 'E', integrations: 1}, {status: 400, code: 'invalid_field', field: 'integrations'}],
  ['timestamp not a date', '/v1/track', {userId: 'bad-33', event: 'E', timestamp: 'yesterday'}, {status: 400, code: 'invalid_field', field: 'timestamp'}],
  ['timestamp a number', '/v1/track', {userId: 'bad-34', event: 'E', timestamp: 1700000000000}, {status: 400, code: 'invalid_field', field: 'timestamp'}],
  ['timestamp a day that does not exist', '/v1/track', {userId: 'bad-35', event: 'E', timestamp: '2026-02-30T10:00:00Z'}, {status: 400, code: 'invalid_field', field: 'timestamp'}],
  ['originalTimestamp an object', '/v1/track', {userId: 'bad-36', event: 'E', originalTimestamp: {}}, {status: 400, code: 'invalid_field', field: 'originalTimestamp'}],
  ['sentAt not ISO 8601', '/v1/track', {userId: 'bad-37', event: 'E', sentAt: '23/11/2026'}, {status: 400, code: 'invalid_field', field: 'sentAt'}],
  ['messageId a number', '/v1/track', {userId: 'bad-38', event: 'E', messageId: 5}, {status: 400, code: 'invalid_field', field: 'messageId'}],
  ['messageId empty', '/v1/track', {userId: 'bad-39', event: 'E', messageId: ''}, {status: 400, code: 'invalid_field', field: 'messageId'}],
  ['messageId over 256 characters', '/v1/track', {userId: 'bad-40', event: 'E', messageId: 'm'.repeat(257)}, {status: 400, code: 'invalid_field', field: 'messageId'}],
  ['group without groupId', '/v1/group', {userId: 'bad-41'}, {status: 400, code: 'invalid_field', field: 'groupId'}],
  ['alias without previousId', '/v1/alias', {userId: 'bad-42'}, {status: 400, code: 'invalid_field', field: 'previousId'}],
  ['batch missing', '/v1/batch', {userId: 'bad-43', event: 'E'}, {status: 400, code: 'invalid_field', field: 'batch'}],
  ['batch an object', '/v1/b', {batch: {0: ok('bad-44')}}, {status: 400, code: 'invalid_field', field: 'batch'}],
  ['batch empty', '/v1/batch', {batch: [], userId: 'bad-45'}, {status: 400, code: 'invalid_field', field: 'batch'}],
  ['batch item not an object', '/v1/batch', {batch: [{type: 'track', ...ok('bad-46')}, 'bad-46']}, {status: 400, code: 'invalid_event', field: 'batch[1]'}],
  ['batch item without type', '/v1/batch', {batch: [ok('bad-47')]}, {status: 400, code: 'invalid_field', field: 'batch[0].type'}],
  ['batch item of an unknown type', '/v1/import', {batch: [{type: 'fly', ...ok('bad-48')}]}, {status: 400, code: 'invalid_field', field: 'batch[0].type'}],
  ['batch item userId wrong type (after a good one: all or nothing)', '/v1/batch', {batch: [{type: 'track', ...ok('bad-49')}, {type: 'track', userId: [1], event: 'E'}]}, {status: 400, code: 'invalid_field', field: 'batch[1].userId'}],
  ['batch item without identity (after a good one)', '/v1/batch', {batch: [{type: 'track', ...ok('bad-50')}, {type: 'track', event: 'E'}]}, {status: 400, code: 'missing_identity', field: 'batch[1].userId'}],
  ['batch context not an object', '/v1/batch', {batch: [{type: 'track', ...ok('bad-51')}], context: []}, {status: 400, code: 'invalid_field', field: 'context'}],
  ['batch sentAt not a date', '/v1/batch', {batch: [{type: 'track', ...ok('bad-52')}], sentAt: 'now'}, {status: 400, code: 'invalid_field', field: 'sentAt'}],
  ['batch over max_batch_events (6 > 5)', '/v1/batch', {batch: Array.from({length: 6}, (_, i) => ({type: 'track', ...ok(`bad-53-${i}`)}))}, {status: 400, code: 'batch_too_large', field: 'batch'}],
  ['event over max_event_bytes', '/v1/track', ok('bad-54', {properties: {blob: 'x'.repeat(1100)}}), {status: 400, code: 'event_too_large', field: 'body'}],
  ['batch item over max_event_bytes', '/v1/batch', {batch: [{type: 'track', ...ok('bad-55')}, {type: 'track', ...ok('bad-55', {properties: {blob: 'x'.repeat(1100)}})}]}, {status: 400, code: 'event_too_large', field: 'batch[1]'}],
  ['body over max_body_bytes', '/v1/track', ok('bad-56', {properties: {blob: 'x'.repeat(70000)}}), {status: 413, code: 'body_too_large', field: 'body'}],
  ['body over max_body_bytes, chunked (no Content-Length)', '/v1/batch', {batch: [{type: 'track', ...ok('bad-57', {properties: {blob: 'x'.repeat(70000)}})}]}, {status: 413, code: 'body_too_large', field: 'body'}, {chunked: true}],
  ['gzip bomb (10 MB of zeros in ~10 KB)', '/v1/track', gzipSync(Buffer.concat([utf8('{"userId":"bad-58","event":"E","properties":{"z":"'), Buffer.alloc(10 << 20, 0x30), utf8('"}}')])), {status: 413, code: 'body_too_large', field: 'body'}, {headers: {'Content-Encoding': 'gzip'}}],
  ['corrupt gzip', '/v1/track', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]), {status: 400, code: 'invalid_encoding', field: 'body'}, {headers: {'Content-Encoding': 'gzip'}}],
  ['truncated gzip', '/v1/track', gzipSync(json(ok('bad-59'))).subarray(0, 20), {status: 400, code: 'invalid_encoding', field: 'body'}, {headers: {'Content-Encoding': 'gzip'}}],
  ['plain JSON labelled deflate', '/v1/track', json(ok('bad-60')), {status: 400, code: 'invalid_encoding', field: 'body'}, {headers: {'Content-Encoding': 'deflate'}}],
  ['unsupported Content-Encoding', '/v1/track', json(ok('bad-61')), {status: 415, code: 'unsupported_encoding', field: 'Content-Encoding'}, {headers: {'Content-Encoding': 'br'}}],
  ['gzip of invalid JSON', '/v1/track', gzipSync('{"userId":"bad-62",'), {status: 400, code: 'invalid_json', field: 'body'}, {headers: {'Content-Encoding': 'gzip'}}],
  ['deflate of an event without identity', '/v1/track', deflateSync(json({event: 'E', properties: {who: 'bad-63'}})), {status: 400, code: 'missing_identity', field: 'userId'}, {headers: {'Content-Encoding': 'deflate'}}],
  ['wrong write key (Basic)', '/v1/track', ok('bad-64'), {status: 401, code: 'invalid_write_key', field: 'Authorization'}, {key: 'wk_not_configured'}],
  ['wrong write key in the body', '/v1/track', {...ok('bad-65'), writeKey: 'wk_not_configured'}, {status: 401, code: 'invalid_write_key', field: 'writeKey'}, {key: null}],
  ['no write key at all', '/v1/track', ok('bad-66'), {status: 401, code: 'invalid_write_key', field: 'writeKey'}, {key: null}],
  ['Authorization not Basic', '/v1/track', ok('bad-67'), {status: 401, code: 'invalid_write_key', field: 'Authorization'}, {key: null, headers: {Authorization: 'Bearer wk_e2e3_web_key'}}],
  ['Basic with broken base64', '/v1/track', ok('bad-68'), {status: 401, code: 'invalid_write_key', field: 'Authorization'}, {key: null, headers: {Authorization: 'Basic !!!!'}}],
  ['the admin key as write key', '/v1/track', ok('bad-69'), {status: 401, code: 'invalid_write_key', field: 'Authorization'}, {key: 'ak_e2e3_admin_key'}],
  ['GET instead of POST', '/v1/track', undefined, {status: 405, code: 'method_not_allowed', msg: /use POST/}, {method: 'GET'}],
  ['PUT instead of POST', '/v1/batch', {batch: [{type: 'track', ...ok('bad-70')}]}, {status: 405, code: 'method_not_allowed'}, {method: 'PUT'}],
]

test(`${cases.length} bad inputs: right status, code, field and message; nothing stored`, async (t) => {
  const node = await Node.create(t, {limits: LIMITS})
  const before = await node.settled()
  assert.equal(before.log.durable_lsn, 0)
  const failures = []
  for (const [name, path, body, want, opt = {}] of cases) {
    const headers = {'Content-Type': 'text/plain', ...(opt.headers ?? {})}
    const key = 'key' in opt ? opt.key : node.writeKey
    if (key !== null) headers.Authorization = basic(key)
    const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? body : utf8(typeof body === 'string' ? body : json(body))
    if (opt.chunked) headers['Transfer-Encoding'] = 'chunked'
    const r = await request(node.url + path, {method: opt.method ?? 'POST', headers, body: raw})
    const got = {status: r.status, code: r.json?.code, field: r.json?.field}
    const expect = {status: want.status, code: want.code, field: want.field}
    const problems = []
    try { assert.deepEqual(got, expect) } catch { problems.push(`got ${JSON.stringify(got)} ${r.text.slice(0, 200)}`) }
    const msg = r.json?.error
    if (typeof msg !== 'string' || msg.length < 8) problems.push(`no clear message: ${r.text.slice(0, 200)}`)
    else if (want.msg && !want.msg.test(msg)) problems.push(`message ${JSON.stringify(msg)} does not match ${want.msg}`)
    else if (want.field && !['body', 'Authorization', 'writeKey', 'Content-Encoding'].includes(want.field) &&
             !msg.includes(want.field)) problems.push(`message ${JSON.stringify(msg)} does not name ${want.field}`)
    if (r.headers['access-control-allow-origin'] !== '*') problems.push('no CORS header on the error')
    const s = await node.stats()
    if (s.log.durable_lsn !== before.log.durable_lsn || s.engine.events !== before.engine.events)
      problems.push(`stored something: durable_lsn ${s.log.durable_lsn}, events ${s.engine.events}`)
    if (problems.length) failures.push(`${name}: ${problems.join('; ')}`)
  }
  assert.deepEqual(failures, [])

  // No profile for any id the bad requests carried, and no profile at all.
  for (let i = 1; i <= 70; i++) {
    assert.equal(await node.profile(`bad-${i}`), null, `bad-${i}`)
  }
  const after = await node.stats()
  assert.equal(after.engine.profiles, 0)
  assert.equal(after.engine.events, 0)
  assert.equal(after.log.durable_lsn, 0)

  // The server is unharmed: a good batch right after is stored whole.
  const good = await node.ingest('/v1/batch', {batch: [{type: 'track', ...ok('good-1')}, {type: 'identify', userId: 'good-1', traits: {n: 1e300}}]})
  assert.equal(good.status, 200, good.text)
  const s = await node.settled()
  assert.equal(s.log.durable_lsn, 2)
  assert.equal(s.engine.events, 2)
  assert.equal((await node.profile('good-1')).traits.n, 1e300)
  await node.stop()
})

test('CORS preflight and the short paths answer a browser', async (t) => {
  const node = await Node.create(t, {limits: LIMITS})
  const pre = await request(node.url + '/v1/t', {method: 'OPTIONS', headers: {
    Origin: 'http://elsewhere.example', 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'content-type'}})
  assert.equal(pre.status, 204)
  assert.equal(pre.headers['access-control-allow-origin'], '*')
  assert.match(pre.headers['access-control-allow-methods'], /POST/)
  assert.match(pre.headers['access-control-allow-headers'], /Content-Type/i)
  const s = await node.stats()
  assert.equal(s.log.durable_lsn, 0)
  await node.stop()
})

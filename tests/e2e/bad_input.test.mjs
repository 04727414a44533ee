// Bad input gets a clear error and changes nothing: every case checks the
// status, the error code, the field, that the message names the problem, and
// that neither the event log nor the engine nor any profile changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';

import { assertCleanExit, basic, freshServer, request } from './lib/baton.mjs';

const LIMITS = { max_body_bytes: 4096, max_event_bytes: 1024, max_batch_events: 5 };
const READER_KEY = 'ak_reader_only_1234';

const ev = (userId, more = {}) => ({ userId, event: 'Clicked', properties: { a: 1 }, ...more });

// [name, path, body (object, string or Buffer), expected status, code, field, message pattern, ids that must not exist, options]
const cases = [
  ['invalid JSON', '/v1/track', '{"userId": "bad-json", "event": }', 400, 'invalid_json', 'body', /not valid JSON/, ['bad-json']],
  ['truncated JSON', '/v1/track', '{"userId":"bad-trunc","event":"E","properties":{"a":1', 400, 'invalid_json', 'body', /not valid JSON/, ['bad-trunc']],
  ['trailing garbage', '/v1/track', '{"userId":"bad-trail","event":"E"} x', 400, 'invalid_json', 'body', /after the JSON value/, ['bad-trail']],
  ['JSON that is not an object', '/v1/track', '["bad-array"]', 400, 'invalid_json', 'body', /must be a JSON object/, ['bad-array']],
  ['empty body', '/v1/track', '', 400, 'invalid_json', 'body', /empty/, []],
  ['invalid UTF-8', '/v1/track', Buffer.concat([Buffer.from('{"userId":"bad-utf8","event":"E'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]), 400, 'invalid_utf8', 'body', /UTF-8/, ['bad-utf8']],
  ['missing userId and anonymousId', '/v1/track', { event: 'E', properties: {} }, 400, 'missing_identity', 'userId', /userId or anonymousId is required/, []],
  ['empty userId', '/v1/identify', { userId: '', traits: { a: 1 } }, 400, 'missing_identity', 'userId', /userId or anonymousId/, []],
  ['userId an object', '/v1/track', { userId: { id: 'bad-obj' }, event: 'E' }, 400, 'invalid_field', 'userId', /userId must be a string or an integer/, ['bad-obj']],
  ['userId a boolean', '/v1/track', { userId: true, anonymousId: 'bad-bool', event: 'E' }, 400, 'invalid_field', 'userId', /userId must be a string or an integer/, ['bad-bool', 'true']],
  ['userId a fraction', '/v1/track', { userId: 1.5, event: 'E' }, 400, 'invalid_field', 'userId', /userId must be a string or an integer/, ['1.5', '2']],
  ['anonymousId an array', '/v1/page', { anonymousId: ['bad-anon'] }, 400, 'invalid_field', 'anonymousId', /anonymousId must be a string or an integer/, ['bad-anon']],
  ['event missing', '/v1/track', { userId: 'bad-noevent' }, 400, 'invalid_field', 'event', /event is required for track/, ['bad-noevent']],
  ['event a number', '/v1/track', { userId: 'bad-evnum', event: 42 }, 400, 'invalid_field', 'event', /event is required for track: a non-empty string/, ['bad-evnum']],
  ['properties a string', '/v1/track', ev('bad-props', { properties: 'x' }), 400, 'invalid_field', 'properties', /properties must be an object/, ['bad-props']],
  ['properties an array', '/v1/track', ev('bad-props2', { properties: [1, 2] }), 400, 'invalid_field', 'properties', /properties must be an object/, ['bad-props2']],
  ['traits an array', '/v1/identify', { userId: 'bad-traits', traits: ['vip'] }, 400, 'invalid_field', 'traits', /traits must be an object/, ['bad-traits']],
  ['context a number', '/v1/track', ev('bad-ctx', { context: 5 }), 400, 'invalid_field', 'context', /context must be an object/, ['bad-ctx']],
  ['timestamp a number', '/v1/track', ev('bad-ts', { timestamp: 1700000000000 }), 400, 'invalid_field', 'timestamp', /timestamp must be an ISO 8601/, ['bad-ts']],
  ['timestamp not a date', '/v1/track', ev('bad-ts2', { timestamp: 'yesterday' }), 400, 'invalid_field', 'timestamp', /timestamp must be an ISO 8601/, ['bad-ts2']],
  ['messageId a number', '/v1/track', ev('bad-mid', { messageId: 7 }), 400, 'invalid_field', 'messageId', /messageId must be a non-empty string/, ['bad-mid']],
  ['group without groupId', '/v1/group', { userId: 'bad-group' }, 400, 'invalid_field', 'groupId', /groupId is required/, ['bad-group']],
  ['alias without previousId', '/v1/alias', { userId: 'bad-alias' }, 400, 'invalid_field', 'previousId', /previousId is required/, ['bad-alias']],
  ['empty batch', '/v1/batch', { batch: [] }, 400, 'invalid_field', 'batch', /batch is empty/, []],
  ['batch not an array', '/v1/batch', { batch: { type: 'track', userId: 'bad-bobj', event: 'E' } }, 400, 'invalid_field', 'batch', /an array of events/, ['bad-bobj']],
  ['batch missing', '/v1/batch', { userId: 'bad-nobatch', event: 'E' }, 400, 'invalid_field', 'batch', /batch is required/, ['bad-nobatch']],
  ['batch item with an unknown type (after a good one)', '/v1/batch',
    { batch: [{ type: 'track', userId: 'bad-b-good', event: 'E' }, { type: 'purchase', userId: 'bad-b-type', event: 'E' }] },
    400, 'invalid_field', 'batch[1].type', /batch\[1\]\.type 'purchase' is not one of/, ['bad-b-good', 'bad-b-type']],
  ['batch item without a type', '/v1/batch', { batch: [{ userId: 'bad-b-notype', event: 'E' }] }, 400, 'invalid_field', 'batch[0].type', /batch\[0\]\.type is required/, ['bad-b-notype']],
  ['batch item not an object', '/v1/batch', { batch: [{ type: 'identify', userId: 'bad-b-ok' }, 'x'] }, 400, 'invalid_event', 'batch[1]', /batch\[1\] must be an object/, ['bad-b-ok']],
  ['batch item with a bad field', '/v1/batch', { batch: [{ type: 'track', userId: 'bad-b-ctx', event: 'E', properties: 3 }] }, 400, 'invalid_field', 'batch[0].properties', /batch\[0\]\.properties must be an object/, ['bad-b-ctx']],
  ['too many batch events', '/v1/batch', { batch: Array.from({ length: 6 }, (_, i) => ({ type: 'track', userId: `bad-many-${i}`, event: 'E' })) },
    400, 'batch_too_large', 'batch', /batch has 6 events; the limit is 5/, ['bad-many-0', 'bad-many-5']],
  ['oversize event', '/v1/track', ev('bad-big', { properties: { blob: 'x'.repeat(1500) } }), 400, 'event_too_large', 'body', /the limit is 1024 per event/, ['bad-big']],
  ['oversize event in a batch', '/v1/batch', { batch: [{ type: 'track', userId: 'bad-bigb-0', event: 'E' }, { type: 'track', userId: 'bad-bigb-1', event: 'E', properties: { blob: 'y'.repeat(1500) } }] },
    400, 'event_too_large', 'batch[1]', /batch\[1\] is \d+ bytes; the limit is 1024 per event/, ['bad-bigb-0', 'bad-bigb-1']],
  ['oversize body (Content-Length)', '/v1/batch', { batch: [{ type: 'track', userId: 'bad-body', event: 'E', properties: { blob: 'z'.repeat(8000) } }] },
    413, 'body_too_large', 'body', /over the limit of 4096 bytes/, ['bad-body']],
  ['oversize body (chunked, no Content-Length)', '/v1/batch', { batch: [{ type: 'track', userId: 'bad-body-chunked', event: 'E', properties: { blob: 'z'.repeat(8000) } }] },
    413, 'body_too_large', 'body', /over the limit of 4096 bytes/, ['bad-body-chunked'], { chunked: true }],
  ['unsupported Content-Encoding (br)', '/v1/track', ev('bad-br'), 415, 'unsupported_encoding', 'Content-Encoding', /Content-Encoding must be gzip, deflate or identity/, ['bad-br'], { headers: { 'Content-Encoding': 'br' } }],
  ['plain body labelled gzip', '/v1/track', ev('bad-gzip'), 400, 'invalid_encoding', 'body', /not a valid gzip or deflate stream/, ['bad-gzip'], { headers: { 'Content-Encoding': 'gzip' } }],
  ['truncated gzip body', '/v1/track', gzipSync(JSON.stringify(ev('bad-gzip-trunc'))).subarray(0, 30), 400, 'invalid_encoding', 'body', /not a valid gzip or deflate stream/, ['bad-gzip-trunc'], { headers: { 'Content-Encoding': 'gzip' } }],
  ['gzip bomb (inflates past max_body_bytes)', '/v1/track', gzipSync(JSON.stringify(ev('bad-bomb', { properties: { z: '0'.repeat(1 << 20) } }))), 413, 'body_too_large', 'body', /decompressed body is over the limit of 4096 bytes/, ['bad-bomb'], { headers: { 'Content-Encoding': 'gzip' } }],
  ['wrong write key', '/v1/track', ev('bad-wk'), 401, 'invalid_write_key', 'Authorization', /write key is not valid/, ['bad-wk'], { writeKey: 'wk_not_a_real_key' }],
  ['malformed Basic auth', '/v1/track', ev('bad-basic'), 401, 'invalid_write_key', 'Authorization', /write key is not valid/, ['bad-basic'], { auth: 'Basic !!!' }],
  ['no write key', '/v1/track', ev('bad-nokey'), 401, 'invalid_write_key', 'writeKey', /a valid write key is required/, ['bad-nokey'], { writeKey: null }],
  ['wrong writeKey in the body', '/v1/track', ev('bad-bodykey', { writeKey: 'wk_wrong_wrong' }), 401, 'invalid_write_key', 'writeKey', /a valid write key is required/, ['bad-bodykey'], { writeKey: null }],
  ['GET on an ingest path', '/v1/track', undefined, 405, 'method_not_allowed', undefined, /use POST/, [], { method: 'GET' }],
];

test('bad input: every bad ingest request is refused clearly and changes nothing', async (t) => {
  const { srv } = await freshServer(t, { limits: LIMITS });
  // A positive control: the same server takes a good event (and the body key).
  assert.equal((await srv.ingest('/v1/track', ev('good-1'))).status, 200);
  const viaBodyKey = await request(srv.url + '/v1/track', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: ev('good-2', { writeKey: srv.writeKey }) });
  assert.equal(viaBodyKey.status, 200, viaBodyKey.text);
  const base = await srv.settled();
  assert.equal(base.engine.events, 2);
  assert.equal(base.log.durable_lsn, 2);

  for (const [name, pathname, body, status, code, field, msg, ids, opt = {}] of cases) {
    const headers = { 'Content-Type': 'application/json', ...opt.headers };
    if (opt.auth) headers.Authorization = opt.auth;
    else if (opt.writeKey !== null) headers.Authorization = basic(opt.writeKey ?? srv.writeKey);
    const r = await request(srv.url + pathname, { method: opt.method ?? 'POST', headers, body, chunked: opt.chunked });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.match(r.headers['content-type'], /^application\/json/, name);
    assert.equal(r.json?.code, code, `${name}: ${r.text}`);
    assert.equal(r.json.field, field, `${name}: ${r.text}`);
    assert.match(r.json.error, msg, name);
    if (status === 429) assert.ok(r.headers['retry-after']);
    const s = await srv.stats();
    assert.equal(s.log.durable_lsn, base.log.durable_lsn, `${name}: the log grew`);
    assert.equal(s.engine.events, base.engine.events, `${name}: the engine counted an event`);
    for (const id of ids) assert.equal((await srv.profile(id)).status, 404, `${name}: profile ${id} exists`);
  }

  // The log is sequential: one good event now lands right after the baseline.
  assert.equal((await srv.ingest('/v1/track', ev('good-3'))).status, 200);
  const end = await srv.settled();
  assert.equal(end.log.durable_lsn, base.log.durable_lsn + 1);
  assert.equal(end.engine.events, 3);
  assert.equal(end.engine.profiles, 3);
  assertCleanExit(assert, srv, await srv.stop());
});

test('bad input: admin keys, scopes and unknown profiles', async (t) => {
  const { srv } = await freshServer(t, { extraAdminKeys: [{ key: READER_KEY, scopes: ['profiles:read'] }] });
  assert.equal((await srv.ingest('/v1/identify', { userId: 'known', traits: { a: 1 } })).status, 200);
  const base = await srv.settled();
  const journey = 'id: j1\ntrigger:\n  event: E\nsteps:\n  - id: x\n    type: exit\n';

  // [name, method, path, key (null: no header), body, status, code, message]
  const adminCases = [
    ['wrong admin key', 'GET', '/v1/profiles/known', 'ak_wrong_wrong_wrong', undefined, 401, 'unauthorized', /admin key is required/],
    ['missing admin key', 'GET', '/v1/profiles/known', null, undefined, 401, 'unauthorized', /admin key is required/],
    ['write key used as admin key', 'GET', '/v1/profiles/known', srv.writeKey, undefined, 401, 'unauthorized', /admin key is required/],
    ['wrong admin key on PUT journey', 'PUT', '/v1/journeys/j1', 'ak_wrong_wrong_wrong', journey, 401, 'unauthorized', /admin key is required/],
    ['missing admin key on PUT journey', 'PUT', '/v1/journeys/j1', null, journey, 401, 'unauthorized', /admin key is required/],
    ['profiles:read key on PUT journey', 'PUT', '/v1/journeys/j1', READER_KEY, journey, 403, 'forbidden', /lacks the scope/],
    ['profiles:read key on GET journeys', 'GET', '/v1/journeys', READER_KEY, undefined, 403, 'forbidden', /lacks the scope/],
    ['profiles:read key on stats', 'GET', '/v1/stats', READER_KEY, undefined, 403, 'forbidden', /lacks the scope/],
    ['unknown profile', 'GET', '/v1/profiles/nobody-here', undefined, undefined, 404, 'not_found', /no profile has this userId or anonymousId/],
    ['unknown journey', 'GET', '/v1/journeys/nope', undefined, undefined, 404, 'not_found', /no journey has this id/],
    ['unknown endpoint', 'GET', '/v1/nothing', undefined, undefined, 404, 'not_found', /no such endpoint/],
    ['invalid journey id', 'PUT', '/v1/journeys/bad%20id', undefined, journey, 400, 'invalid_id', /journey ids are 1-64 characters/],
  ];
  for (const [name, method, pathname, key, body, status, code, msg] of adminCases) {
    const r = await srv.admin(method, pathname, { key: key === undefined ? srv.adminKey : key, body });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.equal(r.json?.code, code, `${name}: ${r.text}`);
    assert.match(r.json.error, msg, name);
  }
  // The reader key can read profiles (so the 403s above are about scope).
  const ok = await srv.admin('GET', '/v1/profiles/known', { key: READER_KEY });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json.traits, { a: 1 });
  // Nothing was published or stored.
  const s = await srv.stats();
  assert.equal(s.engine.journeys, 0);
  assert.equal(s.log.durable_lsn, base.log.durable_lsn);
  assert.equal((await srv.admin('GET', '/v1/journeys/j1')).status, 404);
  assertCleanExit(assert, srv, await srv.stop());
});

test('limits: exactly at each limit is accepted, one over is refused', async (t) => {
  const { srv } = await freshServer(t, { limits: LIMITS });
  // A body of exactly max_body_bytes (padded with JSON whitespace), then one byte more.
  const body = (userId, size) => {
    const json = JSON.stringify({ batch: [{ type: 'track', userId, event: 'E' }] });
    return json.slice(0, -1) + ' '.repeat(size - json.length) + '}';
  };
  const at = await srv.ingest('/v1/batch', body('at-body-limit', 4096));
  assert.equal(at.status, 200, at.text);
  const over = await srv.ingest('/v1/batch', body('over-body-limit', 4097));
  assert.equal(over.status, 413, over.text);
  assert.equal(over.json.code, 'body_too_large');
  // max_batch_events events in one batch.
  // The same for a gzip body: the limit applies to the inflated size.
  const gz = (userId, size) => gzipSync(body(userId, size));
  const gzAt = await srv.ingest('/v1/batch', gz('gz-at-limit', 4096), { headers: { 'Content-Encoding': 'gzip' } });
  assert.equal(gzAt.status, 200, gzAt.text);
  const gzOver = await srv.ingest('/v1/batch', gz('gz-over-limit', 4097), { headers: { 'Content-Encoding': 'gzip' } });
  assert.equal(gzOver.status, 413, gzOver.text);
  assert.match(gzOver.json.error, /decompressed body is over the limit of 4096 bytes/);
  const five = await srv.ingest('/v1/batch', { batch: Array.from({ length: 5 }, (_, i) => ({ type: 'track', userId: `five-${i}`, event: 'E' })) });
  assert.equal(five.status, 200, five.text);
  const s = await srv.settled();
  assert.equal(s.engine.events, 7);
  assert.equal((await srv.profile('at-body-limit')).status, 200);
  assert.equal((await srv.profile('over-body-limit')).status, 404);
  assert.equal((await srv.profile('gz-at-limit')).status, 200);
  assert.equal((await srv.profile('gz-over-limit')).status, 404);
  for (let i = 0; i < 5; i++) assert.equal((await srv.profile(`five-${i}`)).json.eventCount, 1);
  assertCleanExit(assert, srv, await srv.stop());
});

test('profile ids with reserved URL characters round-trip through the admin API', async (t) => {
  const { srv } = await freshServer(t);
  const ids = ['alice@example.com', 'with space', 'zoë-ü', 'a/b', 'q?x=1', 'h#1', '100%', 'plus+sign'];
  for (const id of ids) assert.equal((await srv.ingest('/v1/identify', { userId: id, traits: { id } })).status, 200);
  await srv.settled();
  for (const id of ids) {
    const p = await srv.profile(id);
    assert.equal(p.status, 200, `${id}: ${p.text}`);
    assert.equal(p.json.userId, id);
    assert.deepEqual(p.json.traits, { id });
  }
  assertCleanExit(assert, srv, await srv.stop());
});

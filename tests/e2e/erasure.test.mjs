// Erasure on request: DELETE /v1/profiles/{id} removes a customer from memory,
// the store and the log's retained segments (checked by reading every file of
// the data directory after a clean stop), suppression drops their later
// events before the log, and nobody else's data is touched.
import test from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { freshServer, randomKey, assertCleanExit } from './lib/baton.mjs';

function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const PAGE = 4096;

/**
 * The bytes of a file; for the LMDB store, which is as large as its map (64 GiB, sparse: it is
 * written through a memory map), the pages up to the last one in use, read from the newer of
 * its two meta pages, after checking that no block past them is allocated, so that every byte
 * on the disk is read.
 */
function fileBytes(f) {
  if (path.basename(f) !== 'data.mdb') return readFileSync(f);
  const fd = openSync(f, 'r');
  try {
    const metas = Buffer.alloc(2 * PAGE);
    assert.equal(readSync(fd, metas, 0, metas.length, 0), metas.length);
    let last = -1n, txnid = -1n;
    for (const off of [0, PAGE]) {
      // MDB_page header (16 bytes), then MDB_meta: magic, version, address, mapsize, two
      // MDB_db of 48 bytes, last page number, transaction id.
      assert.equal(metas.readUInt32LE(off + 16), 0xbeefc0de, 'an LMDB meta page');
      const t = metas.readBigUInt64LE(off + 144);
      if (t > txnid) { txnid = t; last = metas.readBigUInt64LE(off + 136); }
    }
    const used = (Number(last) + 1) * PAGE;
    assert.ok(statSync(f).blocks * 512 <= used + (1 << 20), 'no data past the last page in use');
    const bytes = Buffer.alloc(used);
    for (let at = 0; at < used;) at += readSync(fd, bytes, at, used - at, at);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

function filesContaining(dir, needles) {
  const hits = [];
  for (const f of filesUnder(dir)) {
    const bytes = fileBytes(f);
    for (const n of needles) if (bytes.includes(Buffer.from(n))) hits.push(`${path.relative(dir, f)}: ${n}`);
  }
  return hits;
}

test('erasure: a deleted customer leaves nothing on disk, and suppression keeps them out', async (t) => {
  const readOnly = randomKey('ak_ro_');
  const deleter = randomKey('ak_del_');
  const ctx = await freshServer(t, {
    extraAdminKeys: [{ key: readOnly, scopes: ['profiles:read'] }, { key: deleter, scopes: ['profiles:delete'] }],
  });
  let srv = ctx.srv;
  const secret = { user: 'erase-me-7f3a', anon: 'anon-erase-91c2', email: 'erase.me.7f3a@example.org', marker: 'MARKER-5d8e1b' };
  assert.equal((await srv.ingest('/v1/identify', { userId: secret.user, anonymousId: secret.anon, traits: { email: secret.email, note: secret.marker } })).status, 200);
  for (let i = 0; i < 5; i++)
    assert.equal((await srv.ingest('/v1/track', { userId: secret.user, event: 'Viewed', properties: { marker: secret.marker, i } })).status, 200);
  assert.equal((await srv.admin('POST', `/v1/profiles/${secret.user}/cases`, { body: { type: 'complaint', text: secret.marker } })).status, 201);
  assert.equal((await srv.ingest('/v1/track', { userId: 'keep-me', event: 'Viewed', properties: { ok: true } })).status, 200);
  await srv.settled();

  // Scopes: reading is not enough to delete; the delete scope is.
  const denied = await srv.admin('DELETE', `/v1/profiles/${secret.user}`, { key: readOnly });
  assert.equal(denied.status, 403);
  const missing = await srv.admin('DELETE', '/v1/profiles/nobody-at-all', { key: deleter });
  assert.equal(missing.status, 404);
  const del = await srv.admin('DELETE', `/v1/profiles/${encodeURIComponent(secret.email.toUpperCase())}?by=email&suppress=true`, { key: deleter });
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { deleted: true, suppressed: true });

  for (const [id, by] of [[secret.user, ''], [secret.anon, ''], [secret.email, '?by=email']])
    assert.equal((await srv.admin('GET', `/v1/profiles/${encodeURIComponent(id)}${by}`)).status, 404, id);
  assert.equal((await srv.admin('GET', `/v1/profiles/${secret.user}/export`)).status, 404);
  assert.equal((await srv.profile('keep-me')).json.eventCount, 1);

  // Suppressed: acknowledged, never stored, never a profile again.
  const before = await srv.stats();
  assert.equal((await srv.ingest('/v1/track', { userId: secret.user, event: 'Back', properties: { marker: secret.marker } })).status, 200);
  assert.equal((await srv.ingest('/v1/track', { anonymousId: secret.anon, event: 'Back' })).status, 200);
  const after = await srv.settled();
  assert.equal(after.log.durable_lsn, before.log.durable_lsn, 'suppressed events never reach the log');
  assert.equal((await srv.admin('GET', `/v1/profiles/${secret.user}`)).status, 404);

  // After a clean stop (which also compacts the store), no file holds any of it.
  const e = await srv.stop();
  assertCleanExit(assert, srv, e);
  assert.deepEqual(filesContaining(ctx.dataDir, Object.values(secret)), []);

  // Restarted: still gone, still suppressed; the other customer intact.
  srv = await ctx.start();
  assert.equal((await srv.admin('GET', `/v1/profiles/${secret.user}`)).status, 404);
  assert.equal((await srv.profile('keep-me')).json.eventCount, 1);
  const s0 = await srv.stats();
  assert.equal((await srv.ingest('/v1/track', { userId: secret.user, event: 'Again' })).status, 200);
  assert.equal((await srv.settled()).log.durable_lsn, s0.log.durable_lsn);
});

test('erasure: without suppression the customer can come back as new, and a kill -9 right after keeps the deletion', async (t) => {
  const ctx = await freshServer(t);
  let srv = ctx.srv;
  for (let i = 0; i < 3; i++) assert.equal((await srv.ingest('/v1/track', { userId: 'comeback', event: 'E', properties: { i } })).status, 200);
  await srv.settled();
  const del = await srv.admin('DELETE', '/v1/profiles/comeback');
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { deleted: true, suppressed: false });
  await srv.kill();
  srv = await ctx.start();
  assert.equal((await srv.admin('GET', '/v1/profiles/comeback')).status, 404);
  assert.equal((await srv.ingest('/v1/track', { userId: 'comeback', event: 'New' })).status, 200);
  await srv.settled();
  const p = (await srv.profile('comeback')).json;
  assert.equal(p.eventCount, 1);
  assert.equal(p.events[0].event, 'New');
});

// Clients that go away while their request is being handled: the connection is
// suspended while a worker parses the body and the log makes it durable, and the
// event loop resumes it afterwards. Sockets closed at every point of that (before
// the body is complete, right after it, while waiting for the fsync; single events,
// batches, admin writes) must leave the server serving, stop it cleanly on SIGTERM,
// and (under the sanitizer build) report no leak or error.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freshServer, request, basic, assertCleanExit, delay } from './lib/baton.mjs';

function rawRequest(port, text, closeAfterMs) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(text);
      if (closeAfterMs === 0) sock.destroy();
      else setTimeout(() => sock.destroy(), closeAfterMs);
    });
    sock.on('error', () => {});
    sock.on('close', resolve);
  });
}

test('clients that disconnect mid-request leave the server serving and stopping cleanly', async (t) => {
  const { srv } = await freshServer(t);
  const auth = basic(srv.writeKey);
  const one = (i) => JSON.stringify({ userId: `gone-${i}`, event: 'Left Early', messageId: `m-${i}` });
  const batch = (i) => JSON.stringify({
    batch: Array.from({ length: 50 }, (_, k) => ({ type: 'track', userId: `gone-b-${i}`, event: 'E', messageId: `b-${i}-${k}` })),
  });
  const post = (path, body, { cut } = {}) => {
    const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    return head + (cut ? body.slice(0, body.length >> 1) : body);
  };
  const jobs = [];
  for (let i = 0; i < 120; i++) {
    const closeAfter = [0, 1, 3, 10][i % 4];
    if (i % 3 === 0) jobs.push(rawRequest(srv.port, post('/v1/track', one(i), { cut: i % 6 === 0 }), closeAfter));
    else if (i % 3 === 1) jobs.push(rawRequest(srv.port, post('/v1/batch', batch(i)), closeAfter));
    else {
      const note = JSON.stringify({ text: `note ${i}` });
      const head = `POST /v1/profiles/nobody-${i}/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.adminKey}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${note.length}\r\n\r\n${note}`;
      jobs.push(rawRequest(srv.port, head, closeAfter));
    }
  }
  await Promise.all(jobs);
  await delay(200);
  // Still serving, and every request a client waited for is answered.
  const r = await request(srv.url + '/v1/track', { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: one('after') });
  assert.equal(r.status, 200, r.text);
  const s = await srv.settled();
  // What was acknowledged or not, nothing was stored twice and nothing half: whole batches only.
  const stats = s.engine;
  assert.ok(stats.events >= 1, JSON.stringify(stats));
  const p = await srv.profile('gone-after');
  assert.equal(p.status, 200);
  for (let i = 1; i < 120; i += 3) {
    const q = await srv.profile(`gone-b-${i}`);
    if (q.status === 200) assert.equal(q.json.eventCount, 50, `batch ${i} stored in part`);
  }
  const e = await srv.stop();
  assertCleanExit(assert, srv, e);
});

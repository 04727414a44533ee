// messageId de-duplication (a resent call, a retried batch, per source, across
// restart and kill -9) and `baton import` of CSV and JSONL files: summaries,
// line numbers of rejected lines, exit codes, the profiles they make, and a
// resume after the server was killed mid-import with an acknowledgement lost
// on the way, every line applied exactly once.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {Node, batonBin, waitFor, slow} from './support/baton.mjs'
import {recordingProxy} from './support/proxy.mjs'

async function send(node, p, body, key) {
  const r = await node.ingest(p, body, key ? {key} : {})
  assert.equal(r.status, 200, `${p}: ${r.text}`)
}

/** Runs `baton import ARGS` (stdin and stdout not a terminal); {code, signal, stdout, stderr, proc}. */
function runImport(args) {
  const proc = spawn(batonBin, ['import', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  const out = {proc, stdout: '', stderr: ''}
  proc.stdout.on('data', (d) => { out.stdout += d })
  proc.stderr.on('data', (d) => { out.stderr += d })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120000 * slow)
  out.done = new Promise((resolve) => proc.on('close', (code, signal) => {
    clearTimeout(timer)
    Object.assign(out, {code, signal})
    resolve(out)
  }))
  return out
}

test('the same messageId is applied once: resent calls, retried batches, per source, across restarts', async (t) => {
  const node = await Node.create(t, {sources: [{name: 'web', key: 'wk_e2e3_web_key'}, {name: 'app', key: 'wk_e2e3_app_key'}]})
  await send(node, '/v1/track', {userId: 'd-1', event: 'Paid', properties: {amount: 10}, messageId: 'pay-1'})
  await send(node, '/v1/track', {userId: 'd-1', event: 'Paid', properties: {amount: 99}, messageId: 'pay-1'})
  let s = await node.settled()
  assert.deepEqual([s.engine.events, s.engine.duplicates], [1, 1])
  let p = await node.profile('d-1')
  assert.equal(p.eventCount, 1)
  assert.equal(p.events[0].properties.amount, 10, 'the first one is kept')

  // A batch, retried whole, then again with one new event: only the new one is applied.
  const batch = [1, 2, 3].map((i) => ({type: 'track', userId: 'd-1', event: 'Step', messageId: `b-${i}`}))
  await send(node, '/v1/batch', {batch})
  await send(node, '/v1/batch', {batch})
  await send(node, '/v1/b', {batch: [...batch, {type: 'identify', userId: 'd-1', messageId: 'b-4', traits: {x: 1}}]})
  s = await node.settled()
  assert.deepEqual([s.engine.events, s.engine.duplicates], [5, 7])
  // A duplicate inside one batch.
  await send(node, '/v1/batch', {batch: [{type: 'track', userId: 'd-1', event: 'Twice', messageId: 'in-1'},
    {type: 'track', userId: 'd-1', event: 'Twice', messageId: 'in-1'}]})
  s = await node.settled()
  assert.deepEqual([s.engine.events, s.engine.duplicates], [6, 8])
  // The same messageId from another source is another event.
  await send(node, '/v1/track', {userId: 'd-1', event: 'Paid', properties: {amount: 5}, messageId: 'pay-1'}, 'wk_e2e3_app_key')
  s = await node.settled()
  assert.deepEqual([s.engine.events, s.engine.duplicates], [7, 8])
  // The window survives a clean restart and a kill -9 (replay decides the same).
  await node.stop()
  await node.start()
  await send(node, '/v1/track', {userId: 'd-1', event: 'Paid', messageId: 'pay-1'})
  await send(node, '/v1/batch', {batch})
  s = await node.settled()
  // Counted over the server's lifetime, like events: 8 before the restart, 4 after.
  assert.deepEqual([s.engine.events, s.engine.duplicates], [7, 12])
  await send(node, '/v1/track', {userId: 'd-1', event: 'Late', messageId: 'late-1'})
  await node.kill()
  await node.start()
  await send(node, '/v1/track', {userId: 'd-1', event: 'Late', messageId: 'late-1'})
  await send(node, '/v1/track', {userId: 'd-1', event: 'Paid', messageId: 'pay-1'}, 'wk_e2e3_app_key')
  s = await node.settled()
  assert.equal(s.engine.events, 8)
  p = await node.profile('d-1')
  assert.equal(p.eventCount, 8)
  const {entries} = await node.timeline('d-1', {limit: 3})
  assert.deepEqual(entries.map((e) => e.messageId),
    ['late-1', 'pay-1', 'in-1', 'b-4', 'b-3', 'b-2', 'b-1', 'pay-1'])
  await node.stop()
})

test('baton import: CSV and JSONL with rejected lines, summaries, exit codes, profiles', async (t) => {
  const node = await Node.create(t)
  const csv = path.join(node.dir, 'customers.csv')
  writeFileSync(csv, [
    'userId,email,plan,note',
    'imp-1,One@Example.com,pro,"likes, commas"',
    'imp-2,two@example.com,free,"two',
    'lines"',
    ',,,',
    'imp-4,four@example.com',
    'imp-6,six@example.com,,"she said ""hi"""',
    'imp-7,"x"y,pro,z',
    'imp-8,eight@example.com,pro,',
    '',
  ].join('\r\n'))
  const key = ['--url', node.url, '--write-key', node.writeKey]
  let r = await runImport([csv, ...key]).done
  assert.equal(r.code, 3, r.stderr)
  assert.match(r.stdout, new RegExp(`^${csv}: 9 lines, 4 taken, 3 rejected in [0-9.]+ s\\n$`))
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `${csv}:5: rejected: userId or anonymousId is required`,
    `${csv}:6: rejected: 2 cells where the header has 4`,
    `${csv}:8: rejected: malformed CSV (an unterminated quote or text after a closing quote)`,
  ])
  assert.ok(!existsSync(csv + '.import-state'), 'no state left after a complete import')
  await node.settled()
  let p = await node.profile('imp-1')
  assert.deepEqual(p.traits, {email: 'One@Example.com', plan: 'pro', note: 'likes, commas'})
  assert.equal((await node.profile('one@example.com', 'email')).userId, 'imp-1')
  assert.deepEqual((await node.profile('imp-2')).traits, {email: 'two@example.com', plan: 'free', note: 'two\r\nlines'})
  assert.deepEqual((await node.profile('imp-6')).traits, {email: 'six@example.com', note: 'she said "hi"'})
  assert.deepEqual((await node.profile('imp-8')).traits, {email: 'eight@example.com', plan: 'pro'})
  for (const id of ['imp-4', 'imp-7']) assert.equal(await node.profile(id), null)
  let s = await node.settled()
  assert.equal(s.engine.events, 4)

  const jsonl = path.join(node.dir, 'history.jsonl')
  const NUL_LINE = '{"type":"identify","userId":"j-1\\u0000x","traits":{"a":1}}'
  writeFileSync(jsonl, [
    {type: 'identify', userId: 'j-1', traits: {email: 'j1@example.com'}, timestamp: '2025-01-01T00:00:00Z'},
    {type: 'track', userId: 'j-1', event: 'Order Completed', properties: {total: 10}, timestamp: '2025-01-02T00:00:00Z'},
    'not json',
    {type: 'track', event: 'No Identity'},
    '',
    {type: 'page', anonymousId: 'j-anon', name: 'Home', timestamp: '2025-01-03T00:00:00Z'},
    {type: 'alias', userId: 'j-1', previousId: 'j-anon', messageId: 'own-id-1'},
    [1, 2],
    {type: 'fly', userId: 'j-1'},
    {type: 'track', userId: 'j-1', event: 'E', properties: {big: 1e308 * 10}},
    // Values cJSON alone would change: checked as sent, with the server's parser.
    '{"type":"track","userId":"j-1","event":"E","properties":{"n":1e400}}',
    NUL_LINE,
  ].map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n')
  // (1e308 * 10 is Infinity: JSON.stringify writes null, a valid line.)
  r = await runImport([jsonl, ...key, '--json']).done
  assert.equal(r.code, 3, r.stderr)
  const sum = JSON.parse(r.stdout)
  assert.deepEqual({...sum, seconds: 0}, {file: jsonl, complete: true, lines: 12, taken: 5, rejected: 6, seconds: 0,
    rejects: [{line: 3, reason: 'not valid JSON'}, {line: 4, reason: 'userId or anonymousId is required'},
      {line: 8, reason: 'not a JSON object'},
      {line: 9, reason: "type 'fly' is not one of track, identify, page, screen, group, alias"},
      {line: 11, reason: 'properties.n is a number out of range'},
      {line: 12, reason: `a string holds \\u0000 (NUL), which is not accepted, at byte ${NUL_LINE.indexOf('\\')}`}]})
  assert.equal(r.stderr, '', 'with --json nothing on stderr')
  await node.settled()
  p = await node.profile('j-1')
  assert.deepEqual(p.merged, ['a:j-anon'])
  assert.deepEqual(p.traits, {email: 'j1@example.com'}, 'the \\u0000 line did not land on j-1')
  assert.equal(p.eventCount, 5)
  const {entries} = await node.timeline('j-1')
  const order = entries.find((e) => e.event === 'Order Completed')
  assert.equal(order.timestamp, '2025-01-02T00:00:00.000Z', 'the historical timestamp is kept')
  assert.match(order.messageId, /^import-[0-9a-f]{16}-2$/, 'messageId from the file name and line')
  assert.ok(entries.some((e) => e.messageId === 'own-id-1'))
  // Importing the same file again changes nothing: the same messageIds.
  const before = await node.settled()
  r = await runImport([jsonl, ...key, '--json']).done
  assert.equal(r.code, 3)
  s = await node.settled()
  assert.equal(s.engine.events, before.engine.events)
  assert.equal(s.engine.duplicates - before.engine.duplicates, 5)

  // A clean file: exit 0. Usage errors: exit 2. No server: exit 1, resumable.
  const clean = path.join(node.dir, 'clean.ndjson')
  writeFileSync(clean, JSON.stringify({type: 'track', userId: 'c-1', event: 'E'}) + '\n')
  r = await runImport([clean, ...key]).done
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /: 1 lines, 1 taken, 0 rejected in /)
  assert.equal((await runImport([path.join(node.dir, 'x.txt'), ...key]).done).code, 2)
  assert.equal((await runImport([clean, '--batch', '0', ...key]).done).code, 2)
  assert.equal((await runImport([clean, '--bogus']).done).code, 2)
  await node.stop()
})

test('baton import resumes after the server was killed mid-import; every line applied exactly once', async (t) => {
  const node = await Node.create(t)
  const N = 1000, BATCH = 25, USERS = 40
  const file = path.join(node.dir, 'events.jsonl')
  const lines = []
  for (let i = 1; i <= N; i++) {
    // Line 251, right after the 10th batch, is rejected: the resume must not count it twice.
    lines.push(i === 251 ? '{"type":"track","event":"no identity"}'
      : JSON.stringify({type: 'track', userId: `r-${i % USERS}`, event: 'Imported', properties: {line: i}}))
  }
  writeFileSync(file, lines.join('\n') + '\n')
  // Through a proxy: batches 0-9 pass; batch 10 (lines 252-276) reaches Baton, which stores it and
  // answers 200, but the answer is lost. Then Baton is killed (and the stuck importer too).
  const proxy = await recordingProxy(() => node.url, (i) => (i < 10 ? 'pass' : 'swallow'))
  t.after(proxy.close)
  const first = runImport([file, '--url', proxy.url, '--write-key', node.writeKey, '--batch', String(BATCH)])
  await waitFor(() => proxy.seen[10]?.status === 200, {what: 'Baton to acknowledge the 11th batch'})
  const state = JSON.parse(readFileSync(file + '.import-state', 'utf8'))
  assert.deepEqual([state.line, state.taken, state.rejected], [250, 250, 0])
  await node.kill()
  first.proc.kill('SIGKILL')
  await first.done
  await node.start()
  let s = await node.settled()
  assert.equal(s.engine.events, 275, 'the 11th batch was durable before the kill')

  const second = await runImport([file, '--url', node.url, '--write-key', node.writeKey, '--batch', String(BATCH)]).done
  assert.equal(second.code, 3, second.stderr)
  assert.match(second.stderr, new RegExp(`resuming ${file} after line 250 \\(250 taken before\\)`))
  assert.match(second.stderr, /:251: rejected: userId or anonymousId is required/)
  assert.match(second.stdout, new RegExp(`^${file}: ${N} lines, ${N - 1} taken, 1 rejected in `))
  assert.ok(!existsSync(file + '.import-state'))
  s = await node.settled()
  assert.equal(s.engine.events, N - 1, 'every valid line exactly once')
  assert.equal(s.engine.duplicates, BATCH, 'the batch whose answer was lost, sent again, applied once')
  // Per user: each of its lines once, newest first.
  for (const u of [0, 11, 39]) {
    const want = []
    for (let i = N; i >= 1; i--) if (i !== 251 && i % USERS === u) want.push(i)
    const p = await node.profile(`r-${u}`)
    assert.equal(p.eventCount, want.length)
    const {entries} = await node.timeline(`r-${u}`, {limit: 9})
    assert.deepEqual(entries.map((e) => e.properties.line), want)
  }
  await node.stop()
})

test('baton import on a terminal shows a progress bar; piped it stays quiet', async (t) => {
  const node = await Node.create(t)
  const file = path.join(node.dir, 'tty.jsonl')
  writeFileSync(file, Array.from({length: 300}, (_, i) =>
    JSON.stringify({type: 'identify', userId: `tty-${i}`, traits: {i}})).join('\n') + '\n')
  // script(1) gives the import a pseudo-terminal; what it drew comes back on script's stdout.
  const cmd = [batonBin, 'import', file, '--url', node.url, '--write-key', node.writeKey, '--batch', '50']
    .map((a) => `'${a}'`).join(' ')
  const r = await new Promise((resolve) => {
    const p = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    p.on('close', (code) => resolve({code, out}))
  })
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /\r\[#{30}\] 100% +300 lines +300 taken +0 rejected +\d+ lines\/s/)
  assert.match(r.out, /tty\.jsonl: 300 lines, 300 taken, 0 rejected in /)
  await node.settled()
  assert.equal((await node.profile('tty-299')).traits.i, 299)
  // Piped (the other tests): no bar. --restart sends everything again: all duplicates.
  const again = await runImport([file, '--url', node.url, '--write-key', node.writeKey, '--restart']).done
  assert.equal(again.code, 0)
  assert.doesNotMatch(again.stderr + again.stdout, /\[#|\r/)
  const s = await node.settled()
  assert.deepEqual([s.engine.events, s.engine.duplicates], [300, 300])
  await node.stop()
})

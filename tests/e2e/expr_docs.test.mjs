// The examples of docs/conditions.md run as tests: every line of a ```cel
// block of the form `EXPR  // => RESULT` is evaluated with `baton eval`
// against docs/examples/customer.json at 2026-11-23T12:00:00Z, and its output
// must be RESULT (or, for `// => error: MSG`, the error message must be MSG).
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {spawnSync} from 'node:child_process'

const BIN = process.env.BATON_BIN ?? 'build/src/baton'
const doc = readFileSync('docs/conditions.md', 'utf8')

function examples() {
  const out = []
  let inCel = false
  for (const line of doc.split('\n')) {
    if (line.startsWith('```')) { inCel = line.trim() === '```cel'; continue }
    if (!inCel) continue
    const k = line.lastIndexOf('  // => ')
    if (k > 0) out.push({expr: line.slice(0, k).trim(), want: line.slice(k + 8).trim()})
  }
  return out
}

test('docs/conditions.md examples', () => {
  const cases = examples()
  assert.ok(cases.length >= 40, `only ${cases.length} examples found`)
  for (const {expr, want} of cases) {
    const r = spawnSync(BIN, ['eval', '--vars-json', 'docs/examples/customer.json',
      '--now', '2026-11-23T12:00:00Z', '--', expr], {encoding: 'utf8'})
    if (want.startsWith('error: ')) {
      assert.equal(r.status, 1, `${expr}: want an error, got ${r.stdout}`)
      const msg = r.stderr.split('\n')[0].replace(/^error: <input>:\d+:\d+: /, '')
      assert.equal(msg, want.slice(7), expr)
    } else {
      assert.equal(r.status, 0, `${expr}: ${r.stderr}`)
      assert.equal(r.stdout.trim(), want, expr)
    }
  }
})

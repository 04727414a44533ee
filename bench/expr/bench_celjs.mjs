// The cel-js side of bench/expr: the same cases and data, the same count()
// scan as the C host, compiled once with env.parse() and evaluated in a loop
// for a fixed time. Prints one JSON object per case, like bench_expr: the
// best, median and worst of the rounds.
// Usage: node bench_celjs.mjs CASES.json DATA.json [SECONDS_PER_CASE [ROUNDS]]
import {readFileSync} from 'node:fs'
import {Environment} from '@marcbachmann/cel-js'

const [casesPath, dataPath, secsArg, roundsArg] = process.argv.slice(2)
const cases = JSON.parse(readFileSync(casesPath, 'utf8'))
const data = JSON.parse(readFileSync(dataPath, 'utf8'))
const secs = Number(secsArg ?? 0.5)
const rounds = Math.min(99, Math.max(1, Number(roundsArg ?? 5)))

// cel-js represents CEL ints as BigInt. baton reads a number written without
// a fraction as an int; JSON.parse forgets how a number was written, so the
// data file's doubles (item prices) are restored below.
function toCel(v) {
  if (Array.isArray(v)) return v.map(toCel)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCel(x)]))
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 2 ** 53 && !String(v).includes('.')) return BigInt(v)
  return v
}
// JSON.parse loses "1.5" vs "2.0"; the data file writes doubles with a fraction.
const vars = {profile: toCel(data.profile), event: toCel(data.event), context: toCel(data.context)}
for (const item of vars.profile.items) item.price = Number(item.price)
const now = Date.parse(data.clock)
const events = data.profile.events.map((e) => ({name: e.name, ms: Date.parse(e.time)}))

const env = new Environment({unlistedVariablesAreDyn: true}).registerFunction(
  'count(string, google.protobuf.Duration): int',
  (name, d) => {
    const since = now - (Number(d.seconds) * 1000 + Math.floor(Number(d.nanos) / 1e6))
    let c = 0n
    for (const e of events) if (e.name === name && e.ms >= since && e.ms < now + 1) c++
    return c
  }
)

for (const c of cases) {
  const f = env.parse(c.expr)
  let result = f(vars)
  // The same rounds as bench_expr: best, median and worst.
  const rate = []
  for (let round = 0; round < rounds; round++) {
    let n = 0
    const t0 = process.hrtime.bigint()
    const limit = BigInt(Math.round((secs * 1e9) / rounds))
    let t
    do {
      for (let k = 0; k < 256; k++) result = f(vars)
      n += 256
      t = process.hrtime.bigint() - t0
    } while (t < limit)
    rate.push((n * 1e9) / Number(t))
  }
  rate.sort((a, b) => b - a)
  console.log(JSON.stringify({name: c.name, evals_per_sec: Math.round(rate[0]),
    median: Math.round(rate[rounds >> 1]), worst: Math.round(rate[rounds - 1]), result: String(result)}))
}

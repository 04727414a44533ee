// Differential tests of the condition language: generated well-typed CEL
// expressions over generated data, evaluated by `baton eval` and by
// @marcbachmann/cel-js; the two must agree on the value (same type and
// value; doubles compared numerically) or both fail. Deterministic: the
// generator is seeded (BATON_DIFF_SEED, default 4), BATON_DIFF_CASES cases.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Environment} from '@marcbachmann/cel-js'

const BIN = process.env.BATON_BIN ?? 'build/src/baton'
const SEED = Number(process.env.BATON_DIFF_SEED ?? 4)
const CASES = Number(process.env.BATON_DIFF_CASES ?? 300)

// mulberry32: small, seedable, good enough for test generation.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function makeGen(rand) {
  const pick = (xs) => xs[Math.floor(rand() * xs.length)]
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1))
  const words = ['a', 'ab', 'abc', 'gold', 'silver', 'x-1', 'Vip', '']
  const strLit = () => JSON.stringify(pick(words))
  const gen = {
    int(d) {
      if (d <= 0) return pick([String(int(-20, 20)), 'x.a', 'x.b', 'size(x.l)', String(int(0, 9223372036854775807 > 0 ? 3 : 0))])
      return pick([
        () => `(${gen.int(d - 1)} + ${gen.int(d - 1)})`,
        () => `(${gen.int(d - 1)} - ${gen.int(d - 1)})`,
        () => `(${gen.int(d - 1)} * ${gen.int(d - 1)})`,
        () => `(${gen.int(d - 1)} / ${gen.int(d - 1)})`,
        () => `(${gen.int(d - 1)} % ${gen.int(d - 1)})`,
        () => `-${gen.int(d - 1)}`,
        () => `size(${gen.str(d - 1)})`,
        () => `(${gen.bool(d - 1)} ? ${gen.int(d - 1)} : ${gen.int(d - 1)})`,
        () => `x.l[${int(0, 4)}]`,
        () => `${gen.list(d - 1)}.size()`,
        () => `(9223372036854775807 - ${gen.int(d - 1)})`,
        () => `int(${gen.dbl(d - 1)})`,
      ])()
    },
    dbl(d) {
      if (d <= 0) return pick(['1.5', '-0.25', '2.0', 'x.d', '1e3', '0.1'])
      return pick([
        () => `(${gen.dbl(d - 1)} + ${gen.dbl(d - 1)})`,
        () => `(${gen.dbl(d - 1)} - ${gen.dbl(d - 1)})`,
        () => `(${gen.dbl(d - 1)} * ${gen.dbl(d - 1)})`,
        () => `double(${gen.int(d - 1)})`,
        () => `(${gen.bool(d - 1)} ? ${gen.dbl(d - 1)} : ${gen.dbl(d - 1)})`,
      ])()
    },
    str(d) {
      if (d <= 0) return pick([strLit(), 'x.s', strLit()])
      return pick([
        () => `(${gen.str(d - 1)} + ${gen.str(d - 1)})`,
        () => `string(${gen.int(d - 1)})`,
        () => `(${gen.bool(d - 1)} ? ${gen.str(d - 1)} : ${gen.str(d - 1)})`,
      ])()
    },
    list(d) {
      if (d <= 0) return pick(['x.l', `[${int(-3, 3)}, ${int(-3, 3)}]`, '[1, 2, 3]'])
      return pick([
        () => `(${gen.list(d - 1)} + ${gen.list(d - 1)})`,
        () => `${gen.list(d - 1)}.map(v, v * ${int(-2, 3)})`,
        () => `${gen.list(d - 1)}.filter(v, v > ${int(-2, 2)})`,
        () => `[${gen.int(d - 1)}, ${gen.int(d - 1)}]`,
      ])()
    },
    bool(d) {
      if (d <= 0) return pick(['true', 'false', 'x.f', 'has(x.a)', 'has(x.zz)'])
      const cmp = pick(['==', '!=', '<', '<=', '>', '>='])
      return pick([
        () => `(${gen.int(d - 1)} ${cmp} ${gen.int(d - 1)})`,
        () => `(${gen.dbl(d - 1)} ${cmp} ${gen.dbl(d - 1)})`,
        () => `(${gen.str(d - 1)} ${cmp} ${gen.str(d - 1)})`,
        () => `(${gen.bool(d - 1)} && ${gen.bool(d - 1)})`,
        () => `(${gen.bool(d - 1)} || ${gen.bool(d - 1)})`,
        () => `!${gen.bool(d - 1)}`,
        () => `(${gen.int(d - 1)} in ${gen.list(d - 1)})`,
        () => `${gen.str(d - 1)}.startsWith(${gen.str(0)})`,
        () => `${gen.str(d - 1)}.endsWith(${gen.str(0)})`,
        () => `${gen.str(d - 1)}.contains(${gen.str(0)})`,
        () => `${gen.list(d - 1)}.exists(v, v ${cmp} ${gen.int(0)})`,
        () => `${gen.list(d - 1)}.all(v, v ${cmp} ${int(-3, 3)})`,
        () => `${gen.list(d - 1)}.exists_one(v, v == ${int(-3, 3)})`,
        () => `(${gen.list(d - 1)} == ${gen.list(d - 1)})`,
      ])()
    },
  }
  const data = () => ({
    x: {
      a: int(-100, 100),
      b: pick([0, 1, -1, 7, 4503599627370496]), // JSON ints beyond 2^53 become double (documented)
      d: pick([0.5, -2.25, 1e10 + 0.5, 3.75]),
      s: pick(words),
      f: rand() < 0.5,
      l: Array.from({length: int(0, 5)}, () => int(-3, 3)),
    },
  })
  return {gen, data, pick}
}

// Parses baton's output (a CEL literal of the generated types) into tagged values.
function parseLiteral(s) {
  let i = 0
  const ws = () => { while (s[i] === ' ') i++ }
  function value() {
    ws()
    if (s[i] === '[') {
      i++
      const items = []
      ws()
      while (s[i] !== ']') { items.push(value()); ws(); if (s[i] === ',') i++; ws() }
      i++
      return {t: 'list', v: items}
    }
    if (s[i] === '"') {
      let j = i + 1, out = ''
      while (s[j] !== '"') {
        if (s[j] === '\\') { j++; out += {n: '\n', t: '\t', r: '\r'}[s[j]] ?? s[j] } else out += s[j]
        j++
      }
      i = j + 1
      return {t: 'string', v: out}
    }
    for (const [lit, v] of [['true', true], ['false', false]]) if (s.startsWith(lit, i)) { i += lit.length; return {t: 'bool', v} }
    const m = /^-?[0-9.eE+\-a-z]+|^double\("[^"]*"\)/.exec(s.slice(i))
    if (!m) throw new Error(`cannot parse baton output ${s}`)
    i += m[0].length
    if (m[0].startsWith('double(')) return {t: 'double', v: Number(m[0].slice(8, -2).replace('Infinity', 'Infinity'))}
    if (/^-?[0-9]+u$/.test(m[0])) return {t: 'uint', v: BigInt(m[0].slice(0, -1))}
    if (/^-?[0-9]+$/.test(m[0])) return {t: 'int', v: BigInt(m[0])}
    return {t: 'double', v: Number(m[0])}
  }
  const v = value()
  return v
}

function tagJs(v) {
  if (typeof v === 'bigint') return {t: 'int', v}
  if (typeof v === 'number') return {t: 'double', v}
  if (typeof v === 'string') return {t: 'string', v}
  if (typeof v === 'boolean') return {t: 'bool', v}
  if (Array.isArray(v)) return {t: 'list', v: v.map(tagJs)}
  return {t: 'other', v: String(v)}
}

function same(a, b) {
  if (a.t !== b.t) return false
  if (a.t === 'double') return (Number.isNaN(a.v) && Number.isNaN(b.v)) || a.v === b.v
  if (a.t === 'list') return a.v.length === b.v.length && a.v.every((x, k) => same(x, b.v[k]))
  return a.v === b.v
}

function toCel(v) {
  if (Array.isArray(v)) return v.map(toCel)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCel(x)]))
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v)
  return v
}

test('baton eval agrees with cel-js on generated expressions', () => {
  const rand = rng(SEED)
  const {gen, data, pick} = makeGen(rand)
  const env = new Environment({unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false})
  const dir = mkdtempSync(join(tmpdir(), 'baton-diff-'))
  const disagreements = []
  let compared = 0, bothErrors = 0
  try {
    for (let k = 0; k < CASES; k++) {
      const type = pick(['bool', 'bool', 'int', 'dbl', 'str', 'list'])
      const expr = gen[type](1 + Math.floor(rand() * 3))
      const d = data()
      const file = join(dir, 'vars.json')
      writeFileSync(file, JSON.stringify(d))
      let js, jsErr = null
      try { js = tagJs(env.evaluate(expr, toCel(d))) } catch (e) { jsErr = e.message.split('\n')[0] }
      const r = spawnSync(BIN, ['eval', '--vars-json', file, '--', expr], {encoding: 'utf8'})
      if (r.status !== 0 && r.status !== 1) throw new Error(`baton eval crashed (${r.status}, ${r.signal}) on ${expr}: ${r.stderr}`)
      const batonErr = r.status === 1 ? r.stderr.split('\n')[0] : null
      compared++
      if (jsErr && batonErr) { bothErrors++; continue }
      if (jsErr || batonErr) {
        disagreements.push({expr, data: d, celjs: jsErr ?? js, baton: batonErr ?? r.stdout.trim()})
        continue
      }
      const got = parseLiteral(r.stdout.trim())
      if (!same(got, js)) disagreements.push({expr, data: d, celjs: js, baton: r.stdout.trim()})
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  const show = (x) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))
  assert.equal(disagreements.length, 0,
    `${disagreements.length} of ${compared} disagree (${bothErrors} both errors):\n` +
      disagreements.slice(0, 10).map(show).join('\n'))
  assert.ok(compared === CASES && bothErrors < CASES / 2, `too few value comparisons: ${bothErrors} of ${compared} were errors`)
})

test('baton eval prints literals that cel-js reads back to the same value', () => {
  const exprs = ['1 + 2', '[1, 2, 3].map(x, x * 2)', '"a\\"b" + "c"', '2.5 * 2.0', '[true, false]', '-7 / 2', '7 % -3']
  for (const e of exprs) {
    const out = execFileSync(BIN, ['eval', e], {encoding: 'utf8'}).trim()
    assert.ok(same(parseLiteral(out), tagJs(new Environment().evaluate(out))), `${e} -> ${out}`)
    assert.ok(same(parseLiteral(out), tagJs(new Environment().evaluate(e))), `${e}: baton ${out}`)
  }
})

// Helpers for the ingestion and profile end-to-end tests: start the real
// `baton serve` on 127.0.0.1 port 0 with a fresh data directory and a YAML
// config, talk HTTP to it, stop it with SIGTERM (or SIGKILL) and start it
// again on the same data. Nothing here sleeps to decide an outcome: waits
// poll with a deadline.
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
export const batonBin = process.env.BATON_BIN
  ? path.resolve(process.env.BATON_BIN)
  : path.join(repoRoot, 'build/src/baton')
/** Sanitizer builds are several times slower: deadlines (never assertions) scale by this. */
export const slow = /asan|sanitize/i.test(batonBin) ? 4 : 1

const live = new Set()
process.on('exit', () => {
  for (const p of live) try { p.kill('SIGKILL') } catch { /* gone */ }
})

export const delay = (ms) => new Promise((r) => setTimeout(r, ms))

/** Polls fn() until it returns a truthy value, or throws naming `what` and the last value. */
export async function waitFor(fn, {timeoutMs = 15000 * slow, intervalMs = 20, what = 'condition'} = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      const l = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${l?.slice(0, 500)})`)
    }
    await delay(intervalMs)
  }
}

export function tempDir(prefix = 'baton-e2e3-') {
  return mkdtempSync(path.join(os.tmpdir(), prefix))
}

export const basic = (key) => 'Basic ' + Buffer.from(`${key}:`).toString('base64')

/**
 * Writes a config: sources [{name, key}], admin [{key, scopes}], and sections
 * (limits, engine, identity) of scalar or list values.
 */
export function configYaml({sources, admin, limits, engine, identity}) {
  const out = ['sources:']
  for (const s of sources) out.push(`  - name: ${s.name}`, `    write_key: ${s.key}`)
  out.push('admin_keys:')
  for (const a of admin) out.push(`  - name: ${a.name ?? 'k'}`, `    key: ${a.key}`, `    scopes: [${a.scopes.join(', ')}]`)
  for (const [name, sec] of Object.entries({limits, engine, identity})) {
    if (!sec) continue
    out.push(`${name}:`)
    for (const [k, v] of Object.entries(sec)) out.push(`  ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`)
  }
  return out.join('\n') + '\n'
}

/**
 * One HTTP request with exact control of headers and body bytes (no
 * keep-alive, so a stopped server leaves no pooled socket behind).
 * Returns {status, headers, text, json}.
 */
export function request(url, {method = 'GET', headers = {}, body, timeoutMs = 30000 * slow} = {}) {
  return new Promise((resolve, reject) => {
    const buf = body === undefined ? null
      : Buffer.isBuffer(body) ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    const h = {...headers}
    const chunked = Object.keys(h).some((k) => k.toLowerCase() === 'transfer-encoding')
    if (buf && !chunked && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) h['Content-Length'] = buf.length
    const req = http.request(url, {method, headers: h, agent: false}, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({status: res.statusCode, headers: res.headers, text, json})
      })
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.on('error', reject)
    // Chunked: several writes, so the server cannot know the size up front.
    if (buf && chunked) for (let i = 0; i < buf.length; i += 4096) req.write(buf.subarray(i, i + 4096))
    else if (buf) req.write(buf)
    req.end()
  })
}

/**
 * A Baton node on its own data directory. `await Node.create(t, opts)` writes
 * the config and starts it; start()/stop()/kill() run it again on the same
 * data. opts: sources, admin (extra admin keys), limits, engine, identity.
 * Default keys: writeKey (source "web") and adminKey (scope admin).
 */
export class Node {
  static async create(t, opts = {}) {
    const n = new Node()
    n.dir = tempDir()
    n.dataDir = path.join(n.dir, 'data')
    n.writeKey = 'wk_e2e3_web_key'
    n.adminKey = 'ak_e2e3_admin_key'
    const sources = opts.sources ?? [{name: 'web', key: n.writeKey}]
    const admin = [{name: 'ops', key: n.adminKey, scopes: ['admin']}, ...(opts.admin ?? [])]
    n.configFile = path.join(n.dir, 'baton.yaml')
    writeFileSync(n.configFile, configYaml({sources, admin, limits: opts.limits, engine: opts.engine,
      identity: opts.identity}))
    n.runs = []
    t.after(async () => {
      await n.kill()
      if (!process.env.BATON_KEEP) rmSync(n.dir, {recursive: true, force: true})
    })
    await n.start()
    return n
  }

  /** Starts `baton serve` and resolves once it logs "listening" (after replay). */
  async start() {
    const argv = ['serve', '--config', this.configFile, '--listen', '127.0.0.1:0', '--data-dir', this.dataDir]
    const proc = spawn(batonBin, argv, {stdio: ['ignore', 'pipe', 'pipe']})
    live.add(proc)
    const run = {proc, stderr: '', stdout: ''}
    this.runs.push(run)
    this.proc = proc
    run.exited = new Promise((resolve) => proc.on('close', (code, signal) => {
      live.delete(proc)
      run.exit = {code, signal}
      resolve(run.exit)
    }))
    proc.stdout.on('data', (d) => { run.stdout += d })
    this.port = await new Promise((resolve, reject) => {
      let partial = ''
      const timer = setTimeout(() => reject(new Error(`no "listening" log line in time:\n${run.stderr}`)), 30000 * slow)
      proc.stderr.on('data', (d) => {
        run.stderr += d
        partial += d
        let nl
        while ((nl = partial.indexOf('\n')) >= 0) {
          const line = partial.slice(0, nl)
          partial = partial.slice(nl + 1)
          let j
          try { j = JSON.parse(line) } catch { continue }
          if (j.msg === 'listening') { clearTimeout(timer); resolve(j.port) }
        }
      })
      run.exited.then((e) => { clearTimeout(timer); reject(new Error(`baton exited ${JSON.stringify(e)}:\n${run.stderr}`)) })
    })
    this.url = `http://127.0.0.1:${this.port}`
    return this
  }

  get stderr() { return this.runs.map((r) => r.stderr).join('') }

  /** SIGTERM, then waits for the exit; the exit must be clean (status 0, no sanitizer report). */
  async stop() {
    const run = this.runs.at(-1)
    if (!run || run.exit) return run?.exit
    run.proc.kill('SIGTERM')
    const t = setTimeout(() => run.proc.kill('SIGKILL'), 30000 * slow)
    const e = await run.exited
    clearTimeout(t)
    if (e.code !== 0 || /AddressSanitizer|LeakSanitizer|runtime error:/.test(run.stderr))
      throw new Error(`baton did not stop cleanly: ${JSON.stringify(e)}\n${run.stderr.slice(-4000)}`)
    return e
  }

  /** SIGKILL: no chance to flush or checkpoint anything. */
  async kill() {
    const run = this.runs.at(-1)
    if (!run || run.exit) return run?.exit
    run.proc.kill('SIGKILL')
    return run.exited
  }

  /** POST to an ingest path with the write key as the Basic user (key null: no header). */
  ingest(pathname, body, {key = this.writeKey, headers = {}} = {}) {
    const h = {'Content-Type': 'application/json', ...headers}
    if (key !== null) h.Authorization = basic(key)
    return request(this.url + pathname, {method: 'POST', headers: h, body})
  }

  /** An admin request with a Bearer key (null: none). */
  admin(method, pathname, {body, key = this.adminKey, headers = {}} = {}) {
    const h = {...headers}
    if (key !== null) h.Authorization = `Bearer ${key}`
    if (body !== undefined && !h['Content-Type']) h['Content-Type'] = 'application/json'
    return request(this.url + pathname, {method, headers: h, body})
  }

  async stats() {
    const r = await this.admin('GET', '/v1/stats')
    if (r.status !== 200) throw new Error(`GET /v1/stats: ${r.status} ${r.text}`)
    return r.json
  }

  /** Waits until the engine has applied everything durable now; returns the stats then. */
  async settled() {
    const target = (await this.stats()).log.durable_lsn
    return waitFor(async () => {
      const s = await this.stats()
      return s.engine.applied_lsn >= target && s
    }, {what: `engine.applied_lsn >= ${target}`})
  }

  /** GET /v1/profiles/{id}[?by=]: the parsed profile, or null on 404 (other statuses throw). */
  async profile(id, by) {
    const r = await this.admin('GET', `/v1/profiles/${encodeURIComponent(id)}${by ? `?by=${encodeURIComponent(by)}` : ''}`)
    if (r.status === 404) return null
    if (r.status !== 200) throw new Error(`GET profile ${id}: ${r.status} ${r.text}`)
    return r.json
  }

  /** Every timeline entry, newest first, following `next` with pages of `limit`; returns {entries, pages}. */
  async timeline(id, {limit = 50, by} = {}) {
    const entries = []
    let cursor, pages = 0
    for (;;) {
      const q = new URLSearchParams({limit: String(limit)})
      if (cursor) q.set('cursor', cursor)
      if (by) q.set('by', by)
      const r = await this.admin('GET', `/v1/profiles/${encodeURIComponent(id)}/events?${q}`)
      if (r.status !== 200) throw new Error(`GET events ${id}: ${r.status} ${r.text}`)
      pages++
      entries.push(...r.json.events)
      if (!r.json.next) break
      if (pages > 10000) throw new Error('the timeline cursor never ends')
      cursor = r.json.next
    }
    return {entries, pages}
  }
}

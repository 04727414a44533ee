// The unmodified @segment/analytics-next browser build (its UMD bundle from
// node_modules) in headless Chromium, on a page served from another origin
// than Baton's: page, track and identify calls reach Baton as the library
// sends them (text/plain bodies with the write key inside, short paths, CORS),
// and identify merges the browser's anonymous profile into the user's.
// Nothing leaves 127.0.0.1: settings are given inline, the lazy bundles are
// served by the page server, and any other request is aborted and listed.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {existsSync, readFileSync} from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {chromium} from 'playwright-core'
import {Node, waitFor} from './support/baton.mjs'

const require = createRequire(import.meta.url)
const umdDir = path.join(path.dirname(require.resolve('@segment/analytics-next/package.json')), 'dist/umd')
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'

/** The page's origin: the test page and analytics-next's bundles (any path ending in a bundle's name). */
async function pageServer(html) {
  const served = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    served.push(url.pathname)
    if (url.pathname === '/') {
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'})
      return res.end(html)
    }
    const file = path.join(umdDir, path.basename(url.pathname))
    if (url.pathname.endsWith('.js') && existsSync(file)) {
      res.writeHead(200, {'Content-Type': 'application/javascript'})
      return res.end(readFileSync(file))
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {served, url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()) })}
}

test('analytics-next in headless Chromium, from another origin: calls arrive, identify merges', {timeout: 120000}, async (t) => {
  const node = await Node.create(t)
  const USER = 'web-user-1'
  // The user is known already (e.g. from the server side), so the browser's anonymous profile
  // will be merged into theirs.
  const r0 = await node.ingest('/v1/identify', {userId: USER, traits: {plan: 'pro'}, messageId: 'server-side-1'})
  assert.equal(r0.status, 200)

  const html = `<!doctype html><html><head><title>shop</title>
<script src="/analytics-next/bundles/index.js"></script></head><body><h1>Shop</h1>
<script>
  window.calls = [];
  // load() returns a buffered AnalyticsBrowser; awaiting it gives [analytics, context].
  window.analytics = AnalyticsNext.AnalyticsBrowser.load({
    writeKey: ${JSON.stringify(node.writeKey)},
    cdnURL: location.origin,
    cdnSettings: {
      integrations: {'Segment.io': {apiKey: ${JSON.stringify(node.writeKey)}, apiHost: '127.0.0.1:${node.port}/v1',
        protocol: 'http'}},
      plugins: [], remotePlugins: [], metrics: {sampleRate: 0},
    },
  }, {integrations: {'Segment.io': {apiHost: '127.0.0.1:${node.port}/v1', protocol: 'http'}}});
</script></body></html>`
  const site = await pageServer(html)
  t.after(site.close)
  assert.notEqual(new URL(site.url).port, String(node.port), 'another origin')

  const browser = await chromium.launch({executablePath: CHROMIUM, args: ['--headless', '--no-sandbox',
    '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync']})
  t.after(() => browser.close())
  const page = await browser.newPage()
  const external = []
  await page.route('**/*', (route) => {
    const u = new URL(route.request().url())
    if (u.hostname === '127.0.0.1') return route.continue()
    external.push(u.href)
    return route.abort()
  })
  const toBaton = [] // {method, path, contentType, body, status, acao}
  page.on('response', async (res) => {
    const req = res.request()
    const u = new URL(req.url())
    if (u.port !== String(node.port)) return
    toBaton.push({method: req.method(), path: u.pathname, contentType: req.headers()['content-type'],
      body: req.postData(), status: res.status(), acao: res.headers()['access-control-allow-origin']})
  })
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(site.url + '/')

  // Anonymous first: a page view and a product view. The library's promises resolve once sent.
  const anon = await page.evaluate(async () => {
    const [a] = await window.analytics
    await a.page('Shop', 'Home', {section: 'front'})
    await a.track('Product Viewed', {sku: 'SKU-9', price: 12.5})
    return a.user().anonymousId()
  })
  assert.match(anon, /^[0-9a-f-]{36}$/, 'an anonymousId from the library')
  await waitFor(async () => (await node.profile(anon))?.eventCount === 2, {what: 'the anonymous events at Baton'})
  const before = await node.profile(anon)
  assert.equal(before.userId, null)
  assert.equal(before.key, `a:${anon}`)

  // Login: identify with the userId, then a track as the user.
  await page.evaluate(async (user) => {
    const [a] = await window.analytics
    await a.identify(user, {email: 'Web.User@Example.com', name: 'Web User'})
    await a.track('Signed In', {method: 'password'})
  }, USER)
  const p = await waitFor(async () => {
    const q = await node.profile(USER)
    return q?.eventCount === 5 && q
  }, {what: 'the user profile with all five events'})
  assert.equal(p.key, `u:${USER}`)
  assert.deepEqual(p.merged, [`a:${anon}`])
  assert.deepEqual(p.anonymousIds, [anon])
  assert.deepEqual(p.traits, {plan: 'pro', email: 'Web.User@Example.com', name: 'Web User'})
  assert.equal((await node.profile(anon)).key, `u:${USER}`, 'the anonymousId now finds the user')
  assert.equal((await node.profile('web.user@example.com', 'email')).key, `u:${USER}`)

  const {entries} = await node.timeline(USER)
  const calls = entries.filter((e) => !e.type.startsWith('baton.')).reverse()
  assert.deepEqual(calls.map((e) => [e.type, e.event ?? e.name ?? null]), [
    ['identify', null], ['page', 'Home'], ['track', 'Product Viewed'], ['identify', null], ['track', 'Signed In']])
  const merge = entries.find((e) => e.type === 'baton.merge')
  assert.deepEqual([merge.other, merge.reason], [`a:${anon}`, 'anonymousId seen with userId'])
  const [, pv, viewed, ident, signed] = calls
  assert.equal(pv.category, 'Shop')
  assert.equal(pv.properties.section, 'front')
  assert.equal(pv.context.page.url, site.url + '/')
  assert.equal(pv.context.library.name, 'analytics.js')
  assert.deepEqual([viewed.properties.sku, viewed.properties.price, viewed.anonymousId], ['SKU-9', 12.5, anon])
  assert.deepEqual([ident.userId, ident.anonymousId], [USER, anon])
  assert.deepEqual([signed.userId, signed.anonymousId], [USER, anon])
  for (const e of calls.slice(1)) {
    assert.ok(!('writeKey' in e), 'the write key is not stored')
    assert.match(e.messageId, /^ajs-next-/)
    assert.ok(Math.abs(Date.parse(e.timestamp) - Date.parse(e.receivedAt)) < 5000, 'normalised timestamp')
  }

  // What the browser sent: text/plain bodies carrying the write key, to the short paths,
  // answered 200 with CORS.
  const sent = toBaton.filter((r) => r.method === 'POST')
  assert.deepEqual(sent.map((r) => r.path), ['/v1/p', '/v1/t', '/v1/i', '/v1/t'])
  for (const r of sent) {
    assert.match(r.contentType, /^text\/plain/)
    assert.equal(JSON.parse(r.body).writeKey, node.writeKey)
    assert.equal(r.status, 200)
    assert.equal(r.acao, '*')
  }

  // A request that needs a CORS preflight (JSON, Authorization header) works from the page too.
  const pre = await page.evaluate(async ([url, auth]) => {
    const r = await fetch(url + '/v1/track', {method: 'POST', headers: {'Content-Type': 'application/json',
      Authorization: auth}, body: JSON.stringify({userId: 'web-user-2', event: 'Preflighted'})})
    return [r.status, await r.text()]
  }, [node.url, 'Basic ' + Buffer.from(`${node.writeKey}:`).toString('base64')])
  // (The browser must have had the preflight answered to send it at all: a refused preflight
  // makes fetch throw.)
  assert.deepEqual(pre, [200, '{"success":true}'])
  // 200 means durable; the engine applies it right after, so wait for that before reading.
  await node.settled()
  assert.equal((await node.profile('web-user-2')).eventCount, 1)
  // A wrong key from the browser: 401, readable by the page thanks to CORS.
  const bad = await page.evaluate(async (url) => {
    const r = await fetch(url + '/v1/t', {method: 'POST', headers: {'Content-Type': 'text/plain'},
      body: JSON.stringify({userId: 'web-user-3', event: 'X', writeKey: 'wk_wrong_key_1'})})
    return [r.status, (await r.json()).code]
  }, node.url)
  assert.deepEqual(bad, [401, 'invalid_write_key'])
  await node.settled()
  assert.equal(await node.profile('web-user-3'), null)

  assert.deepEqual(pageErrors, [])
  t.diagnostic(`bundles served: ${[...new Set(site.served)].join(' ')}; external requests aborted: ${external.length ? external.join(' ') : 'none'}`)
  await node.stop()
})

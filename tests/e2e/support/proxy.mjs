// A recording HTTP proxy on 127.0.0.1: forwards every request unchanged to a
// target and remembers what went through (method, path, headers, raw body
// bytes, the target's status). Tests use it to see exactly what an unmodified
// client library sent (e.g. that its bodies really were gzip) without
// touching the library. policy(i) may return 'swallow' for the i-th request
// (from 0): it is forwarded and answered by the target, but the answer never
// reaches the client (a lost response), whose connection stays open.
import http from 'node:http'

export async function recordingProxy(target, policy = () => 'pass') {
  const seen = []
  const server = http.createServer((req, res) => {
    const action = policy(seen.length)
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const entry = {method: req.method, path: req.url, headers: req.headers, body}
      seen.push(entry)
      const headers = {...req.headers, host: new URL(target()).host}
      delete headers['transfer-encoding']
      headers['content-length'] = String(body.length)
      const up = http.request(target() + req.url, {method: req.method, headers, agent: false}, (ur) => {
        entry.status = ur.statusCode
        const out = []
        ur.on('data', (c) => out.push(c))
        ur.on('end', () => {
          entry.answer = Buffer.concat(out).toString('utf8')
          if (action === 'swallow') return
          res.writeHead(ur.statusCode, ur.headers)
          res.end(Buffer.concat(out))
        })
      })
      up.on('error', (e) => { entry.error = e.message; res.writeHead(502); res.end() })
      up.end(body)
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    seen,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()) }),
  }
}

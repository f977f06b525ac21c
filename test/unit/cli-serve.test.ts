// `kvstore serve` as a process: usage errors, exit statuses, and a graceful SIGTERM that
// answers the request running and leaves every acknowledged write in the directory.
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/store.js'
import { startKvstoreServer } from '../helpers/kvstore-server.js'
import { plain, RespClient } from '../helpers/resp-client.js'
import { tmpDir } from '../helpers/tmp.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

function serve(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, 'serve', ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

describe('kvstore serve', () => {
  it('documents itself, and refuses bad flags with one line and exit status 2', () => {
    const help = serve(['--help'])
    expect(help.code).toBe(0)
    expect(help.out).toMatch(/^Usage: kvstore serve/)
    for (const line of help.out.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
    for (const bad of [['--port', '70000'], ['--port', 'x'], ['--sync', 'sometimes'], ['--maxclients', '0'], ['--dir', 'a', '--file', 'b'], ['--nosuch'], ['--requirepass', '']]) {
      const r = serve(bad)
      expect(r.code, bad.join(' ')).toBe(2)
      expect(r.err.trim().split('\n'), bad.join(' ')).toHaveLength(2)
      expect(r.err).toContain("Run 'kvstore serve --help'")
    }
  })

  it('exits 3 with the reason when the port is taken', async () => {
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (taken.address() as { port: number }).port
      const r = serve(['--dir', tmpDir(), '--port', String(port)])
      expect(r.code).toBe(3)
      expect(r.err).toMatch(/cannot serve .*EADDRINUSE/)
    } finally {
      taken.close()
    }
  })

  it('SIGTERM: the pipeline sent before it is answered, the process exits 0, and the writes are in the directory', async () => {
    const dir = tmpDir()
    const server = await startKvstoreServer({ dir })
    const client = await RespClient.connect(server.port)
    const n = 2000
    const replies = client.pipeline(Array.from({ length: n }, (_, i) => ['SET', `k${i}`, String(i)]))
    const first = await client.read().catch(() => undefined)
    expect(first === undefined ? undefined : plain(first.value)).toBe('OK')
    const stopped = server.stop('SIGTERM')
    // Every reply that arrives is an acknowledged, durable write.
    let acked = 1
    for (;;) {
      const r = await client.read(5000).catch(() => undefined)
      if (r === undefined) break
      expect(plain(r.value)).toBe('OK')
      acked++
    }
    void replies.catch(() => undefined)
    expect(await stopped).toBe(0)
    const store = await Store.open<string>({ dir })
    try {
      for (let i = 0; i < acked; i++) expect(await store.get(`k${i}`)).toBe(String(i))
    } finally {
      await store.close()
    }
    expect(server.log()).toContain('kvstore: stopped')
  }, 60_000)
})

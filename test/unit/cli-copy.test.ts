// `kvstore copy <from> <to>`, run from source as a child process: directories, snapshot
// files and etcd clusters (real ones, each test starting and stopping its own).
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { EtcdStore } from '../../src/etcd/index.js'
import { parseEndpoints, parseLocation } from '../../src/cli/locations.js'
import { withEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js'
import { tmpDir } from '../helpers/tmp.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const PTY = fileURLToPath(new URL('../helpers/pty-session.py', import.meta.url))
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/** Where the CLI children make their temporary files (TMPDIR), one directory per test file run. */
const SCRATCH = mkdtempSync(join(tmpdir(), 'kvstore-cli-copy-'))
afterAll(() => rmSync(SCRATCH, { recursive: true, force: true }))

/** Run the CLI without blocking the event loop; stdin and stderr are pipes, never a TTY. */
function cli(args: string[], cwd?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, TMPDIR: SCRATCH }
    const child = execFile(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 }, (error, out, err) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, out, err })
    })
    child.stdin?.end()
  })
}

/** `etcd://host:port,host:port/namespace` for a cluster. */
function etcdUrl(cluster: EtcdCluster, namespace = ''): string {
  return `etcd://${cluster.endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',')}${namespace === '' ? '' : `/${namespace}`}`
}

const SUMMARY = /^copied (\d+) keys from (\S+) to (\S+) in \d+ ms\n$/

/** The temporary files the CLI children left behind. */
function leftoverTemps(): string[] {
  return readdirSync(SCRATCH).filter((f) => f.startsWith('kvstore-copy-'))
}

type AnyStore = Store<unknown> | EtcdStore<unknown>

/** What a store holds, read back through the API: every key with its type, value and expiry. */
async function contents(store: AnyStore): Promise<Record<string, { type: string | undefined; value: unknown; expiresAt: number | undefined }>> {
  const out: Record<string, { type: string | undefined; value: unknown; expiresAt: number | undefined }> = {}
  for (const key of await store.keys('*')) {
    const type = await store.type(key)
    const value = type === 'list' ? await store.lrange(key, 0, -1) : type === 'hash' ? Object.fromEntries(await store.hgetall(key)) : await store.get(key)
    const ttl = await store.ttl(key)
    out[key] = { type, value, expiresAt: ttl < 0 ? undefined : Date.now() + ttl }
  }
  return out
}

/** `actual` equals `expected`, with every expiry within 1 s of the expected one. */
function expectSameContents(actual: Awaited<ReturnType<typeof contents>>, expected: Awaited<ReturnType<typeof contents>>): void {
  expect(Object.keys(actual)).toEqual(Object.keys(expected))
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[key]
    expect({ key, type: got?.type, value: got?.value }).toEqual({ key, type: want.type, value: want.value })
    if (want.expiresAt === undefined) expect(got?.expiresAt, key).toBeUndefined()
    else expect(Math.abs((got?.expiresAt ?? 0) - want.expiresAt), key).toBeLessThan(1000)
  }
}

describe('kvstore copy', () => {
  it('copies a directory to etcd and back: values, types, lists, hashes and expiries', async () => {
    await withEtcdCluster(async (cluster) => {
      const base = tmpDir()
      const src = join(base, 'src')
      const back = join(base, 'back')
      const at = Date.now() + 30 * 60_000
      const s = await Store.open<unknown>({ dir: src })
      await s.set('greeting', 'hello, world')
      await s.set('multi', 'line one\nline two — ünïcödé 🎉')
      await s.set('count', 42)
      await s.set('doc', { a: [1, 2, { b: null }], ok: true })
      await s.set('bytes', new Uint8Array([0, 1, 2, 255]))
      await s.rpush('queue', 'first', 'second', 'third')
      await s.hset('user:1', { name: 'Alice', email: 'alice@example.com' })
      await s.set('session', 'token', { expiresAt: at })
      await s.hset('cache', { k: 'v' })
      await s.expireAt('cache', at + 5000)
      const original = await contents(s)
      await s.close()
      expect(Object.keys(original)).toHaveLength(9)

      const url = etcdUrl(cluster, 'copy-test/')
      const up = await cli(['copy', src, url])
      expect(up.err).toBe('')
      expect(up.code).toBe(0)
      expect(up.out).toMatch(SUMMARY)
      expect(SUMMARY.exec(up.out)?.slice(1)).toEqual(['9', src, url])

      // In etcd, under the namespace, read through EtcdStore.
      const etcd = await EtcdStore.open<unknown>({ endpoints: cluster.endpoints, namespace: 'copy-test/' })
      try {
        expectSameContents(await contents(etcd), original)
        expect((await etcd.getEntry('session'))?.expiresAt).toBe(at)
        expect(await etcd.get('bytes')).toEqual(new Uint8Array([0, 1, 2, 255]))
      } finally {
        await etcd.close()
      }

      const down = await cli(['copy', url, back])
      expect(down.err).toBe('')
      expect(down.code).toBe(0)
      expect(SUMMARY.exec(down.out)?.slice(1)).toEqual(['9', url, back])
      const b = await Store.open<unknown>({ dir: back })
      try {
        expectSameContents(await contents(b), original)
        expect((await b.getEntry('session'))?.expiresAt).toBe(at)
        expect(await b.get('bytes')).toEqual(new Uint8Array([0, 1, 2, 255]))
        expect(await b.get('count')).toBe(42)
      } finally {
        await b.close()
      }
      expect(leftoverTemps()).toEqual([])
    })
  }, 180_000)

  it('refuses a non-empty target unless --force, and then replaces its contents', async () => {
    await withEtcdCluster(async (cluster) => {
      const src = join(tmpDir(), 'src')
      const s = await Store.open<unknown>({ dir: src })
      await s.set('new', 'from source')
      await s.rpush('list', 'a')
      await s.close()
      const url = etcdUrl(cluster, 'target')
      const target = await EtcdStore.open<unknown>({ endpoints: cluster.endpoints, namespace: 'target' })
      try {
        await target.set('old', 'was here')

        const refused = await cli(['copy', src, url])
        expect(refused.code).toBe(1)
        expect(refused.out).toBe('')
        expect(refused.err).toBe(`kvstore copy: ${url} is not empty (1 keys); copying replaces its contents: give --force to do that\n`)
        expect(await target.keys()).toEqual(['old'])

        const forced = await cli(['copy', '--force', src, url])
        expect(forced.err).toBe('')
        expect(forced.code).toBe(0)
        expect(SUMMARY.exec(forced.out)?.[1]).toBe('2')
        expect(await target.keys()).toEqual(['list', 'new'])
        expect(await target.get('new')).toBe('from source')
      } finally {
        await target.close()
      }

      // A non-empty directory is refused the same way, and keeps what it had.
      const dir = join(tmpDir(), 'dir')
      const d = await Store.open<unknown>({ dir })
      await d.set('mine', 1)
      await d.close()
      const r = await cli(['copy', url, dir])
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/is not empty \(1 keys\).*give --force to do that\n$/)
      const again = await Store.open<unknown>({ dir })
      try {
        expect(await again.keys()).toEqual(['mine'])
      } finally {
        await again.close()
      }
      expect(leftoverTemps()).toEqual([])
    }, { members: 1 })
  }, 180_000)

  it('copies into and out of snapshot-file stores (file:<path>)', async () => {
    await withEtcdCluster(async (cluster) => {
      const base = tmpDir()
      const file = join(base, 'data.json')
      const f = await Store.open<unknown>({ file })
      await f.set('a', 'x')
      await f.lpush('l', '1', '2')
      await f.close()
      const url = etcdUrl(cluster)
      expect((await cli(['copy', `file:${file}`, url])).code).toBe(0)
      const out = join(base, 'out.kvs')
      const r = await cli(['copy', url, `file:${out}`])
      expect(r.code).toBe(0)
      expect(SUMMARY.exec(r.out)?.slice(1)).toEqual(['2', url, `file:${out}`])
      const g = await Store.open<unknown>({ file: out })
      try {
        expect(await g.get('a')).toBe('x')
        expect(await g.lrange('l', 0, -1)).toEqual(['2', '1'])
      } finally {
        await g.close()
      }
    }, { members: 1 })
  }, 180_000)

  it('explains bad locations in one line and exits non-zero', async () => {
    const base = tmpDir()
    const cases: [string[], number, string][] = [
      [['copy', 'http://127.0.0.1:2379', join(base, 'x')], 2, "'http://127.0.0.1:2379': unknown scheme 'http://'; a store is a directory path, file:<path> or etcd://host:port[,host:port...][/namespace]"],
      [['copy', join(base, 'x'), 'etcd://'], 2, "'etcd://' names no etcd host"],
      [['copy', join(base, 'x'), 'etcd://127.0.0.1:99999'], 2, "'127.0.0.1:99999' is not host:port"],
      [['copy', join(base, 'x'), 'etcd://host name:1'], 2, "'host name:1' is not host:port"],
      [['copy', join(base, 'x'), 'etcd:127.0.0.1:2379'], 2, "'etcd:127.0.0.1:2379' is not an etcd URL"],
      [['copy', join(base, 'x'), 'file:'], 2, "'file:' names no file"],
      [['copy', join(base, 'x')], 2, 'needs <from> and <to>'],
      [['copy', 'a', 'b', 'c'], 2, "got also 'c'"],
      [['copy', '--bogus', 'a', 'b'], 2, "Unknown option '--bogus'"],
      [['copy', base, base], 2, 'are the same store'],
      [['copy', join(base, 'missing'), join(base, 'y')], 3, `cannot open ${join(base, 'missing')}: no store directory there`],
      [['copy', `file:${join(base, 'missing.json')}`, join(base, 'y')], 3, 'no file there'],
    ]
    // Three processes at a time: each is a fresh Node with tsx.
    const results: Awaited<ReturnType<typeof cli>>[] = []
    for (let i = 0; i < cases.length; i += 3) results.push(...(await Promise.all(cases.slice(i, i + 3).map(([args]) => cli(args)))))
    for (const [i, [args, code, message]] of cases.entries()) {
      const r = results[i] as Awaited<ReturnType<typeof cli>>
      expect(r.code, args.join(' ')).toBe(code)
      expect(r.out).toBe('')
      expect(r.err).toMatch(/^kvstore copy: [^\n]*\n$/)
      expect(r.err).toContain(message)
    }
    // Nothing was created for the refused targets.
    expect(existsSync(join(base, 'y'))).toBe(false)
    expect(existsSync(join(base, 'x'))).toBe(false)
  }, 180_000)

  it('fails with exit status 3 when the etcd cluster does not answer', async () => {
    await withEtcdCluster(async (cluster) => {
      const src = join(tmpDir(), 'src')
      const s = await Store.open<unknown>({ dir: src })
      await s.set('a', 1)
      await s.close()
      const url = etcdUrl(cluster)
      await cluster.stop()
      const r = await cli(['copy', src, url])
      expect(r.code).toBe(3)
      expect(r.out).toBe('')
      expect(r.err).toMatch(new RegExp(`^kvstore copy: cannot open ${url}: [^\\n]*\\(KV_UNAVAILABLE\\)\\n$`))
      expect(leftoverTemps()).toEqual([])
    }, { members: 1 })
  }, 120_000)

  it('documents itself, and shows progress on a terminal only', async () => {
    const help = await cli(['copy', '--help'])
    expect(help.code).toBe(0)
    expect(help.out).toContain('Usage: kvstore copy <from> <to> [--force]')
    expect(help.out).toContain('REPLACES the contents of <to>')
    expect(help.out).toContain('etcd://host:port[,host:port...][/namespace]')

    const base = tmpDir()
    const s = await Store.open<unknown>({ dir: join(base, 'a') })
    for (let i = 0; i < 50; i++) await s.set(`k${i}`, i)
    await s.close()
    // Through a pseudo-terminal: stderr is a TTY, so the phases show (escapes and \r removed).
    const r = spawnSync('python3', [PTY, base, process.execPath, '--import', TSX, MAIN, 'copy', 'a', 'file:b.json'], {
      input: '',
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: SCRATCH },
      timeout: 60_000,
    })
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('reading a…')
    expect(r.stdout).toContain('writing 50 keys to file:b.json…')
    expect(r.stdout).toMatch(/copied 50 keys from a to file:b\.json in \d+ ms\n$/)
    // Without a terminal: only the summary.
    const piped = await cli(['copy', '--force', 'a', 'file:b.json'], base)
    expect(piped.err).toBe('')
    expect(piped.out).toMatch(/^copied 50 keys from a to file:b\.json in \d+ ms\n$/)
  }, 120_000)
})

describe('store locations', () => {
  it('reads directory paths, file:<path> and etcd:// URLs', () => {
    expect(parseLocation('./data')).toEqual({ kind: 'dir', path: './data' })
    expect(parseLocation('a:b')).toEqual({ kind: 'dir', path: 'a:b' })
    expect(parseLocation('file:snap.json')).toEqual({ kind: 'file', path: 'snap.json' })
    expect(parseLocation('etcd://10.0.0.1:2379')).toEqual({ kind: 'etcd', endpoints: ['http://10.0.0.1:2379'], namespace: '' })
    expect(parseLocation('etcd://a:1,b.example:2,[::1]:3/app%2Fone/')).toEqual({
      kind: 'etcd',
      endpoints: ['http://a:1', 'http://b.example:2', 'http://[::1]:3'],
      namespace: 'app/one/',
    })
    expect(parseLocation('etcd://localhost')).toEqual({ kind: 'etcd', endpoints: ['http://localhost:2379'], namespace: '' })
    expect(() => parseLocation('etcd://a:1,,b:2')).toThrow("'' is not host:port")
    expect(() => parseLocation('etcd://a:0')).toThrow("'a:0' is not host:port")
    expect(() => parseLocation('etcd://a:1/%zz')).toThrow('not valid percent-encoding')
    expect(() => parseLocation('https://a:1')).toThrow("unknown scheme 'https://'")
  })

  it('reads --etcd URL lists', () => {
    expect(parseEndpoints('http://a:1, https://b:2/ ,')).toEqual(['http://a:1', 'https://b:2'])
    expect(() => parseEndpoints('http://user:pw@a:1')).toThrow('no path, query or credentials')
  })
})

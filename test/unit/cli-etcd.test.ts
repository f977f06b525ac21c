// `kvstore --etcd <urls>`: the CLI over EtcdStore, run from source as a child process
// against a real etcd cluster that each test starts and stops.
import { execFile } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { EtcdStore } from '../../src/etcd/index.js'
import { withEtcdCluster } from '../helpers/etcd-cluster.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/** Run the CLI without blocking the event loop; stdin is `input` (a pipe, never a TTY). */
function cli(args: string[], input = ''): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', TSX, MAIN, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, out, err) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, out, err })
    })
    child.stdin?.end(input)
  })
}

/** A loopback port nobody listens on. */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('kvstore --etcd', () => {
  it('runs one-shot commands (SET, GET, KEYS) on the cluster, over every endpoint given', async () => {
    await withEtcdCluster(async (cluster) => {
      const urls = cluster.endpoints.join(',')
      expect(await cli(['--etcd', urls, 'SET', 'user:1', 'Alice'])).toEqual({ code: 0, out: 'OK\n', err: '' })
      expect(await cli(['--etcd', urls, '-c', 'SET user:2 "Bob Smith"'])).toEqual({ code: 0, out: 'OK\n', err: '' })
      expect(await cli(['--etcd', urls, 'GET', 'user:1'])).toEqual({ code: 0, out: 'Alice\n', err: '' })
      expect(await cli(['--etcd', urls, 'KEYS', 'user:*'])).toEqual({ code: 0, out: 'user:1\nuser:2\n', err: '' })
      expect((await cli(['--etcd', urls, '--json', 'GET', 'user:2'])).out).toBe('"Bob Smith"\n')
      // One endpoint is enough, with blanks around the commas ignored.
      expect((await cli(['--etcd', ` ${cluster.endpoints[2] as string} ,`, 'GET', 'user:2'])).out).toBe('Bob Smith\n')
      // The data is in etcd, where any EtcdStore on the cluster finds it.
      const store = await EtcdStore.open({ endpoints: cluster.endpoints })
      try {
        expect(await store.get('user:1')).toBe('Alice')
        expect(await store.keys()).toEqual(['user:1', 'user:2'])
      } finally {
        await store.close()
      }
      // A failed command: exit status 1, the error as its reply.
      const bad = await cli(['--etcd', urls, 'INCR', 'user:1'])
      expect(bad).toEqual({ code: 1, out: '(error) ERR value is not an integer or out of range\n', err: '' })
    })
  }, 120_000)

  it('keeps namespaces apart', async () => {
    await withEtcdCluster(async (cluster) => {
      const url = cluster.endpoints[0] as string
      expect((await cli(['--etcd', url, '--namespace', 'app1/', 'SET', 'k', 'one'])).out).toBe('OK\n')
      expect((await cli(['--etcd', url, '--namespace', 'app2/', 'SET', 'k', 'two'])).out).toBe('OK\n')
      expect((await cli(['--etcd', url, '--namespace', 'app1/', 'GET', 'k'])).out).toBe('one\n')
      expect((await cli(['--etcd', url, '--namespace', 'app2/', 'GET', 'k'])).out).toBe('two\n')
      expect((await cli(['--etcd', url, 'KEYS', '*'])).out).toBe('(empty array)\n')
    }, { members: 1 })
  }, 120_000)

  it('reads commands from a pipe like the directory CLI, and answers with the store\'s errors', async () => {
    await withEtcdCluster(async (cluster) => {
      const url = cluster.endpoints[0] as string
      const input = ['SET a 1', 'INCR a', 'RPUSH l x y', 'LRANGE l 0 -1', 'HSET h f v', 'HGETALL h', 'TYPE h', 'SET t v PX 60000', 'TTL t', 'DBSIZE', 'GET l', 'SNAPSHOT', 'INFO', 'EXIT', 'GET a'].join('\n')
      const r = await cli(['--etcd', url], `${input}\n`)
      const lines = r.out.split('\n')
      expect(lines.slice(0, 17)).toEqual([
        'OK',
        '(integer) 2',
        '(integer) 2',
        '1) x',
        '2) y',
        '(integer) 1',
        '1) f',
        '2) v',
        'hash',
        'OK',
        expect.stringMatching(/^\(integer\) (59|60)$/),
        '(integer) 4',
        '(error) WRONGTYPE Operation against a key holding the wrong kind of value',
        // The store's StoreError for a command that needs what etcd does not have.
        '(error) ERR an etcd store needs a snapshot path (etcd keeps its own data)',
        expect.stringContaining('mode:etcd'),
        'Goodbye!',
        '',
      ])
      expect(lines).toHaveLength(17) // nothing after EXIT
      expect(r.err).toBe('')
      expect(r.code).toBe(1)
    }, { members: 1 })
  }, 120_000)

  it('documents --etcd and refuses bad endpoints and flag combinations with exit status 2', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.out).toContain('--etcd <urls>')
    expect(help.out).toContain('--namespace <p>')
    expect(help.out).toContain('kvstore copy <from> <to>')
    for (const [args, message] of [
      [['--etcd', '127.0.0.1:2379', 'GET', 'a'], "--etcd: '127.0.0.1:2379' is not an http:// or https:// URL"],
      [['--etcd', 'not a url', 'GET', 'a'], "--etcd: 'not a url' is not an http:// or https:// URL"],
      [['--etcd', 'http://bad host:1', 'GET', 'a'], "--etcd: 'http://bad host:1' is not a URL"],
      [['--etcd', 'ftp://h:1', 'GET', 'a'], 'is not an http:// or https:// URL'],
      [['--etcd', 'http://h:1/v3', 'GET', 'a'], 'must be just scheme, host and port'],
      [['--etcd', ',', 'GET', 'a'], '--etcd needs at least one URL'],
      [['--etcd', 'http://h:1', '--dir', 'd'], 'give one of --dir, --file and --etcd'],
      [['--namespace', 'x', 'GET', 'a'], '--namespace needs --etcd'],
      [['--etcd', 'http://h:1', '--sync', 'never'], '--sync is for directory stores'],
    ] as const) {
      const r = await cli([...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.err.split('\n')[0]).toContain(message)
      expect(r.err.split('\n').slice(1)).toEqual(['(kvstore --help shows the usage)', ''])
      expect(r.out).toBe('')
    }
  }, 120_000)

  it('fails with exit status 3 and the reason when no member answers', async () => {
    const url = `http://127.0.0.1:${await deadPort()}`
    const r = await cli(['--etcd', url, 'GET', 'a'])
    expect(r.code).toBe(3)
    expect(r.err).toMatch(new RegExp(`^kvstore: cannot open etcd ${url}: .*\\(KV_UNAVAILABLE\\)\\n$`))
    expect(r.out).toBe('')
  }, 60_000)
})

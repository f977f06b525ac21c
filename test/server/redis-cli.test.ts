// The real redis-cli against `kvstore serve` (a child process on a temporary directory):
// one-shot commands, an interactive session through a pseudo-terminal, --pipe mass insert,
// SIGTERM in the middle of a load, and SHUTDOWN. redis-cli must be installed (it comes
// with Debian's redis-server: bash scripts/install-services.sh); missing, the tests fail.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { startKvstoreServer, type KvstoreServer } from '../helpers/kvstore-server.js'
import { redisTool } from '../helpers/redis-server.js'
import { encodeCommand, RespClient } from '../helpers/resp-client.js'
import { tmpDir } from '../helpers/tmp.js'

const PTY = fileURLToPath(new URL('../helpers/pty-session.py', import.meta.url))
const MASS = 100_000

const servers: KvstoreServer[] = []

/** `kvstore serve`, killed after the test if it is still running. */
async function serve(options: Parameters<typeof startKvstoreServer>[0] = {}): Promise<KvstoreServer> {
  const s = await startKvstoreServer(options)
  servers.push(s)
  return s
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.kill()))
})

/** redis-cli with `args` against `server`, stdin `input`; its output, errors and status. */
function cli(server: KvstoreServer, args: string[], input: string | Buffer = ''): { out: string; err: string; code: number | null } {
  const r = spawnSync(redisTool('redis-cli'), ['-h', server.host, '-p', String(server.port), ...args], { input, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 })
  if (r.error !== undefined) throw r.error
  return { out: r.stdout, err: r.stderr, code: r.status }
}

/** redis-cli -p <port> through a pseudo-terminal, typing `lines` one per prompt; the screen and exit status. */
function interactive(server: KvstoreServer, lines: string[]): { screen: string; code: number | null } {
  // TERM=dumb: linenoise reads plain lines (no redrawing), so the screen is what a person sees.
  const r = spawnSync('python3', [PTY, tmpDir(), redisTool('redis-cli'), '-h', server.host, '-p', String(server.port)], {
    input: `${lines.join('\n')}\n`,
    encoding: 'utf8',
    env: { ...process.env, TERM: 'dumb', HOME: tmpDir() },
    timeout: 60_000,
  })
  if (r.error !== undefined) throw r.error
  return { screen: r.stdout, code: r.status }
}

describe('redis-cli against kvstore serve', () => {
  it('runs one-shot commands', async () => {
    const s = await serve()
    expect(cli(s, ['SET', 'a', '1'])).toMatchObject({ out: 'OK\n', code: 0 })
    expect(cli(s, ['GET', 'a'])).toMatchObject({ out: '1\n', code: 0 })
    expect(cli(s, ['INCR', 'a'])).toMatchObject({ out: '2\n', code: 0 })
    expect(cli(s, ['RPUSH', 'l', 'x', 'y'])).toMatchObject({ out: '2\n', code: 0 })
    expect(cli(s, ['LRANGE', 'l', '0', '-1'])).toMatchObject({ out: 'x\ny\n', code: 0 })
    expect(cli(s, ['GET', 'missing'])).toMatchObject({ out: '\n', code: 0 })
    // redis-cli prints an error reply followed by an empty line (and exits 0), as with redis-server.
    expect(cli(s, ['LPUSH', 'a', 'x'])).toMatchObject({ out: 'WRONGTYPE Operation against a key holding the wrong kind of value\n\n', code: 0 })
  }, 60_000)

  it('works interactively: the replies print as redis-cli prints them', async () => {
    const s = await serve()
    const prompt = `${s.host}:${s.port}> `
    const typed = ['SET greeting "hello world"', 'GET greeting', 'RPUSH l a b', 'LRANGE l 0 -1', 'INCR greeting', 'HSET h f v', 'HGETALL h', 'GET nope', 'PING', 'exit']
    const { screen, code } = interactive(s, typed)
    const replies = ['OK', '"hello world"', '(integer) 2', '1) "a"\n2) "b"', '(error) ERR value is not an integer or out of range', '(integer) 1', '1) "f"\n2) "v"', '(nil)', 'PONG']
    const expected = typed.map((t, i) => `${prompt}${t}\n${i < replies.length ? `${replies[i] as string}\n` : ''}`).join('')
    expect(screen).toBe(expected)
    expect(code).toBe(0)
  }, 60_000)

  it(`mass-inserts ${MASS.toLocaleString('en')} SETs with --pipe`, async () => {
    const s = await serve({ sync: 'never' })
    const input = Buffer.concat(Array.from({ length: MASS }, (_, i) => encodeCommand(['SET', `key:${i}`, `value:${i}`])))
    const r = cli(s, ['--pipe'], input)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`errors: 0, replies: ${MASS}`)
    expect(cli(s, ['DBSIZE']).out).toBe(`${MASS}\n`)
    expect(cli(s, ['GET', `key:${MASS - 1}`]).out).toBe(`value:${MASS - 1}\n`)
  }, 120_000)

  it('keeps every acknowledged write when SIGTERM arrives in the middle of a load, and serves them after a restart', async () => {
    const dir = tmpDir()
    const s = await serve({ dir, sync: 'never' })
    const writers = await Promise.all(Array.from({ length: 4 }, () => RespClient.connect(s.port, s.host)))
    const acked: string[] = []
    let stop = false
    const load = writers.map(async (c, w) => {
      for (let batch = 0; !stop; batch++) {
        const keys = Array.from({ length: 100 }, (_, i) => `w${w}:${batch}:${i}`)
        c.sendRaw(Buffer.concat(keys.map((k) => encodeCommand(['SET', k, `v-${k}`]))))
        for (const k of keys) {
          let reply
          try {
            reply = await c.read()
          } catch {
            return // the server closed the connection: the load is over
          }
          if (reply.raw.toString() === '+OK\r\n') acked.push(k)
        }
      }
    })
    while (acked.length < 5_000) await new Promise((r) => setTimeout(r, 10))
    const code = await s.stop('SIGTERM')
    stop = true
    await Promise.all(load)
    for (const c of writers) c.destroy()
    expect(code, s.log()).toBe(0)

    const again = await serve({ dir })
    const reader = await RespClient.connect(again.port, again.host)
    try {
      const missing: string[] = []
      for (let i = 0; i < acked.length; i += 500) {
        const keys = acked.slice(i, i + 500)
        const r = await reader.call(['MGET', ...keys])
        const values = r.value.type === 'array' ? r.value.value ?? [] : []
        keys.forEach((k, j) => {
          const v = values[j]
          if (v?.type !== 'bulk' || v.value?.toString() !== `v-${k}`) missing.push(k)
        })
      }
      expect(missing.slice(0, 10), `${missing.length} of ${acked.length} acknowledged writes missing`).toEqual([])
    } finally {
      reader.destroy()
    }
  }, 120_000)

  it('stops with exit status 0 on SHUTDOWN, with the data kept', async () => {
    const dir = tmpDir()
    const s = await serve({ dir })
    expect(cli(s, ['SET', 'kept', 'yes']).out).toBe('OK\n')
    const r = cli(s, ['SHUTDOWN'])
    expect(r.code, r.out + r.err).toBe(0)
    expect(await s.exited).toBe(0)
    const again = await serve({ dir })
    expect(cli(again, ['GET', 'kept']).out).toBe('yes\n')
  }, 60_000)
})

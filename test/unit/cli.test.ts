// The kvstore CLI, run from source as a child process (no build needed).
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const PTY = fileURLToPath(new URL('../helpers/pty-session.py', import.meta.url))
// Absolute, so the CLI can run with any working directory.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

const SEED_COMMANDS = ['SET user:1 Alice', 'GET user:1', 'SET user:2 Bob', 'KEYS user:*', 'DELETE user:1', 'SNAPSHOT', 'EXIT']

// The seed session (seed 004), without its `$ kvstore -file data.json` line.
const SEED_SCREEN = `> SET user:1 Alice
OK
> GET user:1
Alice
> SET user:2 Bob
OK
> KEYS user:*
user:1
user:2
> DELETE user:1
OK
> SNAPSHOT
Saved snapshot to data.json
> EXIT
Goodbye!
`

function cli(args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: opts.cwd,
    input: opts.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: 30_000,
  })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

describe('kvstore CLI', () => {
  it('reproduces the seed session byte for byte through a pseudo-terminal', () => {
    const cwd = tmpDir()
    const r = spawnSync('python3', [PTY, cwd, process.execPath, '--import', TSX, MAIN, '-file', 'data.json'], {
      input: `${SEED_COMMANDS.join('\n')}\n`,
      encoding: 'utf8',
      env: { ...process.env, KVSTORE_HISTORY: join(cwd, 'history') },
      timeout: 60_000,
    })
    expect(r.stdout).toBe(SEED_SCREEN)
    expect(r.status).toBe(0)
    expect(JSON.parse(readFileSync(join(cwd, 'data.json'), 'utf8')).data).toEqual({ 'user:2': { value: 'Bob', version: 2 } })
    // History was saved across runs.
    expect(readFileSync(join(cwd, 'history'), 'utf8')).toContain('KEYS user:*')
  }, 60_000)

  it('prints only the replies when commands come through a pipe', () => {
    const cwd = tmpDir()
    const r = cli(['-file', 'data.json'], { cwd, input: `${SEED_COMMANDS.join('\n')}\n` })
    expect(r.out).toBe('OK\nAlice\nOK\nuser:1\nuser:2\nOK\nSaved snapshot to data.json\nGoodbye!\n')
    expect(r.code).toBe(0)
    expect(r.err).toBe('')
  })

  it('is scriptable: --dir, exit 1 when a command fails, --json replies, one-shot commands', () => {
    const dir = join(tmpDir(), 'store')
    const ok = cli(['--dir', dir], { input: 'SET a 1\nINCR a\nGET a\nRPUSH l x y\nLRANGE l 0 -1\nGET missing\n' })
    expect(ok.out).toBe('OK\n(integer) 2\n2\n(integer) 2\n1) x\n2) y\n(nil)\n')
    expect(ok.code).toBe(0)
    const bad = cli(['--dir', dir], { input: 'GET a\nINCR l\nGET a\n' })
    expect(bad.out).toBe('2\n(error) WRONGTYPE Operation against a key holding the wrong kind of value\n2\n')
    expect(bad.code).toBe(1)
    const json = cli(['--dir', dir, '--json'], { input: 'GET a\nLRANGE l 0 -1\nGET nope\nINCR l\nTTL a\n' })
    expect(json.out.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      '2',
      ['x', 'y'],
      null,
      { error: { code: 'KV_WRONG_TYPE', message: 'WRONGTYPE Operation against a key holding the wrong kind of value' } },
      -1,
    ])
    expect(cli(['--dir', dir, 'GET', 'a']).out).toBe('2\n')
    expect(cli(['--dir', dir, '-c', 'SET b "two words"']).out).toBe('OK\n')
    expect(cli(['--dir', dir, 'GET', 'b']).out).toBe('two words\n')
    expect(cli(['--dir', dir, 'NOPE']).code).toBe(1)
  }, 60_000)

  it('explains usage errors with exit status 2, and --help / --version', () => {
    const bad = cli(['--bogus'])
    expect(bad.code).toBe(2)
    expect(bad.err.split('\n')).toEqual([expect.stringMatching(/^kvstore: .*bogus/), '(kvstore --help shows the usage)', ''])
    expect(cli(['--dir', 'a', '--file', 'b']).code).toBe(2)
    expect(cli(['--sync', 'sometimes']).code).toBe(2)
    const help = cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.out).toContain('Exit status')
    expect(cli(['--version']).out).toMatch(/^kvstore \d+\.\d+\.\d+\n$/)
  }, 60_000)

  it('opens $KVSTORE_DIR by default and says so on stderr', () => {
    const dir = join(tmpDir(), 'default')
    const r = cli([], { input: 'SET x 1\n', env: { KVSTORE_DIR: dir } })
    expect(r.err).toContain(`using store directory ${dir}`)
    expect(readdirSync(dir).some((f) => f.startsWith('wal-'))).toBe(true)
  })

  it('fails with a clear message and exit status 3 when the directory is locked', async () => {
    const dir = tmpDir()
    const holder = await Store.open({ dir })
    try {
      const r = cli(['--dir', dir], { input: 'GET a\n' })
      expect(r.code).toBe(3)
      expect(r.err).toMatch(/cannot open .*locked by process \d+.*\(KV_LOCKED\)/)
    } finally {
      await holder.close()
    }
  })

  it('--read-only inspects a directory another process holds: reads work, writes reply READONLY', async () => {
    const dir = tmpDir()
    const holder = await Store.open({ dir })
    try {
      await holder.set('a', 'one')
      await holder.rpush('l', 'x', 'y')
      const r = cli(['--dir', dir, '--read-only'], { input: 'GET a\nLRANGE l 0 -1\nSET a two\nGET a\n' })
      expect(r.out).toBe('one\n1) x\n2) y\n(error) READONLY You can\'t write against a read only replica.\none\n')
      expect(r.code).toBe(1)
      expect(await holder.get('a')).toBe('one')
      expect(cli(['--file', join(dir, 'f.json'), '--read-only', 'GET', 'a']).code).toBe(2)
      expect(cli(['--dir', dir, '--read-only', '--sync', 'never', 'GET', 'a']).code).toBe(2)
    } finally {
      await holder.close()
    }
  })

  it('refuses a corrupt WAL with exit status 3 and leaves the files untouched', async () => {
    const dir = tmpDir()
    const s = await Store.open<string>({ dir })
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, `v${i}`)
    await s.close()
    const wal = join(dir, readdirSync(dir).find((f) => f.startsWith('wal-')) as string)
    const bytes = readFileSync(wal)
    bytes[150] = (bytes[150] as number) ^ 0x55
    writeFileSync(wal, bytes)
    const before = readdirSync(dir).sort()
    const r = cli(['--dir', dir], { input: 'GET k1\n' })
    expect(r.code).toBe(3)
    expect(r.err).toMatch(/cannot open .*wal-0000000001\.log at offset \d+.*\(KV_CORRUPT\)/)
    expect(r.out).toBe('')
    expect(readFileSync(wal).equals(bytes)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(before)
  })
})

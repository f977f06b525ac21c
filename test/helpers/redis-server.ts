// A real `redis-server` for tests and benches: a child process on a free loopback port,
// working in a fresh temporary directory, either without persistence (`--save ''
// --appendonly no`) or with an fsync before every reply (`--appendonly yes --appendfsync
// always`). Started when it answers PING; stopped (SIGTERM, SIGKILL after 2 s) and its
// directory removed by stop(), and in any case when this process exits.
//
// redis-server is expected on PATH or at /usr/bin/redis-server (Debian: `apt-get install -y
// redis-server`, or `bash scripts/install-services.sh`, which `npm test` runs first). A
// missing binary is an error, never a skip.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findExecutable, parentDeathPrefix, trackChild, trackDir, untrackDir } from './child-process.js'
import { RespClient } from './resp-client.js'

/** How long {@link startRedisServer} waits for PONG. */
const STARTUP_TIMEOUT_MS = 10_000
/** How long the server gets to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2_000
/** Start attempts when a picked port was taken before redis-server bound it. */
const START_ATTEMPTS = 3
/** Lines of output kept for error messages. */
const LOG_LINES = 40

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * `'none'`: `--save '' --appendonly no` (nothing written to disk). `'always'`:
   * `--save '' --appendonly yes --appendfsync always` (every write fsynced before its reply).
   * Default `'none'`.
   */
  persistence?: 'none' | 'always'
  /** Parent of the fresh temporary working directory; default `os.tmpdir()`. */
  parentDir?: string
  /** Further `--option value` words for redis-server. */
  args?: string[]
}

/** A running redis-server. */
export interface RedisServer {
  readonly host: string
  readonly port: number
  /** Its working directory (`--dir`), removed by {@link stop}. */
  readonly dir: string
  readonly pid: number | undefined
  /** `7.0.15`, from `redis-server --version`. */
  readonly version: string
  /** Whether the process is still running. */
  readonly running: boolean
  /** SIGTERM, SIGKILL after 2 s, wait for exit, remove {@link dir}. Idempotent. */
  stop(): Promise<void>
  /** The last lines redis-server printed, for error messages. */
  log(): string
}

/** The path of a Redis tool (`redis-server`, `redis-cli`, `redis-benchmark`) on PATH or in /usr/bin, or undefined. */
export function findRedisTool(name: string): string | undefined {
  return findExecutable(name)
}

/** Like {@link findRedisTool}, but throws how to install Redis when the tool is missing. */
export function redisTool(name: string): string {
  const found = findRedisTool(name)
  if (found === undefined) {
    throw new Error(
      `${name} not found (looked on PATH and in /usr/bin). These tests and benches need a real Redis 7: ` +
        'install it with `apt-get install -y redis-server` (as root; it brings redis-cli and redis-benchmark), ' +
        'or run `bash scripts/install-services.sh`.',
    )
  }
  return found
}

/** A free loopback port (bound to 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let cachedVersion: string | undefined

function versionOf(binary: string): string {
  cachedVersion ??= /v=(\S+)/.exec(spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown'
  return cachedVersion
}

/** One start on one port; `portTaken` when redis-server said the port was in use. */
async function startOnce(binary: string, options: RedisServerOptions): Promise<{ server?: RedisServer; portTaken?: boolean; error?: Error }> {
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'kvstore-redis-'))
  trackDir(dir)
  const port = await freePort()
  const host = '127.0.0.1'
  const persistence = options.persistence ?? 'none'
  const args = [
    '--port', String(port),
    '--bind', host,
    '--dir', dir,
    '--save', '',
    ...(persistence === 'always' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'warning',
    '--databases', '1',
    ...(options.args ?? []),
  ]
  const lines: string[] = []
  const note = (s: string) => {
    for (const l of s.split('\n')) if (l !== '') lines.push(l)
    if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES)
  }
  const [cmd, ...rest] = [...parentDeathPrefix(), binary, ...args] as [string, ...string[]]
  const child = spawn(cmd, rest, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  trackChild(child)
  let running = true
  let how = 'running'
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false
      how = signal !== null ? `killed by ${signal}` : `exited with code ${code}`
      resolve()
    })
    child.once('error', (err) => {
      running = false
      how = `failed to start: ${err.message}`
      resolve()
    })
  })
  child.stdout?.setEncoding('utf8').on('data', note)
  child.stderr?.setEncoding('utf8').on('data', note)
  const log = () => `redis-server ${args.join(' ')} (${how}); last output:\n${lines.join('\n') || '(none)'}`
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running) {
        child.kill('SIGTERM')
        const t = sleep(KILL_GRACE_MS).then(() => 'timeout' as const)
        if ((await Promise.race([exited.then(() => 'exited' as const), t])) === 'timeout') child.kill('SIGKILL')
        await exited
      }
      await rm(dir, { recursive: true, force: true, maxRetries: 3 })
      untrackDir(dir)
    })()
    return stopping
  }
  const server: RedisServer = {
    host,
    port,
    dir,
    get pid() {
      return running ? child.pid : undefined
    },
    version: versionOf(binary),
    get running() {
      return running
    },
    stop,
    log,
  }
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  let last = 'no answer yet'
  while (running && Date.now() < deadline) {
    try {
      const c = await RespClient.connect(port, host)
      try {
        const r = await c.call(['PING'], 2_000)
        if (r.raw.toString() === '+PONG\r\n') return { server }
        last = `PING answered ${JSON.stringify(r.raw.toString())}`
      } finally {
        c.destroy()
      }
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    await sleep(25)
  }
  await stop()
  const portTaken = lines.some((l) => /address already in use/i.test(l))
  return { portTaken, error: new Error(`redis-server did not answer PING within ${STARTUP_TIMEOUT_MS} ms (${last}): ${log()}`) }
}

/**
 * Start a redis-server (see the file comment) and wait until it answers PING. Throws,
 * with its output, when it does not start; throws how to install Redis when it is missing.
 * Call {@link RedisServer.stop} (in `afterAll`/`finally`) or use {@link withRedisServer}.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = redisTool('redis-server')
  for (let attempt = 1; ; attempt++) {
    const r = await startOnce(binary, options)
    if (r.server !== undefined) return r.server
    if (!r.portTaken || attempt >= START_ATTEMPTS) throw r.error as Error
  }
}

/** Start a redis-server, run `fn` with it, and always stop it. */
export async function withRedisServer<T>(fn: (server: RedisServer) => Promise<T>, options?: RedisServerOptions): Promise<T> {
  const server = await startRedisServer(options)
  try {
    return await fn(server)
  } finally {
    await server.stop()
  }
}

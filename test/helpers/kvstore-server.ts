// `kvstore serve` as a child process for tests and benches: from source through tsx (no
// build needed) or a given command (the built dist/cli.js), on a free loopback port
// (`--port 0`), its port read from the "listening on <host>:<port>" line it prints to
// stderr. stop() sends SIGTERM and resolves to the exit code; kill() is SIGKILL; every child
// still running when this process exits is killed.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parentDeathPrefix, trackChild, trackDir, untrackDir } from './child-process.js'

/** How long {@link startKvstoreServer} waits for the "listening on" line. */
const STARTUP_TIMEOUT_MS = 30_000
/** How long stop() waits for the exit after SIGTERM before SIGKILL (and a rejection). */
const STOP_TIMEOUT_MS = 20_000
const LOG_LINES = 40

/** The CLI's entry in the source tree. */
export const CLI_SOURCE = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
// Absolute, so the CLI can run with any working directory.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/** The command that runs the CLI from source: `node --import tsx src/cli/main.ts`. */
export function sourceCommand(): string[] {
  return [process.execPath, '--import', TSX, CLI_SOURCE]
}

/** Options of {@link startKvstoreServer}. */
export interface KvstoreServerOptions {
  /**
   * The store directory (`--dir`). Default: a fresh temporary directory, removed when the
   * server is stopped or killed. A directory given here is left in place.
   */
  dir?: string
  /** Snapshot-file mode (`--file`) instead of a directory. */
  file?: string
  /** `--sync`. */
  sync?: 'always' | 'interval' | 'never'
  /** Further words after `serve` (`--requirepass s`, `--maxclients 5` …). */
  args?: string[]
  /** The CLI command, default {@link sourceCommand} (e.g. `[process.execPath, 'dist/cli.js']`). */
  command?: string[]
  env?: NodeJS.ProcessEnv
}

/** A running `kvstore serve`. */
export interface KvstoreServer {
  readonly host: string
  readonly port: number
  /** The store directory (or file) it serves. */
  readonly dir: string
  readonly pid: number | undefined
  readonly running: boolean
  /** Resolves to the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>
  /** Send SIGTERM (or `signal`), wait for the exit, resolve to the exit code; SIGKILL and reject after 20 s. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** SIGKILL and wait (a no-op when it has exited); removes a temporary directory it made. */
  kill(): Promise<void>
  /** The last lines it printed (stdout and stderr), for error messages. */
  log(): string
}

/**
 * Start `kvstore serve --dir <dir> --port 0 --bind 127.0.0.1 …` and resolve once it says
 * where it listens. Rejects, with its output, when it exits first or is silent for 30 s.
 */
export async function startKvstoreServer(options: KvstoreServerOptions = {}): Promise<KvstoreServer> {
  let ownDir: string | undefined
  let where: string[]
  let dir: string
  if (options.file !== undefined) {
    dir = options.file
    where = ['--file', options.file]
  } else {
    if (options.dir === undefined) {
      ownDir = await mkdtemp(join(tmpdir(), 'kvstore-serve-'))
      trackDir(ownDir)
    }
    dir = options.dir ?? (ownDir as string)
    where = ['--dir', dir]
  }
  const args = ['serve', ...where, '--port', '0', '--bind', '127.0.0.1', ...(options.sync === undefined ? [] : ['--sync', options.sync]), ...(options.args ?? [])]
  const [cmd, ...pre] = [...parentDeathPrefix(), ...(options.command ?? sourceCommand())] as [string, ...string[]]
  const child = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
  trackChild(child)
  const lines: string[] = []
  let partial = ''
  const note = (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
    if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES)
  }
  let running = true
  let how = 'running'
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false
      how = signal !== null ? `killed by ${signal}` : `exited with code ${code}`
      resolve(code)
    })
    child.once('error', (err) => {
      running = false
      how = `failed to start: ${err.message}`
      resolve(null)
    })
  })
  const log = () => `kvstore ${args.join(' ')} (${how}); last output:\n${[...lines, partial].filter((l) => l !== '').join('\n') || '(none)'}`
  const removeOwnDir = async () => {
    if (ownDir === undefined) return
    await rm(ownDir, { recursive: true, force: true, maxRetries: 3 })
    untrackDir(ownDir)
  }
  const kill = async () => {
    if (running) child.kill('SIGKILL')
    await exited
    await removeOwnDir()
  }
  const listening = new Promise<{ host: string; port: number }>((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => reject(new Error(`kvstore serve printed no "listening on" line within ${STARTUP_TIMEOUT_MS} ms: ${log()}`)), STARTUP_TIMEOUT_MS)
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      note(chunk)
      stderr += chunk
      const m = /listening on ([\d.]+):(\d+)/.exec(stderr)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ host: m[1] as string, port: Number(m[2]) })
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`kvstore serve exited before listening: ${log()}`))
    })
  })
  child.stdout?.setEncoding('utf8').on('data', note)
  let at: { host: string; port: number }
  try {
    at = await listening
  } catch (err) {
    await kill()
    throw err
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (running) child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_TIMEOUT_MS)))
    const r = await Promise.race([exited, late])
    clearTimeout(timer)
    if (r === 'late') {
      await kill()
      throw new Error(`kvstore serve did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}: ${log()}`)
    }
    await removeOwnDir()
    return r
  }
  return {
    host: at.host,
    port: at.port,
    dir,
    get pid() {
      return running ? child.pid : undefined
    },
    get running() {
      return running
    },
    exited,
    stop,
    kill,
    log,
  }
}

// Real etcd clusters for tests: N `etcd` child processes on free loopback ports, each with
// its own data directory inside one fresh temporary directory, talked to through etcd's
// JSON gateway (`POST <clientUrl>/v3/...`) with Node's global fetch.
//
// etcd 3.4 is expected at /usr/bin/etcd or on PATH (Debian: `apt-get install -y etcd-server`,
// or `bash scripts/install-services.sh`, which `npm test` runs first). A missing binary is an
// error, never a skip.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findExecutable, parentDeathPrefix, trackChild, trackDir, untrackDir } from './child-process.js'

/** How long {@link startEtcdCluster} and {@link EtcdMember.restart} wait for members to answer. */
const STARTUP_TIMEOUT_MS = 20_000
/** How long a member gets to exit after a signal before it is sent SIGKILL. */
const KILL_GRACE_MS = 2_000
/** How long {@link EtcdCluster.leader} waits for a leader to be elected. */
const LEADER_TIMEOUT_MS = 10_000
/** Timeout of one status request. */
const REQUEST_TIMEOUT_MS = 1_000
/** Lines of each member's output kept for error messages. */
const LOG_LINES = 30
/** Start attempts when a picked port was taken by someone else before etcd bound it. */
const START_ATTEMPTS = 3

/** Options of {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members, at least 1. Default 3. */
  members?: number
  /**
   * Parent directory in which the cluster's fresh temporary directory is made (with mkdtemp);
   * default `os.tmpdir()`. Only that temporary directory is removed by {@link EtcdCluster.stop}.
   */
  dataDir?: string
}

/** One etcd member (child process) of an {@link EtcdCluster}. */
export interface EtcdMember {
  /** The member's `--name`, e.g. `etcd-0`. */
  readonly name: string
  /** The member's client URL, `http://127.0.0.1:<port>`; the JSON gateway lives under `/v3/`. */
  readonly clientUrl: string
  /** The member's peer URL, `http://127.0.0.1:<port>`. */
  readonly peerUrl: string
  /** The member's own data directory (inside {@link EtcdCluster.dataDir}). */
  readonly dataDir: string
  /** The member ID as the JSON gateway spells it: a uint64 as a decimal string. Stable across restarts. */
  readonly id: string
  /** Process ID of the running etcd, or undefined when it is not running. */
  readonly pid: number | undefined
  /** Whether the member's process is running (started and not yet exited). */
  readonly running: boolean
  /**
   * Sends `signal` (default SIGTERM) and waits for the process to exit; a process still
   * running 2 s later is sent SIGKILL. A no-op when the member is not running.
   */
  kill(signal?: NodeJS.Signals): Promise<void>
  /**
   * Starts the member again with the same name, ports and data dir and
   * `--initial-cluster-state existing`, and waits (up to 20 s) until it answers
   * `/v3/maintenance/status`. etcd only serves clients once it has rejoined the cluster, so
   * this needs a quorum of members running. Rejects if the member is already running.
   */
  restart(): Promise<void>
}

/** A running etcd cluster started by {@link startEtcdCluster}. */
export interface EtcdCluster {
  /** Client URLs of all members, in member order (whether running or not). */
  readonly endpoints: string[]
  /** The members, in order. */
  readonly members: EtcdMember[]
  /** The temporary directory holding every member's data directory; removed by {@link stop}. */
  readonly dataDir: string
  /**
   * The current leader: the running member whose ID running members report as `leader`.
   * Waits up to 10 s for an election (e.g. right after the leader was killed).
   */
  leader(): Promise<EtcdMember>
  /**
   * Kills every member (SIGTERM, SIGKILL after 2 s), waits for them to exit and removes
   * {@link dataDir}. Idempotent: later calls return the first call's promise.
   */
  stop(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Processes that must not outlive this one.

// The exit hook and the sets of live children and directories are child-process.ts's, shared
// with the other service helpers.
const track = trackChild

// ---------------------------------------------------------------------------------------------
// Binaries.

/** The etcd binary: `etcd` on PATH, else /usr/bin/etcd; throws how to install it when neither exists. */
function etcdBinary(): string {
  const found = findExecutable('etcd')
  if (found === undefined) {
    throw new Error(
      'etcd not found (looked for `etcd` on PATH and /usr/bin/etcd). The etcd tests need a real etcd 3.4: ' +
        'install it with `apt-get install -y etcd-server etcd-client` (as root), or run `bash scripts/install-services.sh`.',
    )
  }
  return found
}

/** The environment without ETCD_* variables, which etcd would read as flags. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD')) env[k] = v
  return env
}

// ---------------------------------------------------------------------------------------------
// Ports and the JSON gateway.

/** `count` distinct free loopback ports: all bound to port 0 at once, then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    const ports: number[] = []
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      ports.push((server.address() as AddressInfo).port)
    }
    return ports
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  }
}

interface Status {
  /** header.member_id of the answering member. */
  memberId: string
  /** The leader's member ID, '0' when the member knows of none. */
  leader: string
}

/** `POST <url>/v3/maintenance/status` with body `{}`. */
async function status(url: string): Promise<Status> {
  const res = await fetch(`${url}/v3/maintenance/status`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`)
  // uint64 fields come as decimal strings; zero values are omitted.
  const body = JSON.parse(text) as { header?: { member_id?: string }; leader?: string }
  return { memberId: String(body.header?.member_id ?? '0'), leader: String(body.leader ?? '0') }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : ''
    return `${err.message}${cause}`
  }
  return String(err)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// Members.

interface ClusterConfig {
  binary: string
  initialCluster: string
  token: string
}

class Member implements EtcdMember {
  id = '0'
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private isRunning = false
  private exitDescription = 'not started'
  private readonly log: string[] = []
  private partial = ''

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    private readonly config: ClusterConfig,
  ) {}

  get running(): boolean {
    return this.isRunning
  }

  get pid(): number | undefined {
    return this.isRunning ? this.child?.pid : undefined
  }

  /** Starts the process; does not wait for it to serve. */
  spawn(state: 'new' | 'existing'): void {
    if (this.isRunning) throw new Error(`etcd member ${this.name} is already running`)
    const args = [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.config.initialCluster}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=${this.config.token}`,
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--max-txn-ops=128',
      '--logger=zap',
      '--log-level=error',
      '--log-outputs=stderr',
    ]
    const prefix = parentDeathPrefix()
    const [command, ...rest] = [...prefix, this.config.binary, ...args] as [string, ...string[]]
    this.note(`--- ${state === 'new' ? 'start' : 'restart'}: ${this.config.binary} ${args.join(' ')}`)
    const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() })
    this.child = child
    this.isRunning = true
    this.exitDescription = 'running'
    track(child)
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.append(chunk))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.append(chunk))
    this.exited = new Promise<void>((resolve) => {
      const done = (description: string) => {
        if (this.child === child && this.isRunning) {
          this.isRunning = false
          this.exitDescription = description
        }
        resolve()
      }
      child.once('exit', (code, signal) => done(signal !== null ? `killed by ${signal}` : `exited with code ${code}`))
      child.once('error', (err) => {
        this.note(`spawn error: ${err.message}`)
        done(`failed to start: ${err.message}`)
      })
    })
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (!this.isRunning || child === undefined) return
    child.kill(signal)
    if (signal !== 'SIGKILL') {
      const timer = sleep(KILL_GRACE_MS).then(() => 'timeout' as const)
      if ((await Promise.race([this.exited.then(() => 'exited' as const), timer])) === 'timeout') child.kill('SIGKILL')
    }
    await this.exited
  }

  async restart(): Promise<void> {
    this.spawn('existing')
    try {
      await waitFor([this], Date.now() + STARTUP_TIMEOUT_MS, false)
    } catch (err) {
      await this.kill('SIGKILL')
      throw new Error(`etcd member ${this.name} did not answer status after restart: ${describe(err)}\n${this.tail()}`)
    }
  }

  /** The member's state and its last output lines, for error messages. */
  tail(): string {
    const lines = [...this.log, ...(this.partial === '' ? [] : [this.partial])]
    return `--- ${this.name} (${this.clientUrl}, ${this.exitDescription}), last output lines:\n${lines.join('\n') || '(none)'}`
  }

  /** Whether the member's output says a port was taken. */
  portTaken(): boolean {
    return this.log.some((l) => l.includes('address already in use'))
  }

  private append(chunk: string): void {
    const lines = (this.partial + chunk).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) if (line !== '') this.note(line)
  }

  private note(line: string): void {
    this.log.push(line)
    if (this.log.length > LOG_LINES) this.log.splice(0, this.log.length - LOG_LINES)
  }
}

/**
 * Polls until every member answers status (and, with `needLeader`, all report the same
 * non-zero leader, one of `members`), recording each member's ID. Fails early when a member
 * exits, or at `deadline`.
 */
async function waitFor(members: Member[], deadline: number, needLeader: boolean): Promise<void> {
  let last = 'no status request answered yet'
  for (;;) {
    const dead = members.find((m) => !m.running)
    if (dead !== undefined) throw new Error(`member ${dead.name} exited during startup`)
    const results = await Promise.allSettled(members.map((m) => status(m.clientUrl)))
    const problems: string[] = []
    results.forEach((r, i) => {
      const m = members[i] as Member
      if (r.status === 'rejected') problems.push(`${m.name}: ${describe(r.reason)}`)
      else m.id = r.value.memberId
    })
    if (problems.length === 0) {
      if (!needLeader) return
      const leaders = new Set(results.map((r) => (r as PromiseFulfilledResult<Status>).value.leader))
      const [leader] = leaders
      if (leaders.size === 1 && leader !== '0' && members.some((m) => m.id === leader)) return
      problems.push(`no agreed leader yet (members report leader ${[...leaders].join(', ')})`)
    }
    last = problems.join('; ')
    if (Date.now() >= deadline) throw new Error(last)
    await sleep(50)
  }
}

// ---------------------------------------------------------------------------------------------
// Clusters.

class Cluster implements EtcdCluster {
  private stopping: Promise<void> | undefined

  constructor(
    readonly members: Member[],
    readonly dataDir: string,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl)
  }

  async leader(): Promise<EtcdMember> {
    const deadline = Date.now() + LEADER_TIMEOUT_MS
    let last = 'no member running'
    for (;;) {
      const running = this.members.filter((m) => m.running)
      const results = await Promise.allSettled(running.map((m) => status(m.clientUrl)))
      const problems: string[] = []
      for (const [i, r] of results.entries()) {
        if (r.status === 'rejected') {
          problems.push(`${(running[i] as Member).name}: ${describe(r.reason)}`)
          continue
        }
        const leader = running.find((m) => m.id === r.value.leader)
        if (leader !== undefined) return leader
        problems.push(`${(running[i] as Member).name}: leader ${r.value.leader}`)
      }
      if (problems.length > 0) last = problems.join('; ')
      if (Date.now() >= deadline) throw new Error(`etcd cluster has no running leader after ${LEADER_TIMEOUT_MS} ms: ${last}`)
      await sleep(50)
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.members.map((m) => m.kill('SIGTERM')))
      await rm(this.dataDir, { recursive: true, force: true, maxRetries: 3 })
      untrackDir(this.dataDir)
    })()
    return this.stopping
  }
}

type Attempt = { cluster: Cluster; error?: never } | { cluster?: never; error: Error }

/** One start; resolves to the error instead of throwing when a picked port turned out taken. */
async function startOnce(count: number, parent: string, binary: string): Promise<Attempt> {
  const root = await mkdtemp(join(parent, 'kvstore-etcd-'))
  trackDir(root)
  const ports = await freePorts(2 * count)
  const urls = Array.from({ length: count }, (_, i) => ({
    name: `etcd-${i}`,
    client: `http://127.0.0.1:${ports[2 * i] as number}`,
    peer: `http://127.0.0.1:${ports[2 * i + 1] as number}`,
  }))
  const config: ClusterConfig = {
    binary,
    initialCluster: urls.map((u) => `${u.name}=${u.peer}`).join(','),
    token: `kvstore-test-${process.pid}-${randomBytes(8).toString('hex')}`,
  }
  const members = urls.map((u) => new Member(u.name, u.client, u.peer, join(root, u.name), config))
  const cluster = new Cluster(members, root)
  try {
    for (const m of members) m.spawn('new')
    await waitFor(members, Date.now() + STARTUP_TIMEOUT_MS, true)
    return { cluster }
  } catch (err) {
    const portTaken = members.some((m) => m.portTaken())
    await Promise.all(members.map((m) => m.kill('SIGKILL')))
    const error = new Error(
      `etcd cluster of ${count} member(s) failed to become healthy (waited up to ${STARTUP_TIMEOUT_MS} ms): ${describe(err)}\n` +
        members.map((m) => m.tail()).join('\n'),
    )
    await cluster.stop()
    if (portTaken) return { error }
    throw error
  }
}

/**
 * Starts an etcd cluster of `options.members` (default 3) members as child processes on free
 * loopback ports, each with its own data dir in a fresh temporary directory, with fast raft
 * timings (heartbeat 50 ms, election timeout 500 ms) and quiet logs, and waits (up to 20 s)
 * until every member answers `/v3/maintenance/status` and reports the same leader.
 *
 * On failure every member is killed, the directory removed, and the Error carries each
 * member's last output lines. Throws how to install etcd when it is missing. Call
 * {@link EtcdCluster.stop} when done, or use {@link withEtcdCluster}.
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 3
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`members must be a positive integer, got ${count}`)
  const binary = etcdBinary()
  const parent = options.dataDir ?? tmpdir()
  for (let attempt = 1; ; attempt++) {
    const { cluster, error } = await startOnce(count, parent, binary)
    if (cluster !== undefined) return cluster
    if (attempt >= START_ATTEMPTS) {
      error.message = `a picked port was taken ${START_ATTEMPTS} times in a row; last attempt: ${error.message}`
      throw error
    }
  }
}

/** Starts a cluster (see {@link startEtcdCluster}), runs `fn` with it, and always stops it. */
export async function withEtcdCluster<T>(fn: (cluster: EtcdCluster) => Promise<T>, options?: EtcdClusterOptions): Promise<T> {
  const cluster = await startEtcdCluster(options)
  try {
    return await fn(cluster)
  } finally {
    await cluster.stop()
  }
}

let shared: Promise<EtcdCluster> | undefined

/**
 * One 3-member cluster per vitest worker (module instance), started on first call; later calls
 * return the same cluster. A failed start is not cached. The caller stops it:
 *
 * ```ts
 * afterAll(stopSharedEtcdCluster)
 * ```
 *
 * Tests that kill members of the shared cluster must restart them before they finish.
 */
export async function sharedEtcdCluster(): Promise<EtcdCluster> {
  if (shared === undefined) {
    const starting = startEtcdCluster()
    shared = starting
    starting.catch(() => {
      if (shared === starting) shared = undefined
    })
  }
  return shared
}

/** Stops the cluster of {@link sharedEtcdCluster}, if one was started; the next call starts a new one. */
export async function stopSharedEtcdCluster(): Promise<void> {
  const starting = shared
  shared = undefined
  if (starting === undefined) return
  let cluster: EtcdCluster
  try {
    cluster = await starting
  } catch {
    return
  }
  await cluster.stop()
}

// KvServer: a TCP listener speaking RESP over a store, and what its connections share:
// the options, the durability barrier, the counters, graceful shutdown.
import { createServer as createNetServer, type Server, type Socket } from 'node:net'
import type { CommandStore } from '../commands/table.js'
import { StoreError } from '../errors.js'
import { Connection, type ConnectionHost } from './connection.js'
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js'

/** A store the server can serve: a `Store`, an `EtcdStore`, or any object with their command methods. */
export type ServerStore = CommandStore & {
  /** When present, called before replies are sent to make them durable (see {@link ServerOptions.durableReplies}). */
  flush?: () => Promise<void>
}

/** Counters of {@link KvServer.stats}. */
export interface ServerStats {
  /** Connections open now. */
  readonly connections: number
  /** Connections accepted since start. */
  readonly totalConnections: number
  /** Connections refused because `maxClients` were open. */
  readonly rejectedConnections: number
  /** Requests run (including those answered with an error). */
  readonly commands: number
  /** Connections closed for a malformed or over-limit request. */
  readonly protocolErrors: number
  /** Connections closed because their unsent replies exceeded `maxOutputBufferBytes`. */
  readonly outputLimitCloses: number
  /** Connections closed by `idleTimeoutMs`. */
  readonly idleCloses: number
  /** Whether replies wait for durability (resolved `durableReplies`). */
  readonly durableReplies: boolean
}

/** Where a server listens. */
export interface ServerAddress {
  readonly host: string
  readonly port: number
}

const VERSION = '0.1.0'

/**
 * A RESP (Redis protocol) server over one store; see {@link createServer}.
 *
 * Each connection has its own command session (MULTI/EXEC/WATCH state) and runs its requests
 * one at a time, in order; connections run concurrently and share the store's group commit.
 */
export class KvServer {
  readonly #store: ServerStore
  readonly #o: ResolvedServerOptions
  readonly #net: Server
  readonly #connections = new Set<Connection>()
  readonly #host: ConnectionHost
  readonly #durable: boolean
  #nextId = 1
  #total = 0
  #rejected = 0
  readonly #counters = { commands: 0, protocolErrors: 0, outputLimitCloses: 0, idleCloses: 0 }
  #durableSeq = 0
  #closing: Promise<void> | undefined
  #address: ServerAddress | undefined
  readonly #closed: Promise<void>
  #resolveClosed!: () => void
  readonly #shutdownListeners: (() => void)[] = []

  /** Use {@link createServer}. @internal */
  constructor(store: ServerStore, options: ServerOptions = {}) {
    this.#store = store
    this.#o = resolveServerOptions(options)
    this.#durable = this.#o.durableReplies ?? store.stats().sync === 'always'
    this.#closed = new Promise((r) => (this.#resolveClosed = r))
    const self = this
    this.#host = {
      options: this.#o,
      store,
      requirepass: this.#o.requirepass,
      version: VERSION,
      counters: this.#counters,
      barrier: () => this.#barrier(),
      forget: (c) => this.#connections.delete(c),
      schedule: (c) => this.#schedule(c),
      infoSections: () => this.#infoSections(),
      clientList: () => [...self.#connections].map((c) => c.describe()),
      shutdown: () => {
        for (const fn of this.#shutdownListeners) fn()
        void this.close()
      },
    }
    this.#net = createNetServer((socket) => this.#accept(socket))
    // Accept errors (EMFILE …) must not take the server down; the client just fails to connect.
    this.#net.on('error', () => undefined)
  }

  /**
   * Start listening; resolves with the address once connections are accepted.
   *
   * Binds to loopback unless `host` says otherwise: reaching the store from other machines is
   * a decision (set `requirepass` when you make it). Port `0` picks a free port.
   *
   * @throws {@link StoreError} `KV_IO` when the port cannot be bound (the cause says why, e.g.
   *   `EADDRINUSE`), `KV_CLOSED` after `close()`.
   */
  listen(port = 6380, host = '127.0.0.1'): Promise<ServerAddress> {
    if (this.#closing !== undefined) return Promise.reject(new StoreError('KV_CLOSED', 'the server was closed'))
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#net.off('listening', onListening)
        reject(new StoreError('KV_IO', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }))
      }
      const onListening = (): void => {
        this.#net.off('error', onError)
        const a = this.#net.address()
        this.#address = typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host, port }
        resolve(this.#address)
      }
      this.#net.once('error', onError)
      this.#net.once('listening', onListening)
      this.#net.listen(port, host)
    })
  }

  /** The address listened on, once `listen()` resolved. */
  get address(): ServerAddress | undefined {
    return this.#address
  }

  /** Settles once the server has closed, by {@link KvServer.close}, `SHUTDOWN`, or a signal the caller handles. */
  get closed(): Promise<void> {
    return this.#closed
  }

  /** Run `fn` when a client sends `SHUTDOWN` (before the server closes). The CLI closes the store and exits. */
  onShutdown(fn: () => void): void {
    this.#shutdownListeners.push(fn)
  }

  /**
   * Graceful stop: accept no more connections, let each connection finish the request it is
   * running and send its replies, then close them; connections still open after
   * `closeTimeoutMs` are cut. Does not close the store (its owner does). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = (async () => {
      const listening = new Promise<void>((r) => this.#net.close(() => r()))
      const open = [...this.#connections]
      for (const c of open) c.shutdown()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((r) => {
        timer = setTimeout(r, this.#o.closeTimeoutMs)
        timer.unref()
      })
      await Promise.race([Promise.all(open.map((c) => c.done)), timeout])
      clearTimeout(timer)
      for (const c of this.#connections) c.destroy()
      await listening
      this.#resolveClosed()
    })()
    return this.#closing
  }

  /** Counters; never throws. */
  stats(): ServerStats {
    return {
      connections: this.#connections.size,
      totalConnections: this.#total,
      rejectedConnections: this.#rejected,
      ...this.#counters,
      durableReplies: this.#durable,
    }
  }

  #accept(socket: Socket): void {
    socket.on('error', () => socket.destroy())
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    if (this.#connections.size >= this.#o.maxClients) {
      this.#rejected++
      socket.end('-ERR max number of clients reached\r\n')
      return
    }
    this.#total++
    this.#connections.add(new Connection(this.#nextId++, socket, this.#host))
  }

  /** Connections with data that arrived in this turn of the event loop; run together in the check phase. */
  #ready: Connection[] = []

  #schedule(c: Connection): void {
    if (this.#ready.push(c) === 1) setImmediate(this.#runReady)
  }

  readonly #runReady = (): void => {
    const ready = this.#ready
    this.#ready = []
    for (const c of ready) c.runScheduled()
  }

  /** Every write so far durable: one shared `flush()` per batch of replies, none when nothing is new. */
  #barrier(): Promise<void> {
    if (!this.#durable || this.#store.flush === undefined) return RESOLVED
    const seq = this.#store.stats().seq
    if (seq <= this.#durableSeq) return RESOLVED
    return this.#store.flush().then(() => {
      if (seq > this.#durableSeq) this.#durableSeq = seq
    })
  }

  #infoSections(): string[][] {
    const a = this.#address
    const s = this.stats()
    return [
      [
        '# Server',
        `kvstore_version:${VERSION}`,
        // Clients that gate features on the Redis version see the version whose commands kvstore follows.
        'redis_version:7.0.0',
        'redis_mode:standalone',
        `process_id:${process.pid}`,
        `tcp_port:${a?.port ?? 0}`,
        `uptime_in_seconds:${Math.floor(process.uptime())}`,
      ],
      ['# Clients', `connected_clients:${s.connections}`, `maxclients:${this.#o.maxClients}`],
      [
        '# Stats',
        `total_connections_received:${s.totalConnections}`,
        `total_commands_processed:${s.commands}`,
        `rejected_connections:${s.rejectedConnections}`,
        `protocol_error_closes:${s.protocolErrors}`,
        `output_limit_closes:${s.outputLimitCloses}`,
        `idle_closes:${s.idleCloses}`,
        `durable_replies:${s.durableReplies ? 1 : 0}`,
        // ioredis's ready check waits while this says 1: the store is open before the server listens.
        'loading:0',
      ],
    ]
  }
}

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * Serve `store` over RESP, the Redis protocol: any Redis client, `redis-cli` and
 * `redis-benchmark` can drive it.
 *
 * RESP2, and RESP3 after `HELLO 3`; inline commands; pipelining. The commands are the store's
 * command language (`kvstore-db/commands`) plus AUTH, HELLO, SELECT 0, CLIENT, COMMAND, INFO,
 * QUIT and SHUTDOWN. The server never closes the store: close it after `server.close()`.
 *
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a bad option.
 */
export function createServer(store: ServerStore, options?: ServerOptions): KvServer {
  return new KvServer(store, options)
}

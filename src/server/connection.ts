// One client connection: parse requests, run them one at a time in arrival order, and send
// their replies in that order, a batch at a time. A batch is every request that had arrived
// when the previous one finished; its replies go out in one socket write, after one
// durability barrier when the server makes replies durable (group commit of a pipeline).
import type { Socket } from 'node:net'
import { error, type Reply } from '../commands/reply.js'
import { appliesAtCall } from '../commands/call-order.js'
import { createSession, type Session } from '../commands/session.js'
import type { CommandStore } from '../commands/table.js'
import { CONNECTION_COMMANDS, PRE_AUTH_COMMANDS, type ClientHandle, type ServerHandle } from './connection-commands.js'
import type { ResolvedServerOptions } from './options.js'
import { encodeReply, type Protocol, type WireReply } from './resp-encoder.js'
import { NOT_TEXT, RespParser, RespProtocolError, type RespLimits, type RespRequest } from './resp-parser.js'

/** What a connection needs from its server. */
export interface ConnectionHost extends ServerHandle {
  readonly options: ResolvedServerOptions
  readonly store: CommandStore
  /** Settles once every write made so far is durable (at once when replies need not wait). */
  barrier(): Promise<void>
  /** Called once when the connection is gone. */
  forget(connection: Connection): void
  /**
   * Run `connection` soon, with every other connection that received data in this turn of the
   * event loop: their requests then start in one task, so their writes share one WAL write.
   */
  schedule(connection: Connection): void
  /** Counters the connection adds to. */
  readonly counters: { commands: number; protocolErrors: number; outputLimitCloses: number; idleCloses: number }
}

/** Replies are sent once this many characters are waiting, even mid-batch. */
const SEND_AT_CHARS = 64 * 1024
/** Most requests started and not yet answered on one connection (bounds the replies held). */
const MAX_IN_FLIGHT = 1024
/** Stop reading a busy client's socket once this much unparsed input waits. */
const PAUSE_INPUT_AT_BYTES = 1024 * 1024

/** A client connection (internal to the server). */
export class Connection implements ClientHandle {
  readonly id: number
  name = ''
  protocol: Protocol = 2
  readonly server: ConnectionHost
  readonly #socket: Socket
  readonly #parser: RespParser
  readonly #session: Session
  readonly #createdAt = Date.now()
  #authenticated: boolean
  /** Encoded replies not sent yet: `#outChunks` (only when a reply carried raw bytes), then `#out`. */
  #out = ''
  #outChunks: (string | Buffer)[] = []
  #busy = false
  /** Data arrived while a batch ran: run again before going idle. */
  #more = false
  /** No further requests run; close once the replies so far are sent. */
  #closing = false
  #gone = false
  #lastCommand = ''
  /** Under RESP3, the names of the commands queued since MULTI (EXEC's HGETALL replies become maps). */
  #queued: string[] = []
  /** The store applies calls in call order (not an EtcdStore), so requests may overlap. */
  readonly #callOrder: boolean
  #done: Promise<void>
  #resolveDone!: () => void

  constructor(id: number, socket: Socket, host: ConnectionHost) {
    this.id = id
    this.server = host
    this.#socket = socket
    this.#authenticated = host.requirepass === undefined
    this.#parser = new RespParser(this.#limits())
    this.#session = createSession(host.store)
    this.#callOrder = host.store.stats().mode !== 'etcd'
    this.#done = new Promise((r) => (this.#resolveDone = r))
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    // A connection error never reaches the server: the connection just ends.
    socket.on('error', () => this.#destroy())
    socket.on('close', () => this.#destroy())
    const idle = host.options.idleTimeoutMs
    if (idle > 0) socket.setTimeout(idle, () => this.#onIdle())
  }

  /** Settles once the connection is closed. */
  get done(): Promise<void> {
    return this.#done
  }

  get authenticated(): boolean {
    return this.#authenticated
  }

  authenticate(): void {
    this.#authenticated = true
    this.#parser.setLimits(this.#limits())
  }

  closeAfterReply(): void {
    this.#closing = true
  }

  describe(): string {
    const s = this.#socket
    const age = Math.floor((Date.now() - this.#createdAt) / 1000)
    return `id=${this.id} addr=${s.remoteAddress ?? ''}:${s.remotePort ?? ''} laddr=${s.localAddress ?? ''}:${s.localPort ?? ''} name=${this.name} age=${age} multi=${this.#session.inTransaction ? 1 : -1} resp=${this.protocol} cmd=${this.#lastCommand.toLowerCase()}`
  }

  /** Stop taking requests; finish the one running, send its replies, then close. */
  shutdown(): void {
    this.#closing = true
    if (!this.#busy) this.#end()
  }

  /** Close at once, replies unsent. */
  destroy(): void {
    this.#socket.destroy()
    this.#destroy()
  }

  #limits(): RespLimits {
    const o = this.server.options
    return {
      maxBulkBytes: o.maxBulkBytes,
      maxArrayLength: o.maxArrayLength,
      maxQueryBufferBytes: o.maxQueryBufferBytes,
      unauthenticated: !this.#authenticated,
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#closing || this.#gone) return
    this.#parser.push(chunk)
    if (this.#busy) {
      this.#more = true
      // Backpressure: a client sending faster than its requests run waits in TCP, not in memory.
      if (this.#parser.bufferedBytes > PAUSE_INPUT_AT_BYTES) this.#socket.pause()
      return
    }
    this.#busy = true
    this.server.schedule(this)
  }

  /** Start the batch {@link ConnectionHost.schedule} deferred. */
  runScheduled(): void {
    void this.#run()
  }

  #onIdle(): void {
    if (this.#busy || this.#closing) return
    this.server.counters.idleCloses++
    this.#out = encodeReply(error('ERR', `idle for more than ${this.server.options.idleTimeoutMs} ms; closing`), this.protocol, this.#out)
    this.#closing = true
    void this.#send().finally(() => this.#end())
  }

  /** Precondition: `#busy` was set when the run was scheduled (data arriving meanwhile only queues). */
  async #run(): Promise<void> {
    const inFlight: Promise<WireReply | Buffer | undefined>[] = []
    let protocolError: string | undefined
    try {
      do {
        this.#more = false
        while (!this.#closing) {
          let req: RespRequest | undefined
          try {
            req = this.#parser.next()
          } catch (err) {
            if (!(err instanceof RespProtocolError)) throw err
            this.server.counters.protocolErrors++
            // Sent after the replies of the requests before it, then the connection closes.
            protocolError = err.message
            this.#closing = true
            break
          }
          if (req === undefined) break
          if (this.#appliesAtCall(req)) {
            // Issued now, answered in order later: the store applies calls in call order.
            inFlight.push(this.#dispatch(req))
            if (inFlight.length < MAX_IN_FLIGHT) continue
            if (!(await this.#collect(inFlight))) return
          } else {
            if (!(await this.#collect(inFlight))) return
            this.#emit(await this.#dispatch(req))
          }
          if (this.#out.length >= SEND_AT_CHARS && !(await this.#send())) return
        }
        if (!(await this.#collect(inFlight))) return
        if (protocolError !== undefined) {
          this.#out = encodeReply(errorLine(protocolError), this.protocol, this.#out)
          protocolError = undefined
        }
        if (!(await this.#send())) return
      } while (this.#more && !this.#closing && !this.#gone)
    } catch {
      // Only a bug gets here (commands reply with errors; they never throw): drop the client, keep the server.
      this.destroy()
      return
    } finally {
      this.#busy = false
    }
    if (this.#closing) this.#end()
    else this.#socket.resume()
  }

  /**
   * True when `req` may start before the replies of the requests before it: a store command
   * that makes its store calls when run (`appliesAtCall`), outside MULTI, on a store that
   * applies calls in call order. An EtcdStore orders calls per key only, so there every
   * request waits for the one before.
   */
  #appliesAtCall(req: RespRequest): boolean {
    if (!this.#callOrder || req.args === undefined || req.binary !== undefined || !this.#authenticated || this.#session.inTransaction) return false
    const name = (req.args[0] as string).toUpperCase()
    return !CONNECTION_COMMANDS.has(name) && appliesAtCall(req.args)
  }

  /**
   * Await the replies of requests in flight, in issue order, and queue them for sending; send
   * as they pile up, so a slow reader holds at most one send's worth of encoded replies.
   * False when the connection had to be closed.
   */
  async #collect(inFlight: Promise<WireReply | Buffer | undefined>[]): Promise<boolean> {
    for (const p of inFlight.splice(0)) {
      this.#emit(await p)
      if (this.#out.length >= SEND_AT_CHARS && !(await this.#send())) return false
    }
    return true
  }

  #emit(reply: WireReply | Buffer | undefined): void {
    if (Buffer.isBuffer(reply)) {
      this.#outChunks.push(`${this.#out}$${reply.length}\r\n`, reply, '\r\n')
      this.#out = ''
    } else if (reply !== undefined) this.#out = encodeReply(reply, this.protocol, this.#out)
  }

  /** Run one request: its reply, raw bytes for a bulk reply (ECHO/PING of bytes), or none. */
  async #dispatch(req: RespRequest): Promise<WireReply | Buffer | undefined> {
    this.server.counters.commands++
    if (req.args === undefined) return errorLine(req.invalid)
    const args = req.args
    const name = (args[0] as string).toUpperCase()
    this.#lastCommand = name
    if (!this.#authenticated && !PRE_AUTH_COMMANDS.has(name)) return error('NOAUTH', 'Authentication required.')
    if (req.binary !== undefined) {
      // redis-cli --pipe ends with ECHO of 20 random bytes and waits for them: send them back.
      if ((name === 'ECHO' || name === 'PING') && args.length === 2 && req.binary[1] !== undefined && !this.#session.inTransaction) return req.binary[1]
      this.#session.reject()
      return errorLine(NOT_TEXT)
    }
    const own = CONNECTION_COMMANDS.get(name)
    if (own !== undefined) {
      // Inside MULTI only QUIT and SHUTDOWN act at once; the others are connection state Redis would queue.
      if (this.#session.inTransaction && name !== 'QUIT' && name !== 'SHUTDOWN' && name !== 'EXIT') {
        this.#session.reject()
        return error('ERR', `${name} inside MULTI is not supported`)
      }
      return own(this, args, () => this.#storeInfo())
    }
    const queuing = this.#session.inTransaction
    const reply = await this.#session.execute(args)
    if (this.protocol !== 3) return reply
    // RESP3 answers HGETALL with a map, also inside an EXEC reply: remember what was queued.
    const queued = this.#queued
    if (queuing && reply.type === 'status' && reply.value === 'QUEUED') queued.push(name)
    // Out of MULTI (never in, or EXEC/DISCARD ended it): nothing is queued.
    if (!this.#session.inTransaction) this.#queued = []
    if (name === 'EXEC' && queuing && reply.type === 'array' && reply.value !== null) {
      return { type: 'array', value: reply.value.map((r, i) => (queued[i] === 'HGETALL' && r.type === 'array' && r.value !== null ? pairs(r.value) : r)) }
    }
    if (name === 'HGETALL' && !queuing && reply.type === 'array' && reply.value !== null) return pairs(reply.value)
    return reply
  }

  async #storeInfo(): Promise<string> {
    const reply = await this.#session.execute(['INFO'])
    return reply.type === 'bulk' && reply.value !== null ? reply.value : ''
  }

  /**
   * Send the replies waiting, after the durability barrier; wait while the client is not reading.
   * False when the connection had to be closed (barrier failed, output limit, gone).
   */
  async #send(): Promise<boolean> {
    if (this.#out === '' && this.#outChunks.length === 0) return !this.#gone
    try {
      await this.server.barrier()
    } catch {
      // The store could not make the writes durable: no reply may claim they are. The client
      // sees the connection drop, as after a crash, and the store refuses writes from now on.
      this.destroy()
      return false
    }
    if (this.#gone) return false
    const text = this.#out
    this.#out = ''
    if (this.#outChunks.length > 0) {
      for (const c of this.#outChunks.splice(0)) this.#socket.write(c)
    }
    if (this.#socket.write(text)) return true
    if (this.#socket.writableLength > this.server.options.maxOutputBufferBytes) {
      this.server.counters.outputLimitCloses++
      this.destroy()
      return false
    }
    // A slow reader: read no more of its requests until it has taken these replies.
    this.#socket.pause()
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done)
        this.#socket.off('close', done)
        resolve()
      }
      this.#socket.on('drain', done)
      this.#socket.on('close', done)
    })
    return !this.#gone
  }

  #end(): void {
    if (this.#gone) return
    this.#socket.end()
    // A client that never reads must not keep a closing connection open forever.
    setTimeout(() => this.destroy(), 1000).unref()
  }

  #destroy(): void {
    if (this.#gone) return
    this.#gone = true
    this.#closing = true
    this.server.forget(this)
    this.#resolveDone()
  }
}

/** An error reply from a whole line such as `ERR kvstore stores text…` or `Protocol error: …`. */
function errorLine(text: string): Reply {
  const space = text.indexOf(' ')
  const first = space < 0 ? text : text.slice(0, space)
  // Redis sends protocol errors as `-ERR Protocol error: …`.
  if (first === first.toUpperCase() && first !== '' && /^[A-Z]+$/.test(first)) return error(first, text.slice(space + 1))
  return error('ERR', text)
}

/** HGETALL's flat field/value array as a RESP3 map. */
function pairs(flat: readonly Reply[]): WireReply {
  const value: [Reply, Reply][] = []
  for (let i = 0; i + 1 < flat.length; i += 2) value.push([flat[i] as Reply, flat[i + 1] as Reply])
  return { type: 'map', value }
}

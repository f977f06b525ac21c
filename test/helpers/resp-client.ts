// A minimal RESP client for tests, over node:net: send commands (arrays of strings) or raw
// bytes, read the replies one at a time as the raw bytes of each whole reply plus a parsed
// form, pipeline (send N, read N), close. It understands RESP2 and RESP3 replies, and keeps
// nothing but the bytes not yet read: tests compare replies byte for byte.
import { connect, type Socket } from 'node:net'

/** How long {@link RespClient.read} waits for a whole reply by default. */
const READ_TIMEOUT_MS = 10_000

/** A parsed reply. `raw` of the {@link RespReply} holding it is the exact bytes. */
export type RespValue =
  | { type: 'simple'; value: string }
  | { type: 'error'; value: string }
  | { type: 'integer'; value: bigint }
  /** `$-1` (RESP2) and `_` (RESP3) are both `null` here; `raw` tells them apart. */
  | { type: 'bulk'; value: Buffer | null }
  /** `*-1` is `null`. */
  | { type: 'array'; value: RespValue[] | null }
  | { type: 'null' }
  | { type: 'double'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'bignum'; value: string }
  | { type: 'verbatim'; format: string; value: Buffer }
  | { type: 'blob-error'; value: Buffer }
  | { type: 'map'; value: [RespValue, RespValue][] }
  | { type: 'set'; value: RespValue[] }
  | { type: 'push'; value: RespValue[] }
  | { type: 'attribute'; value: [RespValue, RespValue][] }

/** One whole reply: its exact bytes and its parsed form. */
export interface RespReply {
  raw: Buffer
  value: RespValue
}

/** Thrown for bytes that are not RESP. */
export class RespProtocolError extends Error {
  override name = 'RespProtocolError'
}

/** Encode a command as a RESP array of bulk strings (what every client sends). */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/**
 * Parse one reply from `buf` at `start`. Returns the reply and the offset just past it, or
 * undefined when `buf` ends before the reply does. Throws {@link RespProtocolError} on a
 * byte that cannot start or continue a reply.
 */
export function parseReply(buf: Buffer, start = 0): { value: RespValue; end: number } | undefined {
  const line = (at: number): { text: string; next: number } | undefined => {
    const cr = buf.indexOf('\r\n', at)
    return cr < 0 ? undefined : { text: buf.toString('latin1', at, cr), next: cr + 2 }
  }
  const length = (text: string): number => {
    if (!/^-?\d+$/.test(text)) throw new RespProtocolError(`bad length ${JSON.stringify(text)} at offset ${start}`)
    return Number(text)
  }
  const blob = (at: number): { bytes: Buffer | null; next: number } | undefined => {
    const l = line(at)
    if (l === undefined) return undefined
    const n = length(l.text)
    if (n < 0) return { bytes: null, next: l.next }
    if (buf.length < l.next + n + 2) return undefined
    if (buf[l.next + n] !== 0x0d || buf[l.next + n + 1] !== 0x0a) throw new RespProtocolError(`blob of ${n} bytes not followed by CRLF at offset ${l.next + n}`)
    return { bytes: buf.subarray(l.next, l.next + n), next: l.next + n + 2 }
  }
  const many = (count: number, at: number): { items: RespValue[]; next: number } | undefined => {
    const items: RespValue[] = []
    let next = at
    for (let i = 0; i < count; i++) {
      const r = parseReply(buf, next)
      if (r === undefined) return undefined
      items.push(r.value)
      next = r.end
    }
    return { items, next }
  }
  const pairs = (items: RespValue[]): [RespValue, RespValue][] => {
    const out: [RespValue, RespValue][] = []
    for (let i = 0; i < items.length; i += 2) out.push([items[i] as RespValue, items[i + 1] as RespValue])
    return out
  }
  if (start >= buf.length) return undefined
  const kind = String.fromCharCode(buf[start] as number)
  const at = start + 1
  switch (kind) {
    case '+':
    case '-':
    case ':':
    case ',':
    case '(':
    case '#':
    case '_': {
      const l = line(at)
      if (l === undefined) return undefined
      const end = l.next
      if (kind === '+') return { value: { type: 'simple', value: l.text }, end }
      if (kind === '-') return { value: { type: 'error', value: l.text }, end }
      if (kind === ':') {
        if (!/^-?\d+$/.test(l.text)) throw new RespProtocolError(`bad integer ${JSON.stringify(l.text)} at offset ${start}`)
        return { value: { type: 'integer', value: BigInt(l.text) }, end }
      }
      if (kind === ',') return { value: { type: 'double', value: l.text }, end }
      if (kind === '(') return { value: { type: 'bignum', value: l.text }, end }
      if (kind === '#') return { value: { type: 'boolean', value: l.text === 't' }, end }
      return { value: { type: 'null' }, end }
    }
    case '$':
    case '!':
    case '=': {
      const b = blob(at)
      if (b === undefined) return undefined
      if (kind === '$') return { value: { type: 'bulk', value: b.bytes }, end: b.next }
      if (b.bytes === null) throw new RespProtocolError(`negative length for '${kind}' at offset ${start}`)
      if (kind === '!') return { value: { type: 'blob-error', value: b.bytes }, end: b.next }
      return { value: { type: 'verbatim', format: b.bytes.toString('latin1', 0, 3), value: b.bytes.subarray(4) }, end: b.next }
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      const l = line(at)
      if (l === undefined) return undefined
      const n = length(l.text)
      if (n < 0) {
        if (kind !== '*') throw new RespProtocolError(`negative length for '${kind}' at offset ${start}`)
        return { value: { type: 'array', value: null }, end: l.next }
      }
      const m = many(kind === '%' || kind === '|' ? 2 * n : n, l.next)
      if (m === undefined) return undefined
      const end = m.next
      if (kind === '*') return { value: { type: 'array', value: m.items }, end }
      if (kind === '~') return { value: { type: 'set', value: m.items }, end }
      if (kind === '>') return { value: { type: 'push', value: m.items }, end }
      if (kind === '%') return { value: { type: 'map', value: pairs(m.items) }, end }
      // An attribute precedes the reply it annotates; it is returned on its own here.
      return { value: { type: 'attribute', value: pairs(m.items) }, end }
    }
    default:
      throw new RespProtocolError(`unexpected byte 0x${(buf[start] as number).toString(16).padStart(2, '0')} (${JSON.stringify(kind)}) at offset ${start}`)
  }
}

/**
 * A plain JavaScript form of a reply, for readable assertions: strings for simple strings
 * and bulks (latin1, so every byte survives), numbers for integers that fit (bigint
 * otherwise), `null`, arrays, `{ error: text }`, and Maps for RESP3 maps.
 */
export function plain(v: RespValue): unknown {
  switch (v.type) {
    case 'simple':
      return v.value
    case 'error':
      return { error: v.value }
    case 'blob-error':
      return { error: v.value.toString('latin1') }
    case 'integer':
      return v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.value) : v.value
    case 'bulk':
      return v.value === null ? null : v.value.toString('latin1')
    case 'verbatim':
      return v.value.toString('latin1')
    case 'array':
      return v.value === null ? null : v.value.map(plain)
    case 'set':
    case 'push':
      return v.value.map(plain)
    case 'null':
      return null
    case 'double':
      return Number(v.value)
    case 'boolean':
      return v.value
    case 'bignum':
      return BigInt(v.value)
    case 'map':
    case 'attribute':
      return new Map(v.value.map(([k, x]) => [plain(k), plain(x)]))
  }
}

/** A RESP connection to a server. Replies are read in order; reads never overlap. */
export class RespClient {
  readonly #socket: Socket
  #buf: Buffer = Buffer.alloc(0)
  #waiter: (() => void) | undefined
  #ended = false
  #error: Error | undefined
  readonly #closed: Promise<void>
  #reading: Promise<unknown> = Promise.resolve()

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
      this.#wake()
    })
    socket.on('error', (err) => {
      this.#error = err
      this.#wake()
    })
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#ended = true
        this.#wake()
        resolve()
      }),
    )
    socket.on('end', () => {
      this.#ended = true
      this.#wake()
    })
  }

  /** Connect to `host:port` (default 127.0.0.1); rejects when the connection is refused. */
  static connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host })
      socket.setNoDelay(true)
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new RespClient(socket))
      })
    })
  }

  /** Whether the server closed the connection (or it failed). */
  get ended(): boolean {
    return this.#ended
  }

  /** Resolves once the connection is closed, by either side. */
  get closed(): Promise<void> {
    return this.#closed
  }

  /** Bytes received and not yet read as replies. */
  get pending(): Buffer {
    return this.#buf
  }

  /** Send one command as a RESP array of bulk strings. */
  send(args: readonly (string | Buffer)[]): void {
    this.#socket.write(encodeCommand(args))
  }

  /** Send bytes as they are (inline commands, half frames, garbage). */
  sendRaw(bytes: string | Buffer): void {
    this.#socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
  }

  /**
   * The next whole reply. Rejects when the connection ends or fails before one arrives,
   * on bytes that are not RESP, or after `timeoutMs` (default 10 s), saying what was
   * received so far.
   */
  read(timeoutMs = READ_TIMEOUT_MS): Promise<RespReply> {
    const next = this.#reading.then(() => this.#readOne(timeoutMs))
    this.#reading = next.catch(() => undefined)
    return next
  }

  /** Send one command and read its reply. */
  async call(args: readonly (string | Buffer)[], timeoutMs?: number): Promise<RespReply> {
    this.send(args)
    return this.read(timeoutMs)
  }

  /** Send every command in one write, then read as many replies, in order. */
  async pipeline(commands: readonly (readonly (string | Buffer)[])[], timeoutMs?: number): Promise<RespReply[]> {
    this.#socket.write(Buffer.concat(commands.map(encodeCommand)))
    const out: RespReply[] = []
    for (let i = 0; i < commands.length; i++) out.push(await this.read(timeoutMs))
    return out
  }

  /** Close the connection (half-close, then wait for the server to close its side; destroy after 2 s). */
  async close(): Promise<void> {
    if (!this.#socket.destroyed) this.#socket.end()
    const timer = setTimeout(() => this.#socket.destroy(), 2_000)
    await this.#closed
    clearTimeout(timer)
  }

  /** Drop the connection at once (RST when data is unread). */
  destroy(): void {
    this.#socket.destroy()
  }

  #wake(): void {
    const w = this.#waiter
    this.#waiter = undefined
    w?.()
  }

  async #readOne(timeoutMs: number): Promise<RespReply> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const r = parseReply(this.#buf)
      if (r !== undefined) {
        const raw = Buffer.from(this.#buf.subarray(0, r.end))
        this.#buf = this.#buf.subarray(r.end)
        return { raw, value: r.value }
      }
      const seen = () => `received so far: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`
      if (this.#error !== undefined) throw new Error(`connection failed before a whole reply (${this.#error.message}); ${seen()}`)
      if (this.#ended) throw new Error(`connection closed before a whole reply; ${seen()}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no whole reply within ${timeoutMs} ms; ${seen()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiter = undefined
          resolve()
        }, left)
        this.#waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }
}

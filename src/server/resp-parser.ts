// Incremental parser of client requests in RESP: multibulk frames (`*2\r\n$3\r\nGET\r\n$1\r\na\r\n`)
// and inline commands (`GET a\r\n`), fed with whatever chunks the socket delivers. Bounded: a
// declared length is checked against the limits before any byte of it is awaited, and nothing is
// ever allocated from a declared length; memory grows only with bytes actually received.
import { isUtf8 } from 'node:buffer'
import { StoreError } from '../errors.js'
import { tokenize } from '../commands/tokenizer.js'

/** The parser's limits (see `ServerOptions` for what each means and its default). */
export interface RespLimits {
  /** Largest bulk string, in bytes (Redis `proto-max-bulk-len`). */
  maxBulkBytes: number
  /** Most elements in one multibulk request. */
  maxArrayLength: number
  /** Largest request being assembled, in bytes (Redis `client-query-buffer-limit`). */
  maxQueryBufferBytes: number
  /** The client has not authenticated yet: {@link UNAUTHENTICATED_LIMITS} apply too. */
  unauthenticated?: boolean
}

/** Limits for a connection that has not authenticated yet (Redis uses the same two numbers). */
export const UNAUTHENTICATED_LIMITS = { maxArrayLength: 10, maxBulkBytes: 16_384 } as const

/** The reply to a request whose words are not all valid UTF-8 (except ECHO and PING). */
export const NOT_TEXT = 'ERR kvstore keys and values are text: every argument must be valid UTF-8'

/** Longest inline command or `*`/`$` header line, in bytes (Redis `PROTO_INLINE_MAX_SIZE`). */
export const MAX_INLINE_BYTES = 64 * 1024

/**
 * A request the connection must refuse; `message` is the RESP error line's text (Redis's own
 * wording where Redis has one). After it the stream cannot be resynchronised: the connection
 * replies with it and closes.
 */
export class RespProtocolError extends Error {
  override name = 'RespProtocolError'
}

/**
 * One parsed request: its words, or why it cannot run (the request was consumed either way).
 * A bulk that is not valid UTF-8 cannot be a stored string: its word is the bytes read as
 * Latin-1 (for messages) and `binary[i]` holds the bytes (ECHO and PING send them back).
 */
export type RespRequest =
  | { readonly args: string[]; readonly binary?: readonly (Buffer | undefined)[]; readonly invalid?: undefined }
  | { readonly args?: undefined; readonly invalid: string }

const CR = 13
const LF = 10
const STAR = 42
const DOLLAR = 36
const EMPTY = Buffer.alloc(0)

/** Incremental RESP request parser; one per connection. */
export class RespParser {
  #limits: RespLimits
  /** Unparsed input: `#buf[#pos..]`, plus chunks not yet merged into it. */
  #buf: Buffer = EMPTY
  #pos = 0
  #chunks: Buffer[] = []
  #chunkBytes = 0
  /** Bytes that must be buffered before parsing can progress (so a large bulk is merged once). */
  #need = 0
  /** Multibulk in progress: elements expected (-1: between requests), collected, bulk length pending (-1: none). */
  #argc = -1
  #args: string[] = []
  #argBytes = 0
  #bulkLen = -1
  #binary: (Buffer | undefined)[] | undefined

  constructor(limits: RespLimits) {
    this.#limits = limits
  }

  /** Replace the limits (e.g. once the client authenticated); they apply from the next header parsed. */
  setLimits(limits: RespLimits): void {
    this.#limits = limits
  }

  /** Bytes received and not yet returned as requests. */
  get bufferedBytes(): number {
    return this.#buf.length - this.#pos + this.#chunkBytes + this.#argBytes
  }

  /** Add bytes received from the socket. The parser keeps a reference; the caller must not reuse `chunk`. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#chunkBytes += chunk.length
  }

  /**
   * The next complete request, or `undefined` until more bytes arrive.
   *
   * @throws {@link RespProtocolError} for a malformed request or one over the limits.
   */
  next(): RespRequest | undefined {
    for (;;) {
      if (this.#available() < this.#need) {
        this.#checkQueryBuffer()
        return undefined
      }
      this.#merge()
      this.#need = 0
      const req = this.#argc < 0 ? this.#startRequest() : this.#continueMultibulk()
      if (req === 'more') {
        this.#checkQueryBuffer()
        return undefined
      }
      if (req !== 'skip') return req
    }
  }

  #available(): number {
    return this.#buf.length - this.#pos + this.#chunkBytes
  }

  #merge(): void {
    if (this.#chunks.length === 0) return
    const rest = this.#pos < this.#buf.length ? [this.#buf.subarray(this.#pos), ...this.#chunks] : this.#chunks
    this.#buf = rest.length === 1 ? (rest[0] as Buffer) : Buffer.concat(rest)
    this.#pos = 0
    this.#chunks = []
    this.#chunkBytes = 0
  }

  #checkQueryBuffer(): void {
    if (this.bufferedBytes > this.#limits.maxQueryBufferBytes) {
      throw new RespProtocolError(`max query buffer length reached (${this.#limits.maxQueryBufferBytes} bytes)`)
    }
  }

  /** Index of the LF ending the line at `#pos`, or -1 (too long: throws `tooLong`). */
  #lineEnd(tooLong: string): number {
    const end = this.#buf.indexOf(LF, this.#pos)
    if (end < 0) {
      if (this.#buf.length - this.#pos > MAX_INLINE_BYTES) throw new RespProtocolError(tooLong)
      this.#need = this.#buf.length - this.#pos + 1
      return -1
    }
    if (end - this.#pos > MAX_INLINE_BYTES) throw new RespProtocolError(tooLong)
    return end
  }

  #startRequest(): RespRequest | 'more' | 'skip' {
    if (this.#pos >= this.#buf.length) {
      this.#need = 1
      return 'more'
    }
    if (this.#buf[this.#pos] !== STAR) return this.#inline()
    const end = this.#lineEnd('Protocol error: too big mbulk count string')
    if (end < 0) return 'more'
    const n = parseLength(this.#buf, this.#pos + 1, end)
    this.#pos = end + 1
    if (n === undefined) throw new RespProtocolError('Protocol error: invalid multibulk length')
    if (n <= 0) return 'skip'
    if (n > this.#limits.maxArrayLength) throw new RespProtocolError('Protocol error: invalid multibulk length')
    if (this.#limits.unauthenticated === true && n > UNAUTHENTICATED_LIMITS.maxArrayLength) {
      throw new RespProtocolError('Protocol error: unauthenticated multibulk length')
    }
    this.#argc = n
    this.#args = []
    this.#argBytes = 0
    this.#binary = undefined
    return this.#continueMultibulk()
  }

  #continueMultibulk(): RespRequest | 'more' {
    const buf = this.#buf
    while (this.#args.length < this.#argc) {
      if (this.#bulkLen < 0) {
        if (this.#pos >= buf.length) {
          this.#need = 1
          return 'more'
        }
        if (buf[this.#pos] !== DOLLAR) {
          throw new RespProtocolError(`Protocol error: expected '$', got '${String.fromCharCode(buf[this.#pos] as number)}'`)
        }
        const end = this.#lineEnd('Protocol error: too big bulk count string')
        if (end < 0) return 'more'
        const len = parseLength(buf, this.#pos + 1, end)
        if (len === undefined || len < 0 || len > this.#limits.maxBulkBytes) throw new RespProtocolError('Protocol error: invalid bulk length')
        if (this.#limits.unauthenticated === true && len > UNAUTHENTICATED_LIMITS.maxBulkBytes) {
          throw new RespProtocolError('Protocol error: unauthenticated bulk length')
        }
        this.#pos = end + 1
        this.#bulkLen = len
      }
      const len = this.#bulkLen
      if (buf.length - this.#pos < len + 2) {
        this.#need = len + 2
        return 'more'
      }
      const start = this.#pos
      const bytes = buf.subarray(start, start + len)
      // Stored keys and values are strings: only valid UTF-8 comes back byte for byte.
      if (isUtf8(bytes)) this.#args.push(buf.toString('utf8', start, start + len))
      else {
        this.#binary ??= []
        this.#binary[this.#args.length] = Buffer.from(bytes)
        this.#args.push(buf.toString('latin1', start, start + len))
      }
      this.#argBytes += len
      this.#pos = start + len + 2
      this.#bulkLen = -1
    }
    const args = this.#args
    const binary = this.#binary
    this.#argc = -1
    this.#args = []
    this.#argBytes = 0
    this.#binary = undefined
    return binary === undefined ? { args } : { args, binary }
  }

  #inline(): RespRequest | 'more' | 'skip' {
    const end = this.#lineEnd('Protocol error: too big inline request')
    if (end < 0) return 'more'
    const stop = end > this.#pos && this.#buf[end - 1] === CR ? end - 1 : end
    const bytes = this.#buf.subarray(this.#pos, stop)
    this.#pos = end + 1
    if (!isUtf8(bytes)) return { invalid: NOT_TEXT }
    let words: string[]
    try {
      words = tokenize(bytes.toString('utf8'))
    } catch (err) {
      if (err instanceof StoreError) throw new RespProtocolError('Protocol error: unbalanced quotes in request')
      throw err
    }
    if (words.length === 0) return 'skip'
    if (words.length > this.#limits.maxArrayLength) throw new RespProtocolError('Protocol error: invalid multibulk length')
    return { args: words }
  }
}

/** The decimal integer in `buf[start, lf)` (an optional CR before `lf`), or `undefined` when malformed. */
function parseLength(buf: Buffer, start: number, lf: number): number | undefined {
  const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf
  let i = start
  let negative = false
  if (buf[i] === 45) {
    negative = true
    i++
  }
  if (i >= end || end - i > 15) return undefined
  let n = 0
  for (; i < end; i++) {
    const d = (buf[i] as number) - 48
    if (d < 0 || d > 9) return undefined
    n = n * 10 + d
  }
  return negative ? -n : n
}

// JSON snapshot format.
//
// v1 (seed 004, read only): {"version":1,"timestamp":"<ISO>","data":{"key":"value",…}}
// v2 (written): the same shape, one entry per line, so a plain string map still reads
// as one, and the file is streamed line by line on both write and read:
//
//   {"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":12,"count":4,"data":{
//   "counter":42,
//   "session:9":{"value":"abc","expiresAt":1705314600000,"version":7},
//   "user:1":"Alice",
//   "blob":{"type":"bytes","value":"AAEC"}
//   }}
//
// An entry value is bare JSON when it is a string, number (-0 written as -0), boolean
// or null with no expiry and version 0. Anything else is a wrapper object
// {"type"?, "value", "expiresAt"?, "version"?} (omitted fields are absent/0):
//   type absent   value is a bare string, number, boolean or null
//   "json"        value is the JSON data as is
//   "bytes"       value is base64
//   "list"        value is an array of elements
//   "hash"        value is an array of [field, element] pairs (keeps field order exactly)
// Elements (list items, hash field values) are bare scalars or {"type":"json"|"bytes","value":…}.
// An object in value position is therefore always a wrapper, never ambiguous.

import { ByteWriter } from '../codec/bytes.js'
import { freezeJson } from '../codec/value.js'
import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import { DEFAULT_PAUSE_EVERY, FLUSH_BYTES, type SnapshotEntry, type SnapshotFormat, type SnapshotMeta, type SnapshotReadResult, type SnapshotWriteOptions } from './format.js'
import { ChunkSink, readChunks, readHead, sniff } from './stream.js'

/** The JSON version this code writes. */
export const JSON_VERSION = 2

/** Files parsed whole (seed v1, hand-reformatted v2) may be at most this large once decompressed. */
export const MAX_WHOLE_JSON_BYTES = 256 * 1024 * 1024

const WRAPPER_KEYS = new Set(['type', 'value', 'expiresAt', 'version'])
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * The JSON snapshot format: human-readable, one entry per line (v2); reads seed v1.
 *
 * `read` streams files this code wrote; seed v1 files and v2 files a human has
 * reformatted are parsed whole (up to {@link MAX_WHOLE_JSON_BYTES}) and come in
 * JavaScript object key order, not file order. JSON carries no checksum: damage is
 * detected only when it breaks the syntax, the structure or the entry count.
 */
export const jsonSnapshot: SnapshotFormat = {
  name: 'json',
  write: writeJson,
  read: readJson,
}

async function writeJson(fs: Fs, fd: number, meta: SnapshotMeta, entries: Iterable<SnapshotEntry>, opts: SnapshotWriteOptions = {}): Promise<{ bytes: number }> {
  const sink = new ChunkSink(fs, fd, opts.compress)
  try {
    const pause = opts.pause
    const every = opts.pauseEvery ?? DEFAULT_PAUSE_EVERY
    const w = new ByteWriter(FLUSH_BYTES * 2)
    w.text(`{"version":${JSON_VERSION},"timestamp":${JSON.stringify(new Date(meta.timestamp).toISOString())},"seq":${meta.seq},"count":${meta.count},"data":{\n`)
    let n = 0
    for (const e of entries) {
      if (n > 0) w.text(',\n')
      w.text(JSON.stringify(e.key))
      w.u8(0x3a) // ':'
      writeEntryValue(w, e)
      n++
      if (w.length >= FLUSH_BYTES) {
        await sink.write(w.finish())
        w.reset()
      }
      if (pause !== undefined && n % every === 0) await pause()
    }
    if (n !== meta.count) throw new StoreError('KV_INVALID_ARGUMENT', `snapshot meta.count is ${meta.count} but ${n} entries were given`)
    w.text(n > 0 ? '\n}}\n' : '}}\n')
    await sink.write(w.finish())
    return { bytes: await sink.end() }
  } catch (err) {
    sink.destroy()
    throw err
  }
}

function writeEntryValue(w: ByteWriter, e: SnapshotEntry): void {
  const v = e.value
  const scalar = isScalar(v)
  if (scalar && e.expiresAt === 0 && e.version === 0) {
    writeScalar(w, v)
    return
  }
  w.text('{')
  if (!scalar) {
    if (v instanceof KvList) {
      w.text('"type":"list","value":[')
      let first = true
      for (const item of v) {
        if (!first) w.u8(0x2c)
        first = false
        writeElement(w, item)
      }
      w.text(']')
    } else if (v instanceof KvHash) {
      w.text('"type":"hash","value":[')
      let first = true
      for (const [f, item] of v) {
        w.text(first ? '[' : ',[')
        first = false
        w.text(JSON.stringify(f))
        w.u8(0x2c)
        writeElement(w, item)
        w.text(']')
      }
      w.text(']')
    } else {
      writeTypedElementBody(w, v)
    }
  } else {
    w.text('"value":')
    writeScalar(w, v)
  }
  if (e.expiresAt !== 0) w.text(`,"expiresAt":${numberText(e.expiresAt)}`)
  if (e.version !== 0) w.text(`,"version":${numberText(e.version)}`)
  w.text('}')
}

function writeElement(w: ByteWriter, v: unknown): void {
  if (isScalar(v)) {
    writeScalar(w, v)
    return
  }
  w.text('{')
  writeTypedElementBody(w, v)
  w.text('}')
}

/** `"type":"json"|"bytes","value":…` for a non-scalar, non-collection value. */
function writeTypedElementBody(w: ByteWriter, v: unknown): void {
  if (v instanceof KvList || v instanceof KvHash) throw new StoreError('KV_INVALID_VALUE', 'a collection cannot hold another collection')
  if (v instanceof Uint8Array) {
    w.text('"type":"bytes","value":"')
    w.text(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'))
    w.text('"')
    return
  }
  if (typeof v !== 'object') throw new StoreError('KV_INVALID_VALUE', `cannot encode a ${typeof v}`)
  w.text('"type":"json","value":')
  w.text(JSON.stringify(v))
}

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

function writeScalar(w: ByteWriter, v: string | number | boolean | null): void {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new StoreError('KV_INVALID_VALUE', `cannot encode ${v}`)
    w.text(numberText(v))
  } else w.text(JSON.stringify(v))
}

/** JSON text of a finite number, keeping -0 (JSON.stringify writes 0; JSON.parse reads -0 back). */
function numberText(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n)
}

/** A structural surprise in the line-oriented layout: worth retrying as whole-file JSON. */
class LayoutError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message)
  }
}

async function readJson(fs: Fs, path: string, visit: (e: SnapshotEntry) => void): Promise<SnapshotReadResult> {
  const { compression } = sniff(readHead(fs, path))
  const where = compression === undefined ? 'byte offset' : `${compression}-decompressed byte offset`
  const ctx: Ctx = { path, where }
  const out: SnapshotEntry[] = []
  let result: SnapshotReadResult
  try {
    result = await readLines(fs, path, compression, ctx, out)
  } catch (err) {
    if (!(err instanceof LayoutError)) throw err
    out.length = 0
    try {
      result = await readWhole(fs, path, compression, ctx, out)
    } catch (wholeErr) {
      // A file that started as our line layout is best explained by where the lines broke.
      if (err.offset > 0 && wholeErr instanceof StoreError && wholeErr.code === 'KV_CORRUPT') {
        throw new StoreError('KV_CORRUPT', `${path}: damaged JSON snapshot at ${where} ${err.offset}: ${err.message}`)
      }
      throw wholeErr
    }
  }
  for (const e of out) visit(e)
  return result
}

interface Ctx {
  path: string
  where: string
}

function corrupt(ctx: Ctx, offset: number, why: string, cause?: unknown): StoreError {
  return new StoreError('KV_CORRUPT', `${ctx.path}: damaged JSON snapshot at ${ctx.where} ${offset}: ${why}`, cause === undefined ? undefined : { cause })
}

/** Stream a v2 file in our line layout; LayoutError when it is laid out otherwise. */
async function readLines(fs: Fs, path: string, compression: 'gzip' | 'brotli' | undefined, ctx: Ctx, out: SnapshotEntry[]): Promise<SnapshotReadResult> {
  const chunks = readChunks(fs, path, compression)
  let header: Header | undefined
  let closed = false
  let expectMore = true // after a line ending in ',' (or the header) another entry must follow
  try {
    let base = 0 // stream offset of the first byte not yet split into lines
    let first = true
    const onLine = (line: string, at: number): void => {
      if (first) {
        first = false
        if (line.charCodeAt(0) === 0xfeff) line = line.slice(1)
        header = parseHeaderLine(line, ctx)
        return
      }
      const h = header as Header
      const body = trimEnd(line)
      if (closed) {
        if (body !== '') throw new LayoutError(at, 'text after the closing }}')
        return
      }
      if (body === '}}') {
        if (expectMore && out.length > 0) throw new LayoutError(at, 'an entry line ends with "," but no entry follows')
        closed = true
        return
      }
      if (!expectMore) throw new LayoutError(at, 'an entry line without a trailing ","')
      const comma = body.endsWith(',')
      expectMore = comma
      out.push(parseEntryLine(comma ? body.slice(0, -1) : body, at, h, ctx))
    }
    // Bytes after the last newline seen; kept as parts so a long line costs O(length), not O(length²).
    let carry: Buffer[] = []
    let carryBytes = 0
    for await (const chunk of chunks) {
      if (chunk.indexOf(0x0a) === -1) {
        carry.push(chunk)
        carryBytes += chunk.length
        // A huge first line is not our layout (likely a one-line v1 file): parse it whole instead.
        if (first && carryBytes > 1 << 20) throw new LayoutError(0, 'header line too long')
        continue
      }
      const buf = carry.length === 0 ? chunk : Buffer.concat([...carry, chunk], carryBytes + chunk.length)
      let start = 0
      for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, start)) {
        onLine(buf.toString('utf8', start, nl), base + start)
        start = nl + 1
      }
      base += start
      const rest = buf.subarray(start)
      carry = rest.length === 0 ? [] : [rest]
      carryBytes = rest.length
    }
    const pending = Buffer.concat(carry, carryBytes)
    if (pending.length > 0) onLine(pending.toString('utf8'), base)
    if (header === undefined) throw new LayoutError(0, 'empty file')
    if (!closed) throw new LayoutError(base + pending.length, 'the closing }} is missing (truncated file)')
  } finally {
    await chunks.return()
  }
  const h = header
  if (h.count !== undefined && h.count !== out.length) throw corrupt(ctx, 0, `header says ${h.count} entries but the file holds ${out.length}`)
  return { seq: h.seq, timestamp: h.timestamp, count: out.length, version: h.version }
}

interface Header {
  version: number
  seq: number
  timestamp: number
  count: number | undefined
}

function parseHeaderLine(line: string, ctx: Ctx): Header {
  const body = trimEnd(line)
  if (!body.startsWith('{') || !body.endsWith('"data":{')) throw new LayoutError(0, 'first line is not a version 2 header')
  let raw: unknown
  try {
    raw = JSON.parse(`${body}}}`)
  } catch {
    throw new LayoutError(0, 'first line is not a version 2 header')
  }
  const h = parseHeader(raw as Record<string, unknown>, ctx)
  if (h.version !== 2) throw new LayoutError(0, 'not a version 2 file')
  return h
}

function parseHeader(raw: Record<string, unknown>, ctx: Ctx): Header {
  const version = raw.version
  if (version !== 1 && version !== 2) throw corrupt(ctx, 0, `unsupported version ${JSON.stringify(version)}`)
  const seq = raw.seq ?? 0
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw corrupt(ctx, 0, `bad seq ${JSON.stringify(seq)}`)
  const count = raw.count
  if (count !== undefined && (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)) throw corrupt(ctx, 0, `bad count ${JSON.stringify(count)}`)
  let timestamp = 0
  const ts = raw.timestamp
  if (typeof ts === 'string') {
    timestamp = Date.parse(ts)
    if (Number.isNaN(timestamp)) throw corrupt(ctx, 0, `bad timestamp ${JSON.stringify(ts)}`)
  } else if (typeof ts === 'number' && Number.isFinite(ts)) {
    timestamp = ts
  } else if (ts !== undefined) {
    throw corrupt(ctx, 0, `bad timestamp ${JSON.stringify(ts)}`)
  }
  return { version, seq, timestamp, count }
}

function parseEntryLine(body: string, at: number, h: Header, ctx: Ctx): SnapshotEntry {
  if (body.charCodeAt(0) !== 0x22) throw new LayoutError(at, 'an entry line must start with a quoted key')
  // Find the key's closing quote: the first '"' not escaped by an odd run of backslashes.
  let end = 0
  for (let from = 1; ; ) {
    const q = body.indexOf('"', from)
    if (q === -1) throw new LayoutError(at, 'unterminated key')
    let bs = 0
    for (let i = q - 1; i > 0 && body.charCodeAt(i) === 0x5c; i--) bs++
    if (bs % 2 === 0) {
      end = q
      break
    }
    from = q + 1
  }
  let key: string
  let rawValue: unknown
  try {
    key = body.lastIndexOf('\\', end) !== -1 ? (JSON.parse(body.slice(0, end + 1)) as string) : body.slice(1, end)
    let colon = end + 1
    while (isSpace(body.charCodeAt(colon))) colon++
    if (body.charCodeAt(colon) !== 0x3a) throw new Error('expected ":" after the key')
    rawValue = JSON.parse(body.slice(colon + 1))
  } catch (err) {
    throw new LayoutError(at, `not a "key":value line (${(err as Error).message})`)
  }
  return decodeEntry(key, rawValue, h.version, ctx, at)
}

/** Parse a whole file (seed v1, or v2 laid out differently). */
async function readWhole(fs: Fs, path: string, compression: 'gzip' | 'brotli' | undefined, ctx: Ctx, out: SnapshotEntry[]): Promise<SnapshotReadResult> {
  const parts: Buffer[] = []
  let size = 0
  const chunks = readChunks(fs, path, compression)
  try {
    for await (const c of chunks) {
      size += c.length
      if (size > MAX_WHOLE_JSON_BYTES) {
        throw corrupt(ctx, MAX_WHOLE_JSON_BYTES, `this JSON layout is only read whole, and the file exceeds ${MAX_WHOLE_JSON_BYTES} bytes: use the binary format (or the one-entry-per-line JSON this store writes)`)
      }
      parts.push(c)
    }
  } finally {
    await chunks.return()
  }
  const bytes = Buffer.concat(parts, size)
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message)
    const offset = m === null ? 0 : Buffer.byteLength(text.slice(0, Number(m[1])), 'utf8')
    throw corrupt(ctx, offset, `invalid JSON (${(err as Error).message})`, err)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(ctx, 0, 'the top level is not an object')
  const h = parseHeader(raw as Record<string, unknown>, ctx)
  const data = (raw as Record<string, unknown>).data
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(ctx, 0, '"data" is missing or not an object')
  for (const key of Object.keys(data)) {
    out.push(decodeEntry(key, (data as Record<string, unknown>)[key], h.version, ctx, 0))
  }
  if (h.count !== undefined && h.count !== out.length) throw corrupt(ctx, 0, `header says ${h.count} entries but the file holds ${out.length}`)
  return { seq: h.seq, timestamp: h.timestamp, count: out.length, version: h.version }
}

function decodeEntry(key: string, raw: unknown, version: number, ctx: Ctx, at: number): SnapshotEntry {
  if (!key.isWellFormed()) throw corrupt(ctx, at, `key ${JSON.stringify(key)} has a lone surrogate`)
  if (version === 1) {
    // Seed v1 holds strings; other JSON is kept as the matching type rather than refused.
    return { key, value: decodeV1(raw, ctx, at, key), expiresAt: 0, version: 0 }
  }
  if (isScalar(raw)) return { key, value: checkScalar(raw, ctx, at, key), expiresAt: 0, version: 0 }
  if (Array.isArray(raw) || typeof raw !== 'object' || raw === null) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: an array must be wrapped as {"type":"json","value":[…]}`)
  const w = raw as Record<string, unknown>
  for (const k of Object.keys(w)) if (!WRAPPER_KEYS.has(k)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: unknown field ${JSON.stringify(k)}`)
  if (!Object.hasOwn(w, 'value')) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: wrapper without "value"`)
  const expiresAt = metaNumber(w.expiresAt, 'expiresAt', ctx, at, key)
  const ver = metaNumber(w.version, 'version', ctx, at, key)
  const type = w.type
  const v = w.value
  let value: unknown
  if (type === undefined) {
    if (!isScalar(v)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: a wrapper without "type" must hold a string, number, boolean or null`)
    value = checkScalar(v, ctx, at, key)
  } else if (type === 'list') {
    if (!Array.isArray(v)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: list value is not an array`)
    value = new KvList(v.map((item) => decodeElement(item, ctx, at, key)))
  } else if (type === 'hash') {
    if (!Array.isArray(v)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: hash value is not an array of pairs`)
    const hash = new KvHash()
    for (const pair of v) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || !pair[0].isWellFormed()) {
        throw corrupt(ctx, at, `key ${JSON.stringify(key)}: hash pair is not [field, value]`)
      }
      hash.set(pair[0], decodeElement(pair[1], ctx, at, key))
    }
    value = hash
  } else {
    value = decodeTyped(type, v, ctx, at, key)
  }
  return { key, value, expiresAt, version: ver }
}

function decodeV1(raw: unknown, ctx: Ctx, at: number, key: string): unknown {
  if (isScalar(raw)) return checkScalar(raw, ctx, at, key)
  return freezeJson(checkStrings(raw, ctx, at, key))
}

function decodeElement(raw: unknown, ctx: Ctx, at: number, key: string): unknown {
  if (isScalar(raw)) return checkScalar(raw, ctx, at, key)
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: bad element`)
  const w = raw as Record<string, unknown>
  const keys = Object.keys(w)
  if (keys.length !== 2 || !Object.hasOwn(w, 'type') || !Object.hasOwn(w, 'value')) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: an element wrapper is {"type","value"}`)
  return decodeTyped(w.type, w.value, ctx, at, key)
}

function decodeTyped(type: unknown, v: unknown, ctx: Ctx, at: number, key: string): unknown {
  if (type === 'json') {
    if (v === undefined) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: json wrapper without value`)
    return freezeJson(checkStrings(v, ctx, at, key))
  }
  if (type === 'bytes') {
    if (typeof v !== 'string' || !BASE64.test(v)) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: bytes value is not base64`)
    const b = Buffer.from(v, 'base64')
    return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
  }
  throw corrupt(ctx, at, `key ${JSON.stringify(key)}: unknown type ${JSON.stringify(type)}`)
}

function checkScalar<T>(v: T, ctx: Ctx, at: number, key: string): T {
  if (typeof v === 'string' && !v.isWellFormed()) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: value has a lone surrogate`)
  return v
}

/** Strings (and object keys) in JSON data must be well-formed, as the store requires. */
function checkStrings(v: unknown, ctx: Ctx, at: number, key: string): unknown {
  if (typeof v === 'string') return checkScalar(v, ctx, at, key)
  if (typeof v === 'object' && v !== null) {
    if (Array.isArray(v)) {
      for (const item of v) checkStrings(item, ctx, at, key)
    } else {
      for (const k of Object.keys(v)) {
        checkScalar(k, ctx, at, key)
        checkStrings((v as Record<string, unknown>)[k], ctx, at, key)
      }
    }
  }
  return v
}

function metaNumber(v: unknown, what: string, ctx: Ctx, at: number, key: string): number {
  if (v === undefined) return 0
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw corrupt(ctx, at, `key ${JSON.stringify(key)}: bad ${what} ${JSON.stringify(v)}`)
  return v
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function trimEnd(s: string): string {
  let end = s.length
  while (end > 0 && isSpace(s.charCodeAt(end - 1))) end--
  return end === s.length ? s : s.slice(0, end)
}

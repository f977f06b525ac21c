// JSON snapshot format.
//
// v1 (the first kvstore format, read only): {"version":1,"timestamp":"<ISO>","data":{"key":"value",…}}
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
//
// Reading never buffers a line beyond maxJsonLineBytes (derived from the limits), and
// checks every entry as set() checks its input (format.ts), since JSON has no checksum
// and is the format people edit by hand.

import { constants as bufferConstants, isUtf8 } from 'node:buffer'
import { ByteWriter } from '../codec/bytes.js'
import { freezeJson } from '../codec/value.js'
import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import {
  checkExpiresAt,
  checkKey,
  checkTimestamp,
  checkVersion,
  DEFAULT_PAUSE_EVERY,
  FLUSH_BYTES,
  type ResolvedLimits,
  resolveLimits,
  type SnapshotCompression,
  type SnapshotEntry,
  type SnapshotFormat,
  type SnapshotLimits,
  type SnapshotMeta,
  type SnapshotReadOptions,
  type SnapshotReadResult,
  type SnapshotWriteOptions,
  showValue,
} from './format.js'
import { ChunkSink, readChunks, readHead, sniff } from './stream.js'

/** The JSON version this code writes. */
export const JSON_VERSION = 2

/** Files parsed whole (version 1, hand-reformatted v2) may be at most this large once decompressed. */
export const MAX_WHOLE_JSON_BYTES = 256 * 1024 * 1024

/** Longest string V8 can make, in UTF-16 units (a line of n bytes decodes to at most n units). */
const MAX_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH

const WRAPPER_KEYS = new Set(['type', 'value', 'expiresAt', 'version'])
/** Base64 alphabet with up to two `=` at the end; the length (a multiple of 4) is checked apart. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * The JSON snapshot format: human-readable, one entry per line (v2); reads version-1 files (the first format).
 *
 * `read` streams files this code wrote; version-1 files and v2 files a human has
 * reformatted are parsed whole (up to {@link MAX_WHOLE_JSON_BYTES}) and come in
 * JavaScript object key order, not file order. JSON carries no checksum: damage is
 * detected only when it breaks the syntax, UTF-8, the structure, the entry count or a
 * field check (keys, versions, expiry, sizes, nesting; see `SnapshotFormat.read`).
 * `write` refuses (`KV_VALUE_TOO_LARGE`) an entry whose line would exceed
 * {@link maxJsonLineBytes} for the limits in its options.
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
    const maxLine = maxJsonLineBytes(opts)
    const w = new ByteWriter(FLUSH_BYTES * 2)
    w.text(`{"version":${JSON_VERSION},"timestamp":${JSON.stringify(new Date(meta.timestamp).toISOString())},"seq":${meta.seq},"count":${meta.count},"data":{\n`)
    let n = 0
    for (const e of entries) {
      if (n > 0) w.text(',\n')
      const lineStart = w.length
      w.text(JSON.stringify(e.key))
      w.u8(0x3a) // ':'
      writeEntryValue(w, e)
      // A line the reader would refuse must not reach the file (it would be replacing good data).
      if (w.length - lineStart > maxLine) {
        throw new StoreError('KV_VALUE_TOO_LARGE', `the JSON line of key ${showValue(e.key)} would be ${w.length - lineStart} bytes, over the ${maxLine} a reader accepts: use the binary format`)
      }
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

/**
 * Most bytes one entry line may take, for these limits: 6 bytes per key or value byte
 * (a control character is written as `\u00XX`) plus {@link LINE_SLACK_BYTES} for the
 * wrapper, capped at the longest string V8 can make. A reader never buffers a line
 * past this; a writer refuses an entry whose line would exceed it. Lists and hashes
 * are written on one line too, so a collection must fit (use the binary format for
 * larger ones).
 *
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad limits.
 */
export function maxJsonLineBytes(limits?: SnapshotLimits): number {
  const { maxKeyBytes, maxValueBytes } = resolveLimits(limits)
  return Math.min(MAX_STRING_LENGTH, 6 * (maxKeyBytes + maxValueBytes) + LINE_SLACK_BYTES)
}

/** Bytes an entry line may hold beyond its escaped key and value: quotes, wrapper fields, numbers. */
export const LINE_SLACK_BYTES = 64 * 1024

/** A first line longer than this is not our header (likely a one-line file): it is parsed whole instead. */
const MAX_HEADER_LINE_BYTES = 1 << 20

/** Where a reader is: a byte offset and, in the line layout, a 1-based line number (0 = not known). */
interface Loc {
  offset: number
  line: number
}

async function readJson(fs: Fs, path: string, visit: (e: SnapshotEntry) => void, opts?: SnapshotReadOptions): Promise<SnapshotReadResult> {
  const limits = resolveLimits(opts)
  const { compression } = sniff(readHead(fs, path))
  const where = compression === undefined ? 'byte offset' : `${compression}-decompressed byte offset`
  const ctx: Ctx = { path, where, limits, maxLine: maxJsonLineBytes(limits) }
  const out: SnapshotEntry[] = []
  let result: SnapshotReadResult
  try {
    result = await readEither(fs, path, compression, ctx, out)
  } catch (err) {
    if (err instanceof StoreError) throw err
    // Whatever the parsing throws on input it did not expect (RangeError, TypeError …) is damage.
    throw corrupt(ctx, { offset: 0, line: 0 }, `cannot decode (${(err as Error)?.message ?? String(err)})`, err)
  }
  for (const e of out) visit(e)
  return result
}

async function readEither(fs: Fs, path: string, compression: SnapshotCompression | undefined, ctx: Ctx, out: SnapshotEntry[]): Promise<SnapshotReadResult> {
  try {
    return await readLines(fs, path, compression, ctx, out)
  } catch (err) {
    if (!(err instanceof LayoutError)) throw err
    out.length = 0
    try {
      return await readWhole(fs, path, compression, ctx, out)
    } catch (wholeErr) {
      // A file that started as our line layout is best explained by where the lines broke.
      if (err.offset > 0 && wholeErr instanceof StoreError && wholeErr.code === 'KV_CORRUPT') {
        throw new StoreError('KV_CORRUPT', `${path}: damaged JSON snapshot at ${ctx.where} ${err.offset}: ${err.message}`)
      }
      throw wholeErr
    }
  }
}

interface Ctx {
  path: string
  where: string
  limits: ResolvedLimits
  maxLine: number
}

function corrupt(ctx: Ctx, at: Loc, why: string, cause?: unknown): StoreError {
  const line = at.line > 0 ? ` (line ${at.line})` : ''
  return new StoreError('KV_CORRUPT', `${ctx.path}: damaged JSON snapshot at ${ctx.where} ${at.offset}${line}: ${why}`, cause === undefined ? undefined : { cause })
}

/** Stream a v2 file in our line layout; LayoutError when it is laid out otherwise. */
async function readLines(fs: Fs, path: string, compression: SnapshotCompression | undefined, ctx: Ctx, out: SnapshotEntry[]): Promise<SnapshotReadResult> {
  const chunks = readChunks(fs, path, compression)
  let header: Header | undefined
  let closed = false
  let expectMore = true // after a line ending in ',' (or the header) another entry must follow
  let lineNo = 0
  try {
    let base = 0 // stream offset of the first byte not yet split into lines
    const onLine = (line: string, at: Loc): void => {
      if (at.line === 1) {
        if (line.charCodeAt(0) === 0xfeff) line = line.slice(1)
        header = parseHeaderLine(line, ctx)
        return
      }
      const h = header as Header
      const body = trimEnd(line)
      if (closed) {
        if (body !== '') throw new LayoutError(at.offset, 'text after the closing }}')
        return
      }
      if (body === '}}') {
        if (expectMore && out.length > 0) throw new LayoutError(at.offset, 'an entry line ends with "," but no entry follows')
        closed = true
        return
      }
      if (!expectMore) throw new LayoutError(at.offset, 'an entry line without a trailing ","')
      const comma = body.endsWith(',')
      expectMore = comma
      out.push(parseEntryLine(comma ? body.slice(0, -1) : body, at, h, ctx))
    }
    /** Split off and handle the line `buf[start, end)`, which starts at stream offset `at`. */
    const takeLine = (buf: Buffer, start: number, end: number, at: number): void => {
      const loc = { offset: at, line: ++lineNo }
      try {
        onLine(buf.toString('utf8', start, end), loc)
      } catch (err) {
        if (err instanceof StoreError || err instanceof LayoutError) throw err
        throw corrupt(ctx, loc, `cannot decode (${(err as Error)?.message ?? String(err)})`, err)
      }
    }
    /** Refuse a line of `n` bytes (so far) at stream offset `at` before buffering more of it. */
    const checkLength = (n: number, at: number): void => {
      if (lineNo === 0) {
        if (n > MAX_HEADER_LINE_BYTES) throw new LayoutError(0, 'header line too long')
      } else if (n > ctx.maxLine) {
        throw corrupt(ctx, { offset: at, line: lineNo + 1 }, `line longer than ${ctx.maxLine} bytes (the limit for maxKeyBytes ${ctx.limits.maxKeyBytes}, maxValueBytes ${ctx.limits.maxValueBytes})`)
      }
    }
    // Bytes after the last newline seen; kept as parts so a long line costs O(length), not O(length²).
    let carry: Buffer[] = []
    let carryBytes = 0
    for await (const chunk of chunks) {
      const firstNl = chunk.indexOf(0x0a)
      if (firstNl === -1) {
        checkLength(carryBytes + chunk.length, base)
        carry.push(chunk)
        carryBytes += chunk.length
        continue
      }
      checkLength(carryBytes + firstNl, base)
      const buf = carry.length === 0 ? chunk : Buffer.concat([...carry, chunk], carryBytes + chunk.length)
      const lastNl = carryBytes + chunk.lastIndexOf(0x0a)
      // Newlines never split a UTF-8 sequence: one native check covers every line here.
      if (!isUtf8(buf.subarray(0, lastNl))) throw badUtf8(ctx, buf.subarray(0, lastNl), base, lineNo)
      let start = 0
      for (let nl = carryBytes + firstNl; nl !== -1; nl = buf.indexOf(0x0a, start)) {
        checkLength(nl - start, base + start)
        takeLine(buf, start, nl, base + start)
        start = nl + 1
      }
      base += start
      const rest = buf.subarray(start)
      carry = rest.length === 0 ? [] : [rest]
      carryBytes = rest.length
    }
    const pending = Buffer.concat(carry, carryBytes)
    if (pending.length > 0) {
      if (!isUtf8(pending)) throw badUtf8(ctx, pending, base, lineNo)
      takeLine(pending, 0, pending.length, base)
    }
    if (header === undefined) throw new LayoutError(0, 'empty file')
    if (!closed) throw new LayoutError(base + pending.length, 'the closing }} is missing (truncated file)')
  } finally {
    await chunks.return()
  }
  const h = header
  if (h.count !== undefined && h.count !== out.length) throw corrupt(ctx, { offset: 0, line: 1 }, `header says ${h.count} entries but the file holds ${out.length}`)
  return { seq: h.seq, timestamp: h.timestamp, count: out.length, version: h.version }
}

/** KV_CORRUPT naming the first invalid UTF-8 byte of `bytes` (at stream offset `base`, after line `lineNo`). */
function badUtf8(ctx: Ctx, bytes: Buffer, base: number, lineNo: number): StoreError {
  const bad = firstInvalidUtf8(bytes)
  let line = lineNo + 1
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < bad; i = bytes.indexOf(0x0a, i + 1)) line++
  return corrupt(ctx, { offset: base + bad, line }, 'not valid UTF-8')
}

/**
 * Offset of the first byte that is not part of a well-formed UTF-8 sequence (overlong
 * forms, surrogates and code points above U+10FFFF are ill-formed); `bytes.length` when
 * all are well-formed. Used only to name the offset once `isUtf8` has said no.
 */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i] as number
    if (c < 0x80) {
      i++
      continue
    }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) n = 1
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2
      if (c === 0xe0) lo = 0xa0
      else if (c === 0xed) hi = 0x9f
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3
      if (c === 0xf0) lo = 0x90
      else if (c === 0xf4) hi = 0x8f
    } else return i
    for (let k = 1; k <= n; k++) {
      const d = bytes[i + k]
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i
    }
    i += n + 1
  }
  return bytes.length
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
  const h = parseHeader(raw as Record<string, unknown>, ctx, { offset: 0, line: 1 })
  if (h.version !== 2) throw new LayoutError(0, 'not a version 2 file')
  return h
}

function parseHeader(raw: Record<string, unknown>, ctx: Ctx, at: Loc): Header {
  const version = raw.version
  if (version !== 1 && version !== 2) throw corrupt(ctx, at, `unsupported version ${showValue(version)}`)
  const badSeq = checkVersion(raw.seq ?? 0, 'seq')
  if (badSeq !== undefined) throw corrupt(ctx, at, badSeq)
  const seq = (raw.seq ?? 0) as number
  const count = raw.count
  if (count !== undefined && (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)) throw corrupt(ctx, at, `bad count ${showValue(count)}`)
  let timestamp = 0
  const ts = raw.timestamp
  if (typeof ts === 'string') {
    timestamp = Date.parse(ts)
    if (Number.isNaN(timestamp)) throw corrupt(ctx, at, `bad timestamp ${showValue(ts)}`)
  } else if (typeof ts === 'number') {
    const bad = checkTimestamp(ts)
    if (bad !== undefined) throw corrupt(ctx, at, bad)
    timestamp = ts
  } else if (ts !== undefined) {
    throw corrupt(ctx, at, `bad timestamp ${showValue(ts)}`)
  }
  return { version, seq: seq + 0, timestamp: timestamp + 0, count }
}

function parseEntryLine(body: string, at: Loc, h: Header, ctx: Ctx): SnapshotEntry {
  if (body.charCodeAt(0) !== 0x22) throw new LayoutError(at.offset, 'an entry line must start with a quoted key')
  // Find the key's closing quote: the first '"' not escaped by an odd run of backslashes.
  let end = 0
  for (let from = 1; ; ) {
    const q = body.indexOf('"', from)
    if (q === -1) throw new LayoutError(at.offset, 'unterminated key')
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
    throw new LayoutError(at.offset, `not a "key":value line (${(err as Error).message})`)
  }
  return decodeEntry(key, rawValue, h.version, ctx, at)
}

/** Parse a whole file (version 1, or v2 laid out differently). */
async function readWhole(fs: Fs, path: string, compression: SnapshotCompression | undefined, ctx: Ctx, out: SnapshotEntry[]): Promise<SnapshotReadResult> {
  const parts: Buffer[] = []
  let size = 0
  const chunks = readChunks(fs, path, compression)
  try {
    for await (const c of chunks) {
      size += c.length
      if (size > MAX_WHOLE_JSON_BYTES) {
        throw corrupt(
          ctx,
          { offset: MAX_WHOLE_JSON_BYTES, line: 0 },
          `this JSON layout is only read whole, and the file exceeds ${MAX_WHOLE_JSON_BYTES} bytes: use the binary format (or the one-entry-per-line JSON this store writes)`,
        )
      }
      parts.push(c)
    }
  } finally {
    await chunks.return()
  }
  const bytes = Buffer.concat(parts, size)
  parts.length = 0
  if (!isUtf8(bytes)) throw badUtf8(ctx, bytes, 0, 0)
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message)
    const offset = m === null ? 0 : Buffer.byteLength(text.slice(0, Number(m[1])), 'utf8')
    throw corrupt(ctx, { offset, line: 0 }, `invalid JSON (${(err as Error).message})`, err)
  }
  const top = { offset: 0, line: 0 }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(ctx, top, 'the top level is not an object')
  const h = parseHeader(raw as Record<string, unknown>, ctx, top)
  const data = (raw as Record<string, unknown>).data
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(ctx, top, '"data" is missing or not an object')
  for (const key of Object.keys(data)) {
    out.push(decodeEntry(key, (data as Record<string, unknown>)[key], h.version, ctx, top))
  }
  if (h.count !== undefined && h.count !== out.length) throw corrupt(ctx, top, `header says ${h.count} entries but the file holds ${out.length}`)
  return { seq: h.seq, timestamp: h.timestamp, count: out.length, version: h.version }
}

function decodeEntry(key: string, raw: unknown, version: number, ctx: Ctx, at: Loc): SnapshotEntry {
  const badKey = checkKey(key, ctx.limits.maxKeyBytes)
  if (badKey !== undefined) throw corrupt(ctx, at, `key ${showValue(key)}: ${badKey}`)
  const d: Decoding = { ctx, at, key }
  if (version === 1) {
    // Version 1 holds strings; other JSON is kept as the matching type rather than refused.
    return { key, value: isScalar(raw) ? checkScalar(raw, d) : jsonData(raw, d), expiresAt: 0, version: 0 }
  }
  if (isScalar(raw)) return { key, value: checkScalar(raw, d), expiresAt: 0, version: 0 }
  if (Array.isArray(raw) || typeof raw !== 'object' || raw === null) throw fail(d, 'an array must be wrapped as {"type":"json","value":[…]}')
  const w = raw as Record<string, unknown>
  for (const k of Object.keys(w)) if (!WRAPPER_KEYS.has(k)) throw fail(d, `unknown field ${showValue(k)}`)
  if (!Object.hasOwn(w, 'value')) throw fail(d, 'wrapper without "value"')
  const badMeta = (w.expiresAt === undefined ? undefined : checkExpiresAt(w.expiresAt)) ?? (w.version === undefined ? undefined : checkVersion(w.version))
  if (badMeta !== undefined) throw fail(d, badMeta)
  // + 0 turns -0 into 0: both mean "none".
  const expiresAt = ((w.expiresAt ?? 0) as number) + 0
  const ver = ((w.version ?? 0) as number) + 0
  const type = w.type
  const v = w.value
  let value: unknown
  if (type === undefined) {
    if (!isScalar(v)) throw fail(d, 'a wrapper without "type" must hold a string, number, boolean or null')
    value = checkScalar(v, d)
  } else if (type === 'list') {
    if (!Array.isArray(v)) throw fail(d, 'list value is not an array')
    value = new KvList(v.map((item) => decodeElement(item, d)))
  } else if (type === 'hash') {
    if (!Array.isArray(v)) throw fail(d, 'hash value is not an array of pairs')
    const hash = new KvHash()
    for (const pair of v) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') throw fail(d, 'hash pair is not [field, value]')
      const field = checkString(pair[0], d, 'hash field', d.ctx.limits.maxKeyBytes)
      hash.set(field, decodeElement(pair[1], d))
    }
    value = hash
  } else {
    value = decodeTyped(type, v, d)
  }
  return { key, value, expiresAt, version: ver }
}

/** The entry being decoded, for error messages. */
interface Decoding {
  ctx: Ctx
  at: Loc
  key: string
}

function fail(d: Decoding, why: string, cause?: unknown): StoreError {
  return corrupt(d.ctx, d.at, `key ${showValue(d.key)}: ${why}`, cause)
}

function decodeElement(raw: unknown, d: Decoding): unknown {
  if (isScalar(raw)) return checkScalar(raw, d)
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(d, 'bad element')
  const w = raw as Record<string, unknown>
  const keys = Object.keys(w)
  if (keys.length !== 2 || !Object.hasOwn(w, 'type') || !Object.hasOwn(w, 'value')) throw fail(d, 'an element wrapper is {"type","value"}')
  return decodeTyped(w.type, w.value, d)
}

function decodeTyped(type: unknown, v: unknown, d: Decoding): unknown {
  // Both callers checked that "value" is present, and JSON has no undefined.
  if (type === 'json') return jsonData(v, d)
  if (type === 'bytes') {
    // A linear check: a regex with a repeated group overflows the stack on long input.
    if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64.test(v)) throw fail(d, 'bytes value is not base64')
    const size = (v.length / 4) * 3 - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0)
    if (size > d.ctx.limits.maxValueBytes) throw fail(d, `bytes value of ${size} bytes exceeds maxValueBytes ${d.ctx.limits.maxValueBytes}`)
    const b = Buffer.from(v, 'base64')
    return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
  }
  throw fail(d, `unknown type ${showValue(type)}`)
}

/** JSON data as the store keeps it, refused when `set()` would refuse it (depth, lone surrogates, non-finite numbers). */
function jsonData(v: unknown, d: Decoding): unknown {
  try {
    return freezeJson(v)
  } catch (err) {
    throw fail(d, (err as Error).message, err)
  }
}

function checkScalar<T>(v: T, d: Decoding): T {
  if (typeof v === 'string') checkString(v, d, 'value')
  // JSON.parse reads 1e400 as Infinity; set() refuses non-finite numbers.
  else if (typeof v === 'number' && !Number.isFinite(v)) throw fail(d, `non-finite number ${v}`)
  return v
}

/** `v`, refused when it has a lone surrogate or more than `max` UTF-8 bytes (values: maxValueBytes; hash fields: maxKeyBytes). */
function checkString(v: string, d: Decoding, what: string, max = d.ctx.limits.maxValueBytes): string {
  if (!v.isWellFormed()) throw fail(d, `${what} has a lone surrogate`)
  if (v.length * 3 > max && Buffer.byteLength(v, 'utf8') > max) throw fail(d, `${what} longer than ${max} UTF-8 bytes`)
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

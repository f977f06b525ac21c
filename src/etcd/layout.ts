// How a kvstore keyspace is laid out in etcd under one namespace prefix `P`.
//
//   P "v/" key                      the key's record: kind, expiry, and the value (or a
//                                   collection's header). Its mod_revision is the key's
//                                   version: every write to a key rewrites this record.
//   P "e/" u16 len, key, u64 gen,   one list element (suffix: u64 index + 2^52) or hash
//          suffix                   field (suffix: the field). The length prefix keeps one
//                                   key's elements from ever sharing a prefix with another's;
//                                   `gen` is the collection's generation (see elements()).
//   P "x/" u64 expiresAt, key       expiry index, on the same lease as the record: lets
//                                   count() subtract keys expired but not yet deleted.
//   P "c/" client id "/" n          commit markers: settle a write whose answer was lost.
//   P "u/clear"                     written by every clear() and load(), so watchers see one
//                                   `clear` change instead of a delete per key.
//
// Keys are encoded one UTF-16 code unit at a time as UTF-8 (surrogates as their own
// 3-byte sequences, as CESU-8 does). That byte order is exactly JavaScript's `<` order
// of strings, which `Store` promises, and it equals UTF-8 for text without astral
// characters, so etcdctl shows readable keys.
import { ByteReader, ByteWriter } from '../codec/bytes.js'
import { decodeValue, encodeValue } from '../codec/value.js'
import { StoreError } from '../errors.js'

/** Order-preserving bytes of a well-formed key (see the file comment). */
export function keyBytes(key: string): Buffer {
  let astral = false
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdfff) {
      astral = true
      break
    }
  }
  if (!astral) return Buffer.from(key, 'utf8')
  const out: number[] = []
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c < 0x80) out.push(c)
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63))
    else out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
  }
  return Buffer.from(out)
}

/** The key of {@link keyBytes}' output. @throws {@link StoreError} `KV_CORRUPT` on bytes it never writes. */
export function keyFromBytes(b: Buffer): string {
  let ascii = true
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0xed && (b[i + 1] as number) >= 0xa0) {
      ascii = false
      break
    }
  }
  if (ascii) {
    const s = b.toString('utf8')
    if (!s.includes('\ufffd') || Buffer.from(s, 'utf8').equals(b)) return s
    throw new StoreError('KV_CORRUPT', 'etcd holds a key that is not valid UTF-8')
  }
  let s = ''
  for (let i = 0; i < b.length; ) {
    const c = b[i] as number
    if (c < 0x80) {
      s += String.fromCharCode(c)
      i++
    } else if (c < 0xe0) {
      s += String.fromCharCode(((c & 31) << 6) | ((b[i + 1] as number) & 63))
      i += 2
    } else {
      s += String.fromCharCode(((c & 15) << 12) | (((b[i + 1] as number) & 63) << 6) | ((b[i + 2] as number) & 63))
      i += 3
    }
  }
  return s
}

/** The smallest byte string after every string starting with `prefix` (etcd's `range_end` for a prefix). */
export function bytesPrefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0]) // etcd: "\0" as range_end means "to the end of the keyspace"
}

/** What a record holds. */
export const Kind = { VALUE: 0, LIST: 1, HASH: 2 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

/** A decoded `v/` record. `expiresAt` 0 = none. */
export type KeyRecord =
  | { kind: typeof Kind.VALUE; expiresAt: number; value: unknown }
  | { kind: typeof Kind.LIST; expiresAt: number; gen: number; head: number; tail: number }
  | { kind: typeof Kind.HASH; expiresAt: number; gen: number; size: number }

/** List indices are stored offset by this, so negative indices (after lpush) sort first. */
const INDEX_OFFSET = 2 ** 52

/** The key layout of one namespace. */
export class Layout {
  readonly prefix: Buffer
  readonly #v: Buffer
  readonly #e: Buffer
  readonly #x: Buffer
  readonly #c: Buffer
  readonly #clear: Buffer

  constructor(namespace: string) {
    this.prefix = keyBytes(namespace)
    this.#v = Buffer.concat([this.prefix, Buffer.from('v/')])
    this.#e = Buffer.concat([this.prefix, Buffer.from('e/')])
    this.#x = Buffer.concat([this.prefix, Buffer.from('x/')])
    this.#c = Buffer.concat([this.prefix, Buffer.from('c/')])
    this.#clear = Buffer.concat([this.prefix, Buffer.from('u/clear')])
  }

  /** The record key of `key`. */
  record(key: string): Buffer {
    return Buffer.concat([this.#v, keyBytes(key)])
  }

  /** The user key of a record key. */
  keyOf(recordKey: Buffer): string {
    return keyFromBytes(recordKey.subarray(this.#v.length))
  }

  /** Start of all records, and of records at/after `key`. */
  recordsStart(): Buffer {
    return this.#v
  }

  /** End (exclusive) of all records. */
  recordsEnd(): Buffer {
    return bytesPrefixEnd(this.#v)
  }

  /** The record key just after `key` (for an exclusive lower bound). */
  recordAfter(key: string): Buffer {
    return Buffer.concat([this.record(key), Buffer.from([0])])
  }

  /** `[start, end)` of the records of keys within `bounds` (the tighter of gt/gte and of lt/lte). */
  recordRange(bounds: { gt?: string; gte?: string; lt?: string; lte?: string }): [Buffer, Buffer] {
    let start = this.recordsStart()
    let end = this.recordsEnd()
    const later = (a: Buffer, b: Buffer): Buffer => (Buffer.compare(a, b) >= 0 ? a : b)
    const earlier = (a: Buffer, b: Buffer): Buffer => (Buffer.compare(a, b) <= 0 ? a : b)
    if (bounds.gte !== undefined) start = later(start, this.record(bounds.gte))
    if (bounds.gt !== undefined) start = later(start, this.recordAfter(bounds.gt))
    if (bounds.lt !== undefined) end = earlier(end, this.record(bounds.lt))
    if (bounds.lte !== undefined) end = earlier(end, this.recordAfter(bounds.lte))
    return [start, end]
  }

  /**
   * Prefix of the elements of generation `gen` of `key`'s list or hash. A collection gets
   * a new random generation when it is created, so elements a crash left behind under an
   * older one are never read as the new collection's.
   */
  elements(key: string, gen: number): Buffer {
    const k = keyBytes(key)
    const b = Buffer.alloc(10)
    b.writeUInt16BE(k.length)
    return Buffer.concat([this.#e, b.subarray(0, 2), k, u64(gen)])
  }

  /** Key of list element at absolute index `index`. */
  listElement(key: string, gen: number, index: number): Buffer {
    return Buffer.concat([this.elements(key, gen), u64(index + INDEX_OFFSET)])
  }

  /** Key of hash field `field`. */
  hashField(key: string, gen: number, field: string): Buffer {
    return Buffer.concat([this.elements(key, gen), keyBytes(field)])
  }

  /** The field of a hash element key under `elementsPrefix`. */
  fieldOf(elementsPrefix: Buffer, elementKey: Buffer): string {
    return keyFromBytes(elementKey.subarray(elementsPrefix.length))
  }

  /** Expiry-index entry of `key` expiring at `expiresAt`. */
  expiry(key: string, expiresAt: number): Buffer {
    return Buffer.concat([this.#x, u64(expiresAt), keyBytes(key)])
  }

  /** Start of the expiry index. */
  expiryStart(): Buffer {
    return this.#x
  }

  /** Expiry-index bound: entries before it expire at or before `at`. */
  expiryUpTo(at: number): Buffer {
    return Buffer.concat([this.#x, u64(at + 1)])
  }

  /** `[expiresAt, key]` of an expiry-index entry. */
  parseExpiry(entry: Buffer): [number, string] {
    const at = Number(entry.readBigUInt64BE(this.#x.length))
    return [at, keyFromBytes(entry.subarray(this.#x.length + 8))]
  }

  /** Commit marker `n` of client `id`. */
  marker(clientId: string, n: number): Buffer {
    return Buffer.concat([this.#c, Buffer.from(`${clientId}/${n}`)])
  }

  /** The ranges clear() deletes: every record, element and expiry-index entry. */
  contents(): [Buffer, Buffer][] {
    return [this.#e, this.#v, this.#x].map((p) => [p, bytesPrefixEnd(p)])
  }

  /** The key clear() writes for watchers. */
  clearMarker(): Buffer {
    return this.#clear
  }

  /**
   * What a watcher watches: commit markers (every commit writes one, so the watcher learns
   * each commit's revision), the clear marker and the records; it ignores the elements
   * in between.
   */
  watchRange(): [Buffer, Buffer] {
    return [this.#c, this.recordsEnd()]
  }

  /** Whether `key` is a record key. */
  isRecord(key: Buffer): boolean {
    return key.length > this.#v.length && key.subarray(0, this.#v.length).equals(this.#v)
  }
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

/** Encode a record. */
export function encodeRecord(rec: KeyRecord): Buffer {
  const w = new ByteWriter(64)
  w.u8(rec.kind)
  w.f64(rec.expiresAt)
  if (rec.kind === Kind.VALUE) encodeValue(w, rec.value)
  else if (rec.kind === Kind.LIST) {
    w.f64(rec.gen)
    w.f64(rec.head)
    w.f64(rec.tail)
  } else {
    w.f64(rec.gen)
    w.f64(rec.size)
  }
  return Buffer.from(w.finish())
}

/** Decode a record. @throws {@link StoreError} `KV_CORRUPT` for bytes kvstore never writes. */
export function decodeRecord(b: Buffer): KeyRecord {
  try {
    const r = new ByteReader(b)
    const kind = r.u8()
    const expiresAt = r.f64()
    if (kind === Kind.VALUE) return { kind, expiresAt, value: decodeValue(r) }
    if (kind === Kind.LIST) return { kind, expiresAt, gen: r.f64(), head: r.f64(), tail: r.f64() }
    if (kind === Kind.HASH) return { kind, expiresAt, gen: r.f64(), size: r.f64() }
  } catch (err) {
    throw new StoreError('KV_CORRUPT', `etcd holds a record kvstore cannot read: ${(err as Error).message}`, { cause: err })
  }
  throw new StoreError('KV_CORRUPT', 'etcd holds a record of an unknown kind')
}

/** Encode a list element or hash field value. */
export function encodeElement(value: unknown): Buffer {
  const w = new ByteWriter(32)
  encodeValue(w, value)
  return Buffer.from(w.finish())
}

/** Decode a list element or hash field value. */
export function decodeElement(b: Buffer): unknown {
  try {
    return decodeValue(new ByteReader(b))
  } catch (err) {
    throw new StoreError('KV_CORRUPT', `etcd holds an element kvstore cannot read: ${(err as Error).message}`, { cause: err })
  }
}

// Byte plumbing shared by the snapshot formats: a chunked, optionally compressed file
// sink; a chunked, optionally decompressing file source; and sniffing of a file's
// first bytes (compression and inner format).

import { pipeline, Readable } from 'node:stream'
import * as zlib from 'node:zlib'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { SnapshotCompression } from './format.js'

/** Bytes of a file's head that {@link sniff} needs to see through compression. */
export const SNIFF_BYTES = 4096

const READ_CHUNK = 256 * 1024
/** Binary snapshot magic 0x4B56DB as little-endian u32 bytes (big-endian is the reverse). */
const MAGIC_LE = [0xdb, 0x56, 0x4b, 0x00] as const
/** Cap on what sniffing may inflate: a few KiB of input can expand a lot. */
const SNIFF_MAX_OUTPUT = 64 * 1024 * 1024

/** What a file's first bytes say. */
export interface Sniffed {
  /** Compression wrapped around the file, if any. */
  compression: SnapshotCompression | undefined
  /** The inner format, when visible in the bytes given. */
  kind: 'json' | 'binary' | undefined
}

/**
 * Identify compression and inner format from a file's first bytes.
 *
 * JSON: first byte `{`, JSON whitespace or a UTF-8 BOM. Binary: the magic in either
 * byte order. gzip: `1f 8b`. Brotli has no magic: it is recognised only when a
 * prefix decompresses to a JSON or binary signature. Give at least
 * {@link SNIFF_BYTES} (or the whole file) to see through compression.
 */
export function sniff(head: Uint8Array): Sniffed {
  const kind = rawKind(head)
  if (kind !== undefined) return { compression: undefined, kind }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    return { compression: 'gzip', kind: inflatedKind(head, 'gzip') }
  }
  const inner = inflatedKind(head, 'brotli')
  return inner === undefined ? { compression: undefined, kind: undefined } : { compression: 'brotli', kind: inner }
}

function rawKind(b: Uint8Array): 'json' | 'binary' | undefined {
  if (b.length === 0) return undefined
  const c = b[0]
  if (c === 0x7b || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) return 'json'
  if (c === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'json'
  if (b.length < 4) return undefined
  const le = b[0] === MAGIC_LE[0] && b[1] === MAGIC_LE[1] && b[2] === MAGIC_LE[2] && b[3] === MAGIC_LE[3]
  const be = b[0] === MAGIC_LE[3] && b[1] === MAGIC_LE[2] && b[2] === MAGIC_LE[1] && b[3] === MAGIC_LE[0]
  return le || be ? 'binary' : undefined
}

function inflatedKind(head: Uint8Array, compression: SnapshotCompression): 'json' | 'binary' | undefined {
  // Growing prefixes keep the output of highly compressible data small.
  for (const n of [64, 512, SNIFF_BYTES]) {
    const prefix = head.subarray(0, n)
    let out: Buffer
    try {
      out =
        compression === 'gzip'
          ? zlib.gunzipSync(prefix, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: SNIFF_MAX_OUTPUT })
          : zlib.brotliDecompressSync(prefix, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength: SNIFF_MAX_OUTPUT })
    } catch {
      return undefined
    }
    if (out.length >= 4) return rawKind(out)
    if (prefix.length === head.length) break
  }
  return undefined
}

/**
 * The first `n` bytes of `path` (fewer when the file is shorter).
 *
 * @throws {@link StoreError} `KV_IO` when the file cannot be opened or read.
 */
export function readHead(fs: Fs, path: string, n = SNIFF_BYTES): Uint8Array {
  const fd = openForRead(fs, path)
  try {
    const buf = Buffer.alloc(n)
    let got = 0
    while (got < n) {
      const r = fs.read(fd, buf, got, n - got, got)
      if (r === 0) break
      got += r
    }
    return buf.subarray(0, got)
  } catch (err) {
    throw new StoreError('KV_IO', `cannot read ${path}`, { cause: err })
  } finally {
    closeQuietly(fs, fd)
  }
}

/**
 * Close a descriptor opened for reading, ignoring errors: everything was already read,
 * and a raw close error must not replace the error (or result) being returned.
 */
function closeQuietly(fs: Fs, fd: number): void {
  try {
    fs.close(fd)
  } catch {
    // Nothing written through it, so nothing is lost.
  }
}

function openForRead(fs: Fs, path: string): number {
  try {
    return fs.open(path, 'r')
  } catch (err) {
    throw new StoreError('KV_IO', `cannot open ${path}`, { cause: err })
  }
}

/**
 * The (decompressed) contents of `path` as a stream of chunks.
 *
 * Chunks are fresh buffers the consumer may keep. The file is closed when iteration
 * ends, including early exit.
 *
 * @throws {@link StoreError} `KV_IO` on read errors; `KV_CORRUPT` when the compressed
 *   stream is damaged or cut short.
 */
export async function* readChunks(fs: Fs, path: string, compression: SnapshotCompression | undefined): AsyncGenerator<Buffer, void, undefined> {
  const fd = openForRead(fs, path)
  let closed = false
  let pos = 0 // file bytes read so far
  function* raw(): Generator<Buffer> {
    while (!closed) {
      const buf = Buffer.allocUnsafe(READ_CHUNK)
      let n: number
      try {
        n = fs.read(fd, buf, 0, READ_CHUNK, pos)
      } catch (err) {
        throw new StoreError('KV_IO', `cannot read ${path} at byte offset ${pos}`, { cause: err })
      }
      if (n === 0) return
      pos += n
      yield n === READ_CHUNK ? buf : buf.subarray(0, n)
    }
  }
  try {
    if (compression === undefined) {
      yield* raw()
      return
    }
    const z = compression === 'gzip' ? zlib.createGunzip() : zlib.createBrotliDecompress()
    const input = Readable.from(raw())
    // Errors surface through the iteration of `z` (pipeline destroys it with them).
    pipeline(input, z, () => {})
    let out = 0 // decompressed bytes handed on
    try {
      for await (const chunk of z) {
        out += (chunk as Buffer).length
        yield chunk as Buffer
      }
    } catch (err) {
      if (err instanceof StoreError) throw err
      const why = (err as Error)?.message ?? String(err)
      throw new StoreError('KV_CORRUPT', `${path}: damaged ${compression} stream at ${compression}-decompressed byte offset ${out} (file read to byte offset ${pos}): ${why}`, { cause: err })
    } finally {
      input.destroy()
      z.destroy()
    }
  } finally {
    closed = true
    closeQuietly(fs, fd)
  }
}

/**
 * Writes chunks to an open descriptor, compressing them first when asked.
 *
 * Chunks may be views of a buffer the caller reuses: they are consumed (or copied)
 * before `write` returns.
 */
export class ChunkSink {
  readonly #fs: Fs
  readonly #fd: number
  readonly #z: zlib.Gzip | zlib.BrotliCompress | undefined
  #bytes = 0
  #error: unknown = undefined

  constructor(fs: Fs, fd: number, compress: SnapshotCompression | undefined) {
    this.#fs = fs
    this.#fd = fd
    if (compress === undefined) return
    // Brotli's default quality 11 is ~50x slower than 5 for little gain on snapshots.
    const z = compress === 'gzip' ? zlib.createGzip() : zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } })
    z.on('data', (out: Buffer) => {
      if (this.#error !== undefined) return
      try {
        this.#writeAll(out)
      } catch (err) {
        this.#error = err
        z.destroy(err as Error)
      }
    })
    z.on('error', (err) => {
      this.#error ??= err
    })
    this.#z = z
  }

  /** Write (or compress) `chunk`; resolves when the sink can take more. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error
    const z = this.#z
    if (z === undefined) {
      this.#writeAll(chunk)
      return
    }
    if (!z.write(Buffer.from(chunk))) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: unknown): void => {
          z.off('drain', done)
          z.off('close', done)
          if (this.#error !== undefined) reject(this.#error as Error)
          else if (err !== undefined) reject(err as Error)
          else resolve()
        }
        z.on('drain', done)
        z.on('close', done)
      })
    }
    if (this.#error !== undefined) throw this.#error
  }

  /** Flush everything (finishing the compressed stream); returns the bytes written to the file. */
  async end(): Promise<number> {
    const z = this.#z
    if (z !== undefined) {
      await new Promise<void>((resolve, reject) => {
        z.on('end', resolve)
        z.on('close', () => (this.#error !== undefined ? reject(this.#error as Error) : resolve()))
        z.end()
      })
    }
    if (this.#error !== undefined) throw this.#error
    return this.#bytes
  }

  /** Abandon the sink after a failure (frees the compressor). */
  destroy(): void {
    this.#z?.destroy()
  }

  #writeAll(buf: Uint8Array): void {
    let off = 0
    while (off < buf.length) {
      const n = this.#fs.write(this.#fd, buf, off, buf.length - off, null)
      // A zero-byte write would loop forever; treat it as the disk refusing data.
      if (n <= 0) throw Object.assign(new Error(`write returned ${n}`), { code: 'EIO' })
      off += n
    }
    this.#bytes += buf.length
  }
}

// The byte plumbing under the snapshot formats: sniffing a head, reading a head and a
// chunk stream (raw or decompressed) with exact errors and no descriptor left open, and
// the sink that writes (or compresses) chunks, refusing a disk that takes nothing.

import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { isStoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { ChunkSink, readChunks, readHead, SNIFF_BYTES, sniff } from '../../src/snapshot/stream.js'
import { MemFs } from '../helpers/mem-fs.js'

const PATH = '/s'

/** A MemFs holding `bytes` at PATH whose reads are logged as [position, length, got]. */
function fileFs(bytes: Uint8Array, readLimit = Number.POSITIVE_INFINITY): { fs: MemFs; reads: [number, number, number][] } {
  const fs = new MemFs()
  fs.putFile(PATH, bytes)
  const reads: [number, number, number][] = []
  const real = fs.read.bind(fs)
  fs.read = (fd, buf, off, len, pos) => {
    const n = real(fd, buf, off, Math.min(len, readLimit), pos)
    reads.push([pos, len, n])
    return n
  }
  return { fs, reads }
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of it) parts.push(c)
  return Buffer.concat(parts)
}

async function storeError(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string; cause: unknown }> {
  try {
    if (typeof p === 'function') p()
    else await p
  } catch (err) {
    if (!isStoreError(err)) throw err
    return { code: err.code, message: err.message, cause: err.cause }
  }
  throw new Error('expected a StoreError')
}

const errno = (code: string): Error => Object.assign(new Error(`${code}: failed`), { code })

describe('sniff', () => {
  const b = (...xs: number[]): Uint8Array => new Uint8Array(xs)

  it('JSON by each whitespace byte, a brace or a whole BOM; binary by all 4 magic bytes', () => {
    for (const c of [0x7b, 0x20, 0x09, 0x0a, 0x0d]) expect(sniff(b(c))).toEqual({ compression: undefined, kind: 'json' })
    expect(sniff(b(0xef, 0xbb, 0xbf))).toEqual({ compression: undefined, kind: 'json' })
    for (const notBom of [b(0xef, 0xbb, 0x00), b(0xef, 0x00, 0xbf), b(0xef, 0xbb), b(0xef)]) expect(sniff(notBom).kind).toBeUndefined()
    expect(sniff(b(0xdb, 0x56, 0x4b, 0x00)).kind).toBe('binary')
    expect(sniff(b(0x00, 0x4b, 0x56, 0xdb)).kind).toBe('binary')
    for (const i of [0, 1, 2, 3]) {
      const le = b(0xdb, 0x56, 0x4b, 0x00)
      le[i] = (le[i] as number) ^ 0x01
      expect(sniff(le).kind).toBeUndefined()
      const be = b(0x00, 0x4b, 0x56, 0xdb)
      be[i] = (be[i] as number) ^ 0x01
      expect(sniff(be).kind).toBeUndefined()
    }
    expect(sniff(b(0xdb, 0x56, 0x4b))).toEqual({ compression: undefined, kind: undefined })
    expect(sniff(b())).toEqual({ compression: undefined, kind: undefined })
    expect(sniff(b(0x41, 0x42, 0x43, 0x44))).toEqual({ compression: undefined, kind: undefined })
  })

  it('gzip by 1f 8b, its inner kind once visible; brotli only when its inner kind is visible', () => {
    const bin = Buffer.concat([Buffer.from([0xdb, 0x56, 0x4b, 0x00]), Buffer.alloc(100, 7)])
    expect(sniff(gzipSync(bin))).toEqual({ compression: 'gzip', kind: 'binary' })
    expect(sniff(gzipSync(Buffer.from('{"version":2}')))).toEqual({ compression: 'gzip', kind: 'json' })
    expect(sniff(new Uint8Array([0x1f, 0x8b]))).toEqual({ compression: 'gzip', kind: undefined })
    expect(sniff(new Uint8Array([0x1f]))).toEqual({ compression: undefined, kind: undefined })
    expect(sniff(new Uint8Array([0x1e, 0x8b, 0, 0]))).toEqual({ compression: undefined, kind: undefined })
    expect(sniff(brotliCompressSync(bin))).toEqual({ compression: 'brotli', kind: 'binary' })
    expect(sniff(brotliCompressSync(Buffer.from('ABCDEFGH')))).toEqual({ compression: undefined, kind: undefined })
  })

  it('sees an inner kind that shows only after 64, or only after 512, compressed bytes', () => {
    // gzip's optional file name (FLG bit 3, zero-terminated, after the 10-byte header) holds
    // back all output: with a name of `n` bytes nothing inflates before byte 10 + n + 1.
    const named = (inner: Buffer, n: number): Buffer => {
      const z = gzipSync(inner)
      const head = Buffer.from(z.subarray(0, 10))
      head[3] = (head[3] as number) | 0x08
      return Buffer.concat([head, Buffer.alloc(n, 0x61), Buffer.from([0]), z.subarray(10)])
    }
    const bin = Buffer.from([0xdb, 0x56, 0x4b, 0x00, 1, 2, 3, 4])
    for (const n of [100, 1000]) {
      const gz = named(bin, n)
      expect(gunzipSync(gz).equals(bin)).toBe(true)
      expect(sniff(gz)).toEqual({ compression: 'gzip', kind: 'binary' })
      expect(sniff(named(Buffer.from('{"a":1}'), n))).toEqual({ compression: 'gzip', kind: 'json' })
    }
    // Past the sniffing window: gzip, inner kind unknown.
    expect(sniff(named(bin, 5000).subarray(0, SNIFF_BYTES))).toEqual({ compression: 'gzip', kind: undefined })
  })
})

describe('readHead', () => {
  it('reads the first n bytes (4096 by default) through short reads, fewer for a short file', () => {
    const bytes = Buffer.alloc(10_000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff
    const { fs, reads } = fileFs(bytes, 1000)
    const head = readHead(fs, PATH)
    expect(SNIFF_BYTES).toBe(4096)
    expect(Buffer.from(head)).toEqual(bytes.subarray(0, 4096))
    expect(reads.map((r) => r[0])).toEqual([0, 1000, 2000, 3000, 4000])
    expect(reads.map((r) => r[1])).toEqual([4096, 3096, 2096, 1096, 96])
    expect(Buffer.from(readHead(fs, PATH, 10))).toEqual(bytes.subarray(0, 10))
    const short = fileFs(bytes.subarray(0, 5))
    expect(Buffer.from(readHead(short.fs, PATH, 100))).toEqual(bytes.subarray(0, 5))
    expect(short.reads).toEqual([
      [0, 100, 5],
      [5, 95, 0],
    ])
    expect(fs.openFileCount).toBe(0)
  })

  it('open and read failures are KV_IO with the cause; the descriptor is closed', async () => {
    expect(await storeError(() => readHead(new MemFs(), '/missing'))).toMatchObject({ code: 'KV_IO', message: 'cannot open /missing' })
    const { fs } = fileFs(Buffer.from('abc'))
    fs.read = () => {
      throw errno('EIO')
    }
    const e = await storeError(() => readHead(fs, PATH))
    expect(e).toMatchObject({ code: 'KV_IO', message: `cannot read ${PATH}`, cause: { code: 'EIO' } })
    expect(fs.openFileCount).toBe(0)
  })

  it('a failing close loses nothing already read', () => {
    const { fs } = fileFs(Buffer.from('abcd'))
    fs.close = () => {
      throw errno('EBADF')
    }
    expect(Buffer.from(readHead(fs, PATH)).toString()).toBe('abcd')
  })
})

describe('readChunks', () => {
  it('streams a raw file in 256 KiB reads, closing it at the end and on early exit', async () => {
    const bytes = Buffer.alloc(600_000, 3)
    const { fs, reads } = fileFs(bytes)
    const got = await collect(readChunks(fs, PATH, undefined))
    expect(got.equals(bytes)).toBe(true)
    expect(reads).toEqual([
      [0, 262_144, 262_144],
      [262_144, 262_144, 262_144],
      [524_288, 262_144, 75_712],
      [600_000, 262_144, 0],
    ])
    expect(fs.openFileCount).toBe(0)
    const it = readChunks(fs, PATH, undefined)
    const first = await it.next()
    expect(first.value?.length).toBe(262_144)
    expect(fs.openFileCount).toBe(1)
    await it.return()
    expect(fs.openFileCount).toBe(0)
  })

  it('hands out fresh buffers, trimmed to what was read', async () => {
    const { fs } = fileFs(Buffer.from('hello'))
    const chunks: Buffer[] = []
    for await (const c of readChunks(fs, PATH, undefined)) chunks.push(c)
    expect(chunks.map((c) => c.toString())).toEqual(['hello'])
    expect(chunks[0]?.length).toBe(5)
  })

  it('decompresses gzip and brotli', async () => {
    const bytes = Buffer.alloc(300_000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff
    for (const [compression, z] of [
      ['gzip', gzipSync(bytes)],
      ['brotli', brotliCompressSync(bytes)],
    ] as const) {
      const { fs } = fileFs(z)
      expect((await collect(readChunks(fs, PATH, compression))).equals(bytes)).toBe(true)
      expect(fs.openFileCount).toBe(0)
    }
    expect(brotliDecompressSync(brotliCompressSync(bytes)).equals(bytes)).toBe(true)
  })

  it('a read failure is KV_IO naming the offset, raw or compressed', async () => {
    const bytes = Buffer.alloc(300_000, 1)
    for (const [compression, file] of [
      [undefined, bytes],
      ['gzip', gzipSync(Buffer.alloc(3_000_000, 1), { level: 0 })],
    ] as const) {
      const { fs } = fileFs(file)
      const real = fs.read.bind(fs)
      fs.read = (fd, buf, off, len, pos) => {
        if (pos >= 262_144) throw errno('EIO')
        return real(fd, buf, off, len, pos)
      }
      const e = await storeError(collect(readChunks(fs, PATH, compression)))
      expect(e).toMatchObject({ code: 'KV_IO', message: `cannot read ${PATH} at byte offset 262144`, cause: { code: 'EIO' } })
      expect(fs.openFileCount).toBe(0)
    }
  })

  it('a damaged compressed stream is KV_CORRUPT naming both offsets', async () => {
    const z = gzipSync(Buffer.alloc(1000, 5))
    const { fs } = fileFs(z.subarray(0, z.length - 10))
    const e = await storeError(collect(readChunks(fs, PATH, 'gzip')))
    expect(e.code).toBe('KV_CORRUPT')
    expect(e.message).toMatch(new RegExp(`^${PATH}: damaged gzip stream at gzip-decompressed byte offset \\d+ \\(file read to byte offset ${z.length - 10}\\): `))
    const bad = fileFs(Buffer.from('not brotli at all, not at all'))
    const eb = await storeError(collect(readChunks(bad.fs, PATH, 'brotli')))
    expect(eb.message).toMatch(new RegExp(`^${PATH}: damaged brotli stream at brotli-decompressed byte offset 0 \\(file read to byte offset 29\\): `))
    expect(bad.fs.openFileCount).toBe(0)
  })

  it('a missing file is KV_IO', async () => {
    expect(await storeError(collect(readChunks(new MemFs(), '/none', undefined)))).toMatchObject({ code: 'KV_IO', message: 'cannot open /none' })
  })
})

describe('ChunkSink', () => {
  function sinkFs(writeLimit = Number.POSITIVE_INFINITY): { fs: MemFs; fd: number } {
    const fs = new MemFs()
    const fd = fs.open('/out', 'w')
    const real = fs.write.bind(fs)
    fs.write = (f, buf, off, len, pos) => real(f, buf, off, Math.min(len, writeLimit), pos)
    return { fs, fd }
  }

  it('writes raw chunks whole through short writes and counts the bytes', async () => {
    const { fs, fd } = sinkFs(3)
    const sink = new ChunkSink(fs, fd, undefined)
    await sink.write(Buffer.from('hello '))
    const reused = Buffer.from('world')
    await sink.write(reused)
    reused.fill(0)
    expect(await sink.end()).toBe(11)
    expect(fs.readFile('/out').toString()).toBe('hello world')
  })

  it('compresses with gzip or brotli, counting the compressed bytes, copying reused chunks', async () => {
    const text = 'abc'.repeat(50_000)
    for (const [compress, inflate] of [
      ['gzip', gunzipSync],
      ['brotli', brotliDecompressSync],
    ] as const) {
      const { fs, fd } = sinkFs()
      const sink = new ChunkSink(fs, fd, compress)
      const buf = Buffer.alloc(30_000)
      for (let off = 0; off < text.length; off += buf.length) {
        const n = buf.write(text.slice(off, off + buf.length))
        await sink.write(buf.subarray(0, n))
        buf.fill(0x21)
      }
      const bytes = await sink.end()
      const file = fs.readFile('/out')
      expect(bytes).toBe(file.length)
      expect(bytes).toBeLessThan(text.length / 10)
      expect(inflate(file).toString()).toBe(text)
    }
  })

  it('a write that takes nothing is an EIO error, not an endless loop', async () => {
    const { fs, fd } = sinkFs(0)
    const sink = new ChunkSink(fs, fd, undefined)
    const err = await sink.write(Buffer.from('x')).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EIO', message: 'write returned 0' })
    const z = new ChunkSink(sinkFs(0).fs as Fs, fd, 'gzip')
    const zerr = await (async () => {
      await z.write(Buffer.alloc(200_000, 9))
      return z.end()
    })().catch((e: unknown) => e)
    expect(zerr).toMatchObject({ code: 'EIO', message: 'write returned 0' })
  })

  it('a disk error while compressing fails write or end with that error, once', async () => {
    const { fs, fd } = sinkFs()
    fs.failAt(fs.opCount, 'ENOSPC', { persistent: true })
    const sink = new ChunkSink(fs, fd, 'gzip')
    let err: unknown
    try {
      const noise = Buffer.alloc(64 * 1024)
      for (let round = 0; round < 64; round++) {
        for (let i = 0; i < noise.length; i++) noise[i] = (i * 31 + round * 17) & 0xff
        await sink.write(noise)
      }
      await sink.end()
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'ENOSPC' })
    await expect(sink.write(Buffer.from('more'))).rejects.toMatchObject({ code: 'ENOSPC' })
    sink.destroy()
  })
})

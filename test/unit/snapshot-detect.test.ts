import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import { autoSnapshot, detectFileFormat, detectFormat } from '../../src/snapshot/detect.js'
import type { SnapshotEntry } from '../../src/snapshot/format.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'

const b = (...xs: number[]): Uint8Array => new Uint8Array(xs)
const v1 = '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"user:1":"Alice","counter":"42"}}'

let dir = ''
beforeAll(() => {
  dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-detect-'))
})
afterAll(() => {
  nfs.rmSync(dir, { recursive: true, force: true })
})

describe('detectFormat', () => {
  it('recognises JSON by its first byte, whitespace or BOM', () => {
    for (const text of ['{', ' {', '\n', '\t{', '\r\n{', '\ufeff{']) expect(detectFormat(Buffer.from(text))).toBe(jsonSnapshot)
  })

  it('recognises the binary magic in either byte order', () => {
    expect(detectFormat(b(0xdb, 0x56, 0x4b, 0x00, 1, 0, 0, 0))).toBe(binarySnapshot)
    expect(detectFormat(b(0x00, 0x4b, 0x56, 0xdb, 0, 0, 0, 1))).toBe(binarySnapshot)
  })

  it('returns undefined for empty, short and foreign bytes', () => {
    expect(detectFormat(b())).toBeUndefined()
    expect(detectFormat(b(0xdb, 0x56))).toBeUndefined()
    expect(detectFormat(Buffer.from('hello world'))).toBeUndefined()
    expect(detectFormat(Buffer.from('PK\u0003\u0004 zip file'))).toBeUndefined()
  })

  it('sees through gzip and brotli given enough bytes', () => {
    const bin = b(0xdb, 0x56, 0x4b, 0x00, 2, 0, 0, 0, ...new Array<number>(30).fill(7))
    expect(detectFormat(gzipSync(v1))).toBe(jsonSnapshot)
    expect(detectFormat(gzipSync(bin))).toBe(binarySnapshot)
    expect(detectFormat(brotliCompressSync(v1))).toBe(jsonSnapshot)
    expect(detectFormat(brotliCompressSync(bin))).toBe(binarySnapshot)
  })

  it('defers to autoSnapshot for a gzip head too short to show the inner format', () => {
    expect(detectFormat(gzipSync(v1).subarray(0, 12))).toBe(autoSnapshot)
  })
})

describe('detectFileFormat and autoSnapshot', () => {
  it('detect and read compressed files of both formats', async () => {
    const entries: SnapshotEntry[] = [{ key: 'k', value: 'v', expiresAt: 0, version: 1 }]
    for (const format of [jsonSnapshot, binarySnapshot]) {
      for (const compress of ['gzip', 'brotli'] as const) {
        const p = join(dir, `${format.name}.${compress}`)
        await writeSnapshotFile(nodeFs, p, format, { seq: 1, timestamp: 0, count: 1 }, entries, { compress })
        expect(detectFileFormat(nodeFs, p)).toBe(format)
        const got: SnapshotEntry[] = []
        await autoSnapshot.read(nodeFs, p, (e) => got.push(e))
        expect(got).toEqual(entries)
      }
    }
  })

  it('autoSnapshot rejects a file that is no snapshot as corrupt', async () => {
    const p = join(dir, 'junk')
    nfs.writeFileSync(p, 'junk')
    expect(detectFileFormat(nodeFs, p)).toBeUndefined()
    await expect(autoSnapshot.read(nodeFs, p, () => {})).rejects.toMatchObject({ code: 'KV_CORRUPT' })
  })
})

import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import type { SnapshotEntry, SnapshotFormat } from '../../src/snapshot/format.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'

type Step = 'open' | 'write' | 'datasync' | 'close' | 'rename' | 'fsyncDir'

/** NodeFs that fails the `nth` call of `step` (1-based), and logs every call. */
function faultyFs(step?: Step, nth = 1, err = Object.assign(new Error('injected'), { code: 'EIO' })): Fs & { calls: string[] } {
  const calls: string[] = []
  let seen = 0
  const hit = (s: Step): void => {
    calls.push(s)
    if (s === step && ++seen === nth) throw err
  }
  return Object.assign(Object.create(nodeFs) as Fs, {
    calls,
    open: (p: string, f: Parameters<Fs['open']>[1]) => (hit('open'), nodeFs.open(p, f)),
    write: (fd: number, buf: Uint8Array, off: number, len: number, pos: number | null) => (hit('write'), nodeFs.write(fd, buf, off, len, pos)),
    datasync: async (fd: number) => (hit('datasync'), nodeFs.datasync(fd)),
    close: (fd: number) => (hit('close'), nodeFs.close(fd)),
    rename: (a: string, b: string) => (hit('rename'), nodeFs.rename(a, b)),
    fsyncDir: async (d: string) => (hit('fsyncDir'), nodeFs.fsyncDir(d)),
  })
}

let dir = ''
beforeEach(() => {
  dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-write-'))
})
afterEach(() => {
  nfs.rmSync(dir, { recursive: true, force: true })
})

function entries(count: number): SnapshotEntry[] {
  return Array.from({ length: count }, (_, i) => ({ key: `key:${String(i).padStart(6, '0')}`, value: `value ${i} `.repeat(4), expiresAt: 0, version: i + 1 }))
}

async function write(fs: Fs, format: SnapshotFormat, es: SnapshotEntry[], path = join(dir, 'snap')): Promise<{ bytes: number }> {
  return writeSnapshotFile(fs, path, format, { seq: es.length, timestamp: 1000, count: es.length }, es)
}

describe('writeSnapshotFile', () => {
  it('replaces the file durably in the documented order and leaves no temp file', async () => {
    const fs = faultyFs()
    nfs.writeFileSync(join(dir, 'snap'), 'old')
    const { bytes } = await write(fs, binarySnapshot, entries(3))
    expect(nfs.statSync(join(dir, 'snap')).size).toBe(bytes)
    expect(nfs.readdirSync(dir)).toEqual(['snap'])
    const order = fs.calls.filter((c, i, a) => c !== 'write' || a[i - 1] !== 'write')
    expect(order).toEqual(['open', 'write', 'datasync', 'close', 'rename', 'fsyncDir'])
  })

  for (const [step, nth] of [['open', 1], ['write', 1], ['write', 3], ['datasync', 1], ['close', 1], ['rename', 1]] as const) {
    it(`keeps the old file and removes the temp file when ${step} #${nth} fails`, async () => {
      const path = join(dir, 'snap')
      nfs.writeFileSync(path, 'old contents')
      const err = await write(faultyFs(step, nth), jsonSnapshot, entries(3000)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
      expect(err).toMatchObject({ code: 'KV_IO', cause: { code: 'EIO' } })
      expect(nfs.readFileSync(path, 'utf8')).toBe('old contents')
      expect(nfs.readdirSync(dir)).toEqual(['snap'])
    })
  }

  it('reports a failed directory fsync as KV_IO with the new file in place', async () => {
    const path = join(dir, 'snap')
    await expect(write(faultyFs('fsyncDir'), binarySnapshot, entries(2), path)).rejects.toMatchObject({ code: 'KV_IO' })
    expect(nfs.readdirSync(dir)).toEqual(['snap'])
    let count = 0
    await binarySnapshot.read(nodeFs, path, () => count++)
    expect(count).toBe(2)
  })

  it('survives short writes', async () => {
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      write: (fd: number, buf: Uint8Array, off: number, len: number, pos: number | null) => nodeFs.write(fd, buf, off, Math.min(len, 7), pos),
    })
    const es = entries(500)
    await write(fs, binarySnapshot, es)
    const got: SnapshotEntry[] = []
    await binarySnapshot.read(nodeFs, join(dir, 'snap'), (e) => got.push(e))
    expect(got).toEqual(es)
  })

  it('passes a StoreError from the entries through and cleans up', async () => {
    function* failing(): Generator<SnapshotEntry> {
      yield { key: 'a', value: 'b', expiresAt: 0, version: 1 }
      throw new StoreError('KV_CLOSED', 'closed mid-snapshot')
    }
    await expect(writeSnapshotFile(nodeFs, join(dir, 'snap'), binarySnapshot, { seq: 0, timestamp: 0, count: 2 }, failing())).rejects.toMatchObject({ code: 'KV_CLOSED' })
    expect(nfs.readdirSync(dir)).toEqual([])
  })

  it('removes the temp file when a compressed write fails', async () => {
    const err = await writeSnapshotFile(faultyFs('write', 2), join(dir, 'snap'), jsonSnapshot, { seq: 0, timestamp: 0, count: 20_000 }, entries(20_000), { compress: 'gzip' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_IO' })
    expect(nfs.readdirSync(dir)).toEqual([])
  })
})

import { spawn } from 'node:child_process'
import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import { SnapshotCatalog } from '../../src/snapshot/catalog.js'
import type { SnapshotEntry, SnapshotFormat } from '../../src/snapshot/format.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { isSnapshotTempName, removeStaleTemps, writeSnapshotFile } from '../../src/snapshot/write-file.js'

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

describe('writeSnapshotFile and other writers', () => {
  it('a temp name in the way (a failed exclusive create) is left alone: it is not ours', async () => {
    const path = join(dir, 'snap')
    let inTheWay = ''
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      open: (p: string, f: Parameters<Fs['open']>[1], m?: number) => {
        if (f === 'wx') nfs.writeFileSync((inTheWay = p), 'another writer')
        return nodeFs.open(p, f, m)
      },
    })
    await expect(write(fs, binarySnapshot, entries(2), path)).rejects.toMatchObject({ code: 'KV_IO', cause: { code: 'EEXIST' } })
    expect(nfs.readFileSync(inTheWay, 'utf8')).toBe('another writer')
  })

  it('replaces the file a symbolic link points to and keeps the link', async () => {
    nfs.mkdirSync(join(dir, 'real'))
    const real = join(dir, 'real', 'data.kvs')
    nfs.writeFileSync(real, 'old')
    nfs.symlinkSync(real, join(dir, 'data.kvs'))
    await write(nodeFs, binarySnapshot, entries(3), join(dir, 'data.kvs'))
    expect(nfs.lstatSync(join(dir, 'data.kvs')).isSymbolicLink()).toBe(true)
    let count = 0
    await binarySnapshot.read(nodeFs, real, () => count++)
    expect(count).toBe(3)
    expect(nfs.readdirSync(join(dir, 'real'))).toEqual(['data.kvs'])
  })
})

const TEMP_CHILD = fileURLToPath(new URL('../crash/snapshot-temp-child.ts', import.meta.url))

/** Start the snapshotting child on `file`, kill -9 it while a temp file of `file` exists, and return once it is dead. */
async function killMidSnapshot(file: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', TEMP_CHILD, file], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((r) => child.once('exit', r))
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)))
  })
  const folder = dirname(file)
  const before = new Set(nfs.readdirSync(folder))
  const deadline = Date.now() + 20_000
  while (!nfs.readdirSync(folder).some((n) => n.includes('.tmp-') && !before.has(n)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1))
  }
  child.kill('SIGKILL')
  await exited
}

describe('removeStaleTemps', () => {
  it('deletes the temp files killed writers left for the file, and nothing else', async () => {
    const file = join(dir, 'data.kvs')
    await write(nodeFs, binarySnapshot, entries(20_000), file)
    const held = join(dir, 'held')
    nfs.mkdirSync(held)
    let temps: string[] = []
    // A kill can land just after a rename; keep killing until three temps are left. Each is
    // kept out of the way meanwhile: the store may clean up temps when it opens.
    for (let attempt = 0; attempt < 10 && temps.length < 3; attempt++) {
      await killMidSnapshot(file)
      for (const n of nfs.readdirSync(dir).filter((n) => n.startsWith('data.kvs.tmp-'))) nfs.renameSync(join(dir, n), join(held, n))
      temps = nfs.readdirSync(held)
    }
    for (const n of temps) nfs.renameSync(join(held, n), join(dir, n))
    nfs.rmdirSync(held)
    expect(temps.length).toBeGreaterThanOrEqual(3)
    for (const t of temps) expect(t).toMatch(/^data\.kvs\.tmp-[0-9a-f]{12}$/)
    const keep = [
      'data.kvs',
      'data.kvs.tmp-',
      'data.kvs.tmp-0123456789a', // too short
      'data.kvs.tmp-0123456789abc', // too long
      'data.kvs.tmp-0123456789AB', // not how we write them
      'data.kvs.tmp-0123456789ab.bak',
      'data.kvs.tmp-notours00000',
      'other.kvs.tmp-0123456789ab', // another target's
      'xdata.kvs.tmp-0123456789ab',
      'data.kvs.bak',
      'notes.txt',
    ]
    for (const name of keep) if (name !== 'data.kvs') nfs.writeFileSync(join(dir, name), 'keep me')
    nfs.mkdirSync(join(dir, 'data.kvs.tmp-aaaaaaaaaaaa')) // a directory of that name is not ours
    const removed = removeStaleTemps(nodeFs, file)
    expect(removed.sort()).toEqual(temps.map((t) => join(dir, t)).sort())
    // The killed store's lock stays too: the next open takes it over (its owner is gone).
    expect(nfs.readdirSync(dir).sort()).toEqual([...keep, 'data.kvs.lock', 'data.kvs.tmp-aaaaaaaaaaaa'].sort())
    // What is left is the last complete snapshot.
    let count = 0
    await binarySnapshot.read(nodeFs, file, () => count++)
    expect(count).toBe(20_000)
  }, 120_000)

  it('matches the names writeSnapshotFile gives (isSnapshotTempName), for the target only', async () => {
    const names: string[] = []
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      open: (p: string, f: Parameters<Fs['open']>[1], m?: number) => (f === 'wx' && names.push(basename(p)), nodeFs.open(p, f, m)),
    })
    for (let i = 0; i < 5; i++) await write(fs, binarySnapshot, entries(1), join(dir, 'db.json'))
    expect(names).toHaveLength(5)
    for (const n of names) {
      expect(isSnapshotTempName(n)).toBe(true)
      expect(isSnapshotTempName(n, 'db.json')).toBe(true)
      expect(isSnapshotTempName(n, 'db')).toBe(false)
    }
    expect(isSnapshotTempName('db.json')).toBe(false)
    expect(isSnapshotTempName('.tmp-0123456789ab')).toBe(false)
  })

  it('looks beside the real file when the target is a symbolic link, and is quiet when the folder is missing', () => {
    nfs.mkdirSync(join(dir, 'real'))
    nfs.writeFileSync(join(dir, 'real', 'data.kvs'), 'x')
    nfs.writeFileSync(join(dir, 'real', 'data.kvs.tmp-0123456789ab'), 'partial')
    nfs.symlinkSync(join(dir, 'real', 'data.kvs'), join(dir, 'data.kvs'))
    expect(removeStaleTemps(nodeFs, join(dir, 'data.kvs'))).toEqual([join(dir, 'real', 'data.kvs.tmp-0123456789ab')])
    expect(removeStaleTemps(nodeFs, join(dir, 'missing', 'data.kvs'))).toEqual([])
  })

  it('reports a removal failure as KV_IO naming the file', () => {
    nfs.writeFileSync(join(dir, 'data.kvs.tmp-0123456789ab'), 'partial')
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      unlink: () => {
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
      },
    })
    let err: unknown
    try {
      removeStaleTemps(fs, join(dir, 'data.kvs'))
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'KV_IO', cause: { code: 'EIO' } })
    expect((err as Error).message).toContain(join(dir, 'data.kvs'))
  })
})

describe('SnapshotCatalog temp cleanup (directory mode)', () => {
  it('removes temp files of snapshot files only: lock files, WAL files and users\' files stay', async () => {
    const catalog = new SnapshotCatalog(nodeFs, dir)
    // A real one, left as a kill would leave it: the temp name writeSnapshotFile chose.
    let temp = ''
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      rename: (from: string) => {
        temp = basename(from)
        throw Object.assign(new Error('killed'), { code: 'EIO' })
      },
      unlink: () => undefined, // the kill leaves the temp file behind
    })
    await new SnapshotCatalog(fs, dir).write('binary', { seq: 3, timestamp: 0, count: 1 }, entries(1)).catch(() => undefined)
    expect(temp).toMatch(/^snap-0000000000000003\.kvs\.tmp-[0-9a-f]{12}$/)
    const others = [
      'snap-0000000000000002.kvs',
      'wal-0000000001.log',
      'LOCK',
      `LOCK.claim-${'a'.repeat(16)}`,
      'notes.tmp-old',
      'backup.kvs.tmp-0123456789ab',
      'snap-0000000000000003.kvs.tmp-XYZ',
    ]
    for (const name of others) nfs.writeFileSync(join(dir, name), 'keep')
    nfs.writeFileSync(join(dir, 'snap-0000000000000001.json.tmp-abc123'), 'partial') // older, shorter names count too
    nfs.mkdirSync(join(dir, 'snap-0000000000000009.kvs.tmp-aaaaaaaaaaaa'))
    expect(catalog.removeTemps().sort()).toEqual(['snap-0000000000000001.json.tmp-abc123', temp].sort())
    expect(nfs.readdirSync(dir).sort()).toEqual([...others, 'snap-0000000000000009.kvs.tmp-aaaaaaaaaaaa'].sort())
  })

  it('reports failures to remove as KV_IO, and a file already gone as nothing to do', async () => {
    nfs.writeFileSync(join(dir, 'snap-0000000000000001.kvs.tmp-0123456789ab'), 'partial')
    nfs.writeFileSync(join(dir, 'snap-0000000000000001.kvs'), 'old')
    const failing = (code: string): Fs =>
      Object.assign(Object.create(nodeFs) as Fs, {
        unlink: () => {
          throw Object.assign(new Error(code), { code })
        },
      })
    expect(() => new SnapshotCatalog(failing('EIO'), dir).removeTemps()).toThrow(expect.objectContaining({ code: 'KV_IO', cause: expect.objectContaining({ code: 'EIO' }) }))
    expect(new SnapshotCatalog(failing('ENOENT'), dir).removeTemps()).toEqual([])
    await expect(new SnapshotCatalog(failing('EIO'), dir).dropOlderThan(5)).rejects.toMatchObject({ code: 'KV_IO', cause: { code: 'EIO' } })
    const noSync = Object.assign(Object.create(nodeFs) as Fs, {
      fsyncDir: async () => {
        throw Object.assign(new Error('EIO'), { code: 'EIO' })
      },
    })
    await expect(new SnapshotCatalog(noSync, dir).dropOlderThan(5)).rejects.toMatchObject({ code: 'KV_IO', cause: { code: 'EIO' } })
  })
})

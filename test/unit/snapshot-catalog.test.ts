// The snapshot files of a store directory: their names, which files count as snapshots
// and as their temp files, writing one, and dropping older ones durably.

import { describe, expect, it } from 'vitest'
import { isStoreError } from '../../src/errors.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { SnapshotCatalog, snapshotName } from '../../src/snapshot/catalog.js'
import { MemFs } from '../helpers/mem-fs.js'

const DIR = '/db'

function dirWith(names: string[]): MemFs {
  const fs = new MemFs()
  fs.mkdir(DIR)
  for (const n of names) fs.putFile(`${DIR}/${n}`, Buffer.from('x'))
  return fs
}

/** The coded error `fn` throws (or its promise rejects with). */
async function failure(fn: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await fn()
  } catch (err) {
    if (!isStoreError(err)) throw err
    return { code: err.code, message: err.message }
  }
  throw new Error('expected a StoreError')
}

/** `fs` with `op` throwing an errno error of `code` for paths that contain `match`. */
function failing<K extends 'unlink' | 'readdir' | 'stat'>(fs: MemFs, op: K, code: string, match = ''): MemFs {
  const real = fs[op].bind(fs) as (p: string) => unknown
  ;(fs as unknown as Record<string, unknown>)[op] = (p: string) => {
    if (p.includes(match)) throw Object.assign(new Error(`${op} ${p}: ${code}`), { code })
    return real(p)
  }
  return fs
}

describe('snapshotName', () => {
  it('pads the seq to 16 digits and names the format by extension', () => {
    expect(snapshotName(5, 'binary')).toBe('snap-0000000000000005.kvs')
    expect(snapshotName(5, 'json')).toBe('snap-0000000000000005.json')
    expect(snapshotName(0, 'binary')).toBe('snap-0000000000000000.kvs')
    expect(snapshotName(Number.MAX_SAFE_INTEGER, 'binary')).toBe('snap-9007199254740991.kvs')
  })
})

describe('SnapshotCatalog', () => {
  it('lists exactly the snapshot names, newest first, with path and format', () => {
    const fs = dirWith([
      snapshotName(3, 'binary'),
      snapshotName(12, 'json'),
      snapshotName(7, 'binary'),
      'snap-1.kvs',
      'snap-00000000000000001.kvs',
      'snap-0000000000000002.txt',
      'snap-0000000000000002.kvs.tmp-abcdef012345',
      'xsnap-0000000000000004.kvs',
      'snap-0000000000000004.kvsx',
      'snap-000000000000000a.kvs',
      'wal-0000000000000001.log',
    ])
    expect(new SnapshotCatalog(fs, DIR).list()).toEqual([
      { seq: 12, path: `${DIR}/snap-0000000000000012.json`, format: 'json' },
      { seq: 7, path: `${DIR}/snap-0000000000000007.kvs`, format: 'binary' },
      { seq: 3, path: `${DIR}/snap-0000000000000003.kvs`, format: 'binary' },
    ])
    expect(new SnapshotCatalog(dirWith([]), DIR).list()).toEqual([])
  })

  it('a directory that cannot be listed is KV_IO naming it', async () => {
    const fs = failing(dirWith([]), 'readdir', 'EACCES')
    for (const call of [() => new SnapshotCatalog(fs, DIR).list(), () => new SnapshotCatalog(fs, DIR).removeTemps()]) {
      expect(await failure(call)).toEqual({ code: 'KV_IO', message: `cannot list ${DIR}` })
    }
  })

  it('removeTemps deletes temp files of snapshot files only, returning their names', () => {
    const temps = ['snap-0000000000000002.kvs.tmp-abcdef012345', 'snap-0000000000000003.json.tmp-0f']
    const others = [
      'snap-0000000000000002.kvs',
      'snap-2.kvs.tmp-abcdef012345',
      'snap-0000000000000002.kvs.tmp-ABCDEF',
      'snap-0000000000000002.kvs.tmp-',
      'snap-0000000000000002.txt.tmp-ab',
      'xsnap-0000000000000002.kvs.tmp-ab',
      'snap-0000000000000002.kvs.tmp-abx',
      'LOCK.tmp-abcdef012345',
      'notes.tmp-old',
    ]
    const fs = dirWith([...temps, ...others])
    fs.mkdir(`${DIR}/snap-0000000000000009.kvs.tmp-aa`)
    expect(new SnapshotCatalog(fs, DIR).removeTemps().sort()).toEqual([...temps].sort())
    expect(fs.readdir(DIR).sort()).toEqual([...others, 'snap-0000000000000009.kvs.tmp-aa'].sort())
  })

  it('removeTemps passes over a temp file that vanished, and reports one it cannot remove', async () => {
    const name = 'snap-0000000000000002.kvs.tmp-ab'
    const gone = failing(dirWith([name]), 'unlink', 'ENOENT')
    expect(new SnapshotCatalog(gone, DIR).removeTemps()).toEqual([])
    const stuck = failing(dirWith([name]), 'unlink', 'EACCES')
    expect(await failure(() => new SnapshotCatalog(stuck, DIR).removeTemps())).toEqual({ code: 'KV_IO', message: `cannot remove ${DIR}/${name}` })
    // A temp file whose stat fails (gone meanwhile) is not ours to touch.
    const unseen = dirWith([name])
    unseen.stat = () => undefined
    expect(new SnapshotCatalog(unseen, DIR).removeTemps()).toEqual([])
    expect(unseen.readdir(DIR)).toEqual([name])
  })

  it('writes snap-<seq> in the format asked, durably, with the mode and limits given', async () => {
    const fs = dirWith([])
    const done: number[] = []
    const cat = new SnapshotCatalog(fs, DIR, { mode: 0o600 })
    const entries = [{ key: 'k', value: 'v', expiresAt: 0, version: 4 }]
    const r = await cat.write('json', { seq: 4, timestamp: 0, count: 1 }, entries, (n) => done.push(n))
    expect(r.path).toBe(`${DIR}/snap-0000000000000004.json`)
    expect(r.bytes).toBe(fs.readFile(r.path).length)
    expect(fs.stat(r.path)?.mode).toBe(0o600)
    const got: unknown[] = []
    await jsonSnapshot.read(fs, r.path, (e) => got.push({ ...e }))
    expect(got).toEqual(entries)
    // Durable: the rename is followed by a directory sync.
    const ops = fs.log.map((o) => o.op)
    expect(ops.lastIndexOf('fsyncDir')).toBeGreaterThan(ops.lastIndexOf('rename'))
    expect(done).toEqual([])
    const bin = await new SnapshotCatalog(fs, DIR).write('binary', { seq: 5, timestamp: 0, count: 1 }, entries)
    expect(bin.path).toBe(`${DIR}/snap-0000000000000005.kvs`)
    // The store's limits reach the JSON writer: a line its reader would refuse is not written.
    const small = new SnapshotCatalog(fs, DIR, { limits: { maxValueBytes: 4, maxKeyBytes: 4 } })
    const long = [{ key: 'k', value: 'v'.repeat(70_000), expiresAt: 0, version: 1 }]
    expect((await failure(() => small.write('json', { seq: 6, timestamp: 0, count: 1 }, long))).code).toBe('KV_VALUE_TOO_LARGE')
    expect(fs.stat(`${DIR}/snap-0000000000000006.json`)).toBeUndefined()
  })

  it('dropOlderThan deletes strictly older snapshots and syncs the directory', async () => {
    const fs = dirWith([snapshotName(3, 'binary'), snapshotName(5, 'json'), snapshotName(8, 'binary'), 'other'])
    await new SnapshotCatalog(fs, DIR).dropOlderThan(5)
    expect(fs.readdir(DIR).sort()).toEqual([snapshotName(5, 'json'), snapshotName(8, 'binary'), 'other'].sort())
    expect(fs.log.slice(-2).map((o) => `${o.op} ${o.path}`)).toEqual([`unlink ${DIR}/${snapshotName(3, 'binary')}`, `fsyncDir ${DIR}`])
  })

  it('dropOlderThan: a snapshot already gone is fine; failures to remove or sync are KV_IO', async () => {
    const gone = failing(dirWith([snapshotName(1, 'binary')]), 'unlink', 'ENOENT')
    await new SnapshotCatalog(gone, DIR).dropOlderThan(2)
    const stuck = failing(dirWith([snapshotName(1, 'binary')]), 'unlink', 'EACCES')
    expect(await failure(() => new SnapshotCatalog(stuck, DIR).dropOlderThan(2))).toEqual({ code: 'KV_IO', message: `cannot remove ${DIR}/${snapshotName(1, 'binary')}` })
    const nosync = dirWith([snapshotName(1, 'binary')])
    nosync.failAt(nosync.opCount + 1, 'EIO')
    expect(await failure(() => new SnapshotCatalog(nosync, DIR).dropOlderThan(2))).toEqual({ code: 'KV_IO', message: `cannot sync directory ${DIR}` })
  })
})

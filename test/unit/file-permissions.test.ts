// Permission bits of what kvstore creates (private by default) and keeps (a file it
// replaces keeps its mode). Tests run as root here: modes are checked as bits, never by
// being refused access, which root would not be.
import * as nfs from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import { SnapshotCatalog } from '../../src/snapshot/catalog.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { MemFs } from '../helpers/mem-fs.js'
import { tmpDir } from '../helpers/tmp.js'

const modeOf = (path: string): number => nfs.statSync(path).mode & 0o7777

const savedUmask = process.umask()
afterEach(() => {
  process.umask(savedUmask)
})

async function snapshotTo(path: string, opts: { mode?: number } = {}): Promise<void> {
  await writeSnapshotFile(nodeFs, path, binarySnapshot, { seq: 1, timestamp: 0, count: 1 }, [{ key: 'k', value: 'v', expiresAt: 0, version: 1 }], opts)
}

describe('defaults', () => {
  it('are owner-only', () => {
    expect(DEFAULT_FILE_MODE).toBe(0o600)
    expect(DEFAULT_DIR_MODE).toBe(0o700)
  })

  it('nodeFs creates files 0600 and directories (parents too) 0700 unless told otherwise', () => {
    process.umask(0o022)
    const root = tmpDir()
    nodeFs.mkdir(join(root, 'a', 'b'))
    expect(modeOf(join(root, 'a'))).toBe(0o700)
    expect(modeOf(join(root, 'a', 'b'))).toBe(0o700)
    nodeFs.close(nodeFs.open(join(root, 'f'), 'wx'))
    expect(modeOf(join(root, 'f'))).toBe(0o600)
    nodeFs.close(nodeFs.open(join(root, 'g'), 'w', 0o640))
    expect(modeOf(join(root, 'g'))).toBe(0o640)
    nodeFs.mkdir(join(root, 'c'), 0o750)
    expect(modeOf(join(root, 'c'))).toBe(0o750)
    expect(nodeFs.stat(join(root, 'g'))?.mode).toBe(0o640)
  })
})

describe('a directory store', () => {
  it('creates its directory 0700 and every data file in it 0600 (WAL, snapshots); LOCK is 0644', async () => {
    process.umask(0o022)
    const dir = join(tmpDir(), 'parent', 'store')
    const s = await Store.open<string>({ dir })
    for (let i = 0; i < 50; i++) await s.set(`k${i}`, 'v'.repeat(100))
    await s.compact()
    await s.set('after', 'compaction')
    expect(modeOf(dir)).toBe(0o700)
    expect(modeOf(join(dir, '..'))).toBe(0o700)
    const files = nfs.readdirSync(dir)
    expect(files).toContain('LOCK')
    expect(files.some((f) => f.startsWith('wal-'))).toBe(true)
    expect(files.some((f) => f.startsWith('snap-'))).toBe(true)
    // LOCK holds only the owner's pid and host (see dir-lock.ts); the directory keeps others out anyway.
    for (const f of files) expect([f, modeOf(join(dir, f))]).toEqual([f, f === 'LOCK' ? 0o644 : 0o600])
    await s.close()
  })

  it('leaves the mode of a directory that already exists alone', async () => {
    const dir = tmpDir()
    nfs.chmodSync(dir, 0o750)
    const s = await Store.open({ dir })
    await s.close()
    expect(modeOf(dir)).toBe(0o750)
  })
})

describe('a file store', () => {
  it('creates its file 0600', async () => {
    process.umask(0o022)
    const file = join(tmpDir(), 'data.kvs')
    const s = await Store.open<string>({ file, snapshotIntervalMs: 0 })
    await s.set('k', 'v')
    await s.close()
    expect(modeOf(file)).toBe(0o600)
  })

  it('keeps the mode the user gave its file across saves (0640 stays 0640, 0600 stays 0600)', async () => {
    process.umask(0o022)
    for (const mode of [0o640, 0o600, 0o666, 0o400]) {
      const file = join(tmpDir(), 'data.json')
      const s = await Store.open<string>({ file, snapshotIntervalMs: 0 })
      await s.set('k', 'v1')
      await s.close()
      nfs.chmodSync(file, mode)
      const again = await Store.open<string>({ file, snapshotIntervalMs: 0 })
      await again.set('k', 'v2')
      await again.snapshot()
      await again.set('k', 'v3')
      await again.close()
      expect(modeOf(file).toString(8)).toBe(mode.toString(8))
    }
  })
})

describe('writeSnapshotFile modes', () => {
  it('keeps the mode of the file it replaces exactly, even one the umask would strip', async () => {
    process.umask(0o077)
    const path = join(tmpDir(), 'snap.kvs')
    nfs.writeFileSync(path, 'old')
    nfs.chmodSync(path, 0o644)
    await snapshotTo(path)
    expect(modeOf(path)).toBe(0o644)
  })

  it('sets an asked mode exactly, on a new file and over an existing one', async () => {
    process.umask(0o077)
    const path = join(tmpDir(), 'snap.kvs')
    await snapshotTo(path, { mode: 0o640 })
    expect(modeOf(path)).toBe(0o640)
    await snapshotTo(path, { mode: 0o604 })
    expect(modeOf(path)).toBe(0o604)
    await snapshotTo(path)
    expect(modeOf(path)).toBe(0o604)
  })

  it('creates a new file with the default mode under the umask', async () => {
    process.umask(0o022)
    const path = join(tmpDir(), 'snap.kvs')
    await snapshotTo(path)
    expect(modeOf(path)).toBe(DEFAULT_FILE_MODE)
  })

  it('never shows other bits under the final name: the temp file has the mode before the rename', async () => {
    const path = join(tmpDir(), 'snap.kvs')
    nfs.writeFileSync(path, 'old')
    nfs.chmodSync(path, 0o640)
    const seen: number[] = []
    const fs = Object.assign(Object.create(nodeFs), {
      rename: (from: string, to: string) => {
        seen.push(modeOf(from))
        nodeFs.rename(from, to)
      },
    }) as typeof nodeFs
    await writeSnapshotFile(fs, path, binarySnapshot, { seq: 0, timestamp: 0, count: 0 }, [])
    expect(seen).toEqual([0o640])
  })

  it('works the same on MemFs, which records modes', async () => {
    const fs = new MemFs()
    fs.mkdir('/d')
    fs.putFile('/d/snap.kvs', Buffer.from('old'), 0o640)
    await writeSnapshotFile(fs, '/d/snap.kvs', binarySnapshot, { seq: 0, timestamp: 0, count: 0 }, [])
    expect(fs.stat('/d/snap.kvs')?.mode).toBe(0o640)
    await writeSnapshotFile(fs, '/d/new.kvs', binarySnapshot, { seq: 0, timestamp: 0, count: 0 }, [])
    expect(fs.stat('/d/new.kvs')?.mode).toBe(DEFAULT_FILE_MODE)
  })
})

describe('SnapshotCatalog modes', () => {
  it('writes snapshots 0600 by default, or with the mode it was given', async () => {
    process.umask(0o022)
    const dir = tmpDir()
    const meta = { seq: 1, timestamp: 0, count: 0 }
    const { path } = await new SnapshotCatalog(nodeFs, dir).write('binary', meta, [])
    expect(modeOf(path)).toBe(0o600)
    const { path: other } = await new SnapshotCatalog(nodeFs, dir, { mode: 0o640 }).write('json', { ...meta, seq: 2 }, [])
    expect(modeOf(other)).toBe(0o640)
  })
})

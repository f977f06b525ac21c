// Regression: in snapshot-file mode, a snapshot that failed (a disk full for a moment) must
// not count as saved: close() and the periodic snapshot must still write what was acknowledged.
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { FullDisk } from '../helpers/full-disk.js'
import { codeOf } from '../helpers/codes.js'

describe('file mode after a failed snapshot', () => {
  it('close() still saves the writes a failed snapshot did not', async () => {
    const disk = new FullDisk()
    const s = await Store.open<string>({ file: '/data.json', fs: disk.fs, snapshotIntervalMs: 0 })
    await s.set('k', 'v')
    disk.full = true
    expect(await codeOf(s.snapshot())).toBe('KV_IO')
    disk.full = false
    await s.close()
    const again = await Store.open<string>({ file: '/data.json', fs: disk.fs })
    expect(await again.get('k')).toBe('v')
    await again.close()
  })

  it('a snapshot to another path does not count as saving the store file', async () => {
    const disk = new FullDisk()
    const s = await Store.open<string>({ file: '/data.json', fs: disk.fs, snapshotIntervalMs: 0 })
    await s.set('k', 'v')
    await s.snapshot('/backup.json')
    await s.close()
    const again = await Store.open<string>({ file: '/data.json', fs: disk.fs })
    expect(await again.get('k')).toBe('v')
    await again.close()
  })

  it('the periodic snapshot retries after a failure', async () => {
    const disk = new FullDisk()
    const s = await Store.open<string>({ file: '/data.json', fs: disk.fs, snapshotIntervalMs: 20 })
    await s.set('k', 'v')
    disk.full = true
    await new Promise((r) => setTimeout(r, 60))
    disk.full = false
    await new Promise((r) => setTimeout(r, 100))
    // Read the file behind the store's back: the periodic snapshot alone must have saved it.
    const copy = await Store.open<string>({ file: '/copy.json', fs: disk.fs })
    await copy.load('/data.json')
    expect(await copy.get('k')).toBe('v')
    await copy.close()
    await s.close()
  })

  it('a failed load leaves memory and file unchanged', async () => {
    const disk = new FullDisk()
    const src = await Store.open<string>({ file: '/src.json', fs: disk.fs })
    await src.set('other', 'x')
    await src.close()
    const s = await Store.open<string>({ file: '/data.json', fs: disk.fs, snapshotIntervalMs: 0 })
    await s.set('k', 'v')
    await s.snapshot()
    disk.full = true
    expect(await codeOf(s.load('/src.json'))).toBe('KV_IO')
    disk.full = false
    expect(await s.get('k')).toBe('v')
    expect(await s.get('other')).toBeUndefined()
    await s.set('k2', 'v2')
    await s.close()
    const again = await Store.open<string>({ file: '/data.json', fs: disk.fs })
    expect(await again.keys()).toEqual(['k', 'k2'])
    await again.close()
  })
})

describe('dir mode after a failed load', () => {
  it('rejects with KV_IO and then either works or refuses writes with KV_IO, never a RangeError', async () => {
    const disk = new FullDisk()
    const src = await Store.open<string>({ file: '/src.json', fs: disk.fs })
    await src.set('other', 'x')
    await src.close()
    const s = await Store.open<string>({ dir: '/db', fs: disk.fs })
    await s.set('k', 'v')
    // The WAL rotates; the new base snapshot then fails (its temp file cannot be created).
    disk.only = (path) => path.includes('snap')
    disk.full = true
    expect(await codeOf(s.load('/src.json'))).toBe('KV_IO')
    disk.full = false
    const write = await codeOf(s.set('k2', 'v2'))
    if (write === 'resolved') {
      expect(s.stats().failure).toBeUndefined()
    } else {
      expect(write).toBe('KV_IO')
      expect(s.stats().failure).toBeDefined()
    }
    await s.close().catch(() => undefined)
    const again = await Store.open<string>({ dir: '/db', fs: disk.fs })
    expect(await again.get('k')).toBe('v')
    if (write === 'resolved') expect(await again.get('k2')).toBe('v2')
    await again.close()
  })
})

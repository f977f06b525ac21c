import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { MemFs } from '../helpers/mem-fs.js'
import { tmpDir } from '../helpers/tmp.js'

const DIR = '/db'

async function reopenAfterPowerLoss(fs: MemFs): Promise<Store<string>> {
  return Store.open<string>({ dir: DIR, fs: fs.crash('drop-unsynced'), expirySweepIntervalMs: 0 })
}

describe('Store.flush', () => {
  it("gives writes made under sync: 'never' power-loss durability", async () => {
    const fs = new MemFs()
    const s = await Store.open<string>({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0 })
    await s.set('a', '1')
    // Without flush the write has reached the OS but not the disk: a power loss drops it.
    const lost = await reopenAfterPowerLoss(fs)
    expect(await lost.get('a')).toBeUndefined()
    await lost.close()

    const pending = [s.set('b', '2'), s.set('c', '3')]
    await s.flush()
    const kept = await reopenAfterPowerLoss(fs)
    expect(await kept.get('a')).toBe('1')
    expect(await kept.get('b')).toBe('2')
    expect(await kept.get('c')).toBe('3')
    await kept.close()
    await Promise.all(pending)
    await s.close()
  })

  it('shares datasyncs: flushes issued together cost one, and a flush with nothing unsynced costs none', async () => {
    const fs = new MemFs()
    const s = await Store.open<string>({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0 })
    await s.set('warm', 'up')
    await s.flush()
    let datasyncs = 0
    fs.onOp = (_index, op) => {
      if (op === 'datasync') datasyncs++
    }
    await s.flush()
    expect(datasyncs).toBe(0)
    for (let i = 0; i < 10; i++) void s.set(`k${i}`, 'v')
    await Promise.all([s.flush(), s.flush(), s.flush()])
    expect(datasyncs).toBe(1)
    await s.close()
  })

  it('logs writes queued behind an exclusive operation before it resolves', async () => {
    const fs = new MemFs()
    const s = await Store.open<string>({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0 })
    // update() holds the exclusive side while its function runs: the set and the flush queue behind it.
    let release!: () => void
    const held = s.update('u', () => new Promise<string>((r) => (release = () => r('x'))))
    const queued = s.set('q', 'queued')
    const flushed = s.flush()
    await new Promise((r) => setTimeout(r, 5))
    release()
    await flushed
    const kept = await reopenAfterPowerLoss(fs)
    expect(await kept.get('q')).toBe('queued')
    expect(await kept.get('u')).toBe('x')
    await kept.close()
    await Promise.all([held, queued])
    await s.close()
  })

  it('writes the file in file mode when anything is unsaved', async () => {
    const dir = tmpDir()
    const file = `${dir}/store.json`
    const s = await Store.open<string>({ file, snapshotIntervalMs: 0 })
    await s.set('a', '1')
    await s.flush()
    const copy = await Store.open<string>({ file: `${dir}/copy.json`, snapshotIntervalMs: 0 })
    await copy.load(file)
    expect(await copy.get('a')).toBe('1')
    await copy.close()
    await s.close()
  })

  it('resolves at once in memory, and rejects with KV_CLOSED after close()', async () => {
    const s = await Store.open<string>()
    await s.set('a', '1')
    await expect(s.flush()).resolves.toBeUndefined()
    await s.close()
    const err = await s.flush().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_CLOSED')
  })
})

// snapshot(path) / load(path) copies, snapshot() of the store's own data, and compact().
import { describe, expect, it } from 'vitest'
import type { Change } from '../../src/index.js'
import { backends } from './backends.js'
import { codeOf, collect, drain, dump, failsWithStoreError, fillInBatches, dumpLoaded, openWithClock, type Backend, type StoreLike, itWhen } from './harness.js'

function scratch(backend: Backend, name: string): string {
  if (backend.scratchPath === undefined) throw new Error(`${backend.name} declares snapshotFiles but has no scratchPath`)
  return backend.scratchPath(name)
}

async function sample(s: StoreLike, backend: Backend): Promise<void> {
  await s.set('str', 'x')
  await s.set('obj', { a: [1, { b: null }] })
  await s.set('bytes', new Uint8Array([1, 2, 255]))
  await s.set('num', -0)
  await s.set('ttl', 1, { ttl: 60_000 })
  await s.set('gone', 1)
  await s.delete('gone')
  if (backend.capabilities.lists) await s.rpush('list', 1, 'two')
  if (backend.capabilities.hashes) await s.hset('hash', { f: 1, g: [2] })
}

describe.each(backends)('snapshots: $name', (backend) => {
  const caps = backend.capabilities

  it('declares scratchPath exactly when it has snapshotFiles', () => {
    expect(typeof backend.scratchPath === 'function').toBe(caps.snapshotFiles)
  })

  itWhen(caps.snapshotFiles)('snapshot(path) and load(path) into a fresh store give the same contents and versions, binary and JSON', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await sample(s, backend)
    const before = await dump(s)
    const beforeLoaded = await dumpLoaded(s, backend)
    for (const [name, format] of [
      ['copy.kvs', 'binary'],
      ['copy.json', 'json'],
    ] as const) {
      const path = scratch(backend, name)
      const r = await s.snapshot(path)
      expect(r.format).toBe(format)
      expect(r.entries).toBe(before.length)
      if (caps.versionsAreSeqs) expect(r.seq).toBe(s.stats().seq)
      else expect(Number.isSafeInteger(r.seq)).toBe(true)
      const fresh = await backend.open({ clock })
      const loaded = await fresh.load(path)
      expect(loaded.entries).toBe(before.length)
      expect([name, await dumpLoaded(fresh, backend)]).toEqual([name, beforeLoaded])
      expect(Object.is(await fresh.get('num'), -0)).toBe(true)
      // Writes after the load continue past every loaded version.
      await fresh.set('z', 0)
      expect(await fresh.version('z')).toBeGreaterThan(Math.max(...before.map((e) => (e as number[])[3] as number)))
    }
  })

  itWhen(caps.snapshotFiles)('explicit format and compression options round-trip', async () => {
    const s = await backend.open()
    await sample(s, backend)
    const before = await dumpLoaded(s, backend)
    for (const options of [{ format: 'json' as const }, { format: 'binary' as const, compress: 'gzip' as const }, { compress: 'brotli' as const }]) {
      const path = scratch(backend, 'copy.snap')
      const r = await s.snapshot(path, options)
      expect(r.format).toBe(options.format ?? 'binary')
      const fresh = await backend.open()
      await fresh.load(path)
      expect([options, await dumpLoaded(fresh, backend)]).toEqual([options, before])
    }
    expect(await codeOf(() => s.snapshot(scratch(backend, 'x.kvs'), { format: 'xml' } as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.snapshot(scratch(backend, 'x.kvs'), { compress: 'zip' } as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.snapshot(scratch(backend, 'x.kvs'), { fromat: 'json' } as never))).toBe('KV_INVALID_ARGUMENT')
  })

  itWhen(caps.snapshotFiles)('a snapshot holds the state as of the call, whatever is written after it', async () => {
    const s = await backend.open()
    await fillInBatches(s, backend, Array.from({ length: 300 }, (_, i) => ({ type: 'set' as const, key: `k${String(i).padStart(3, '0')}`, value: i })))
    const before = await dumpLoaded(s, backend)
    const path = scratch(backend, 'pit.kvs')
    const snap = s.snapshot(path)
    const writes = [s.set('k000', 'changed'), s.delete('k150'), s.set('new', 1), s.clear()]
    await Promise.all([snap, ...writes])
    const fresh = await backend.open()
    await fresh.load(path)
    expect(await dumpLoaded(fresh, backend)).toEqual(before)
  })

  itWhen(caps.snapshotFiles)('load replaces the whole contents; loaded keys get a new version; watchers see a clear', async () => {
    const s = await backend.open()
    await s.set('in-file', 'from file')
    await s.set('both', 'from file')
    const path = scratch(backend, 'replace.kvs')
    await s.snapshot(path)
    await s.set('both', 'newer')
    await s.set('not-in-file', 1)
    const vBoth = (await s.version('both')) as number
    const high = Math.max(vBoth, (await s.version('not-in-file')) as number)
    const feed = caps.watch ? s.watch() : undefined
    await s.load(path)
    expect(await s.keys()).toEqual(['both', 'in-file'])
    expect(await s.get('both')).toBe('from file')
    const vLoaded = (await s.version('in-file')) as number
    expect(vLoaded).toBeGreaterThan(high)
    expect(await s.version('both')).toBe(vLoaded)
    if (caps.atomic) expect(await s.atomic().check('both', vBoth).set('both', 'x').commit()).toEqual({ ok: false, failed: ['both'] })
    if (feed !== undefined) expect((await drain(feed)).map((c: Change) => c.type)).toEqual(['clear'])
    await s.set('after', 1)
    expect(await s.version('after')).toBeGreaterThan(vLoaded)
  })

  itWhen(caps.snapshotFiles)('a failed load leaves the store unchanged', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const before = await dump(s)
    const missing = scratch(backend, 'missing.kvs')
    expect(await codeOf(() => s.load(missing))).toBe('KV_IO')
    expect(await codeOf(() => s.load(''))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.load(5 as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await dump(s)).toEqual(before)
    await s.set('b', 2) // still writable
    expect(await s.keys()).toEqual(['a', 'b'])
  })

  itWhen(caps.snapshotFiles && caps.persistent)('a load survives reopen', async () => {
    const reopen = backend.reopen
    if (reopen === undefined) throw new Error('persistent without reopen')
    let s = await backend.open()
    await s.set('from-file', 1)
    const path = scratch(backend, 'durable.kvs')
    await s.snapshot(path)
    await s.clear()
    await s.set('replaced', 1)
    await s.load(path)
    const after = await dump(s)
    s = await reopen.call(backend, s)
    expect(await dump(s)).toEqual(after)
    expect(await s.keys()).toEqual(['from-file'])
  })

  itWhen(caps.snapshotFiles && caps.persistent)('a resolved load survives a crash; a snapshot to another path saves nothing of the store', async () => {
    const crash = backend.crash
    if (crash === undefined) throw new Error('persistent without crash')
    const s = await backend.open()
    await s.set('from-file', 1)
    const path = scratch(backend, 'crash.kvs')
    await s.snapshot(path)
    await s.clear()
    await s.load(path)
    await s.set('later', 2)
    await s.snapshot(scratch(backend, 'elsewhere.kvs')) // a copy, not the store's own data
    const after = await crash.call(backend, s)
    expect(await after.keys()).toEqual(caps.survivesCrashWithoutSnapshot ? ['from-file', 'later'] : ['from-file'])
  })

  // Regression: saving the store's own file takes its view when it runs, so a save queued
  // behind another never writes older contents over newer ones.
  itWhen(caps.persistent && caps.ownSnapshot)(
    'a snapshot() queued behind a compact() never overwrites newer data',
    async () => {
      const reopen = backend.reopen
      if (reopen === undefined) throw new Error('persistent without reopen')
      let s = await backend.open()
      await s.set('a', 1)
      const compacting = s.compact()
      const snapshotting = s.snapshot()
      const write = s.set('after-both-calls', 2)
      await Promise.all([compacting, snapshotting, write])
      s = await reopen.call(backend, s)
      expect(await s.keys()).toEqual(['a', 'after-both-calls'])
    },
  )

  itWhen(!(caps.persistent && caps.ownSnapshot))('(companion) without an own snapshot to save, compact() keeps writes made meanwhile', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const compacting = s.compact()
    const snapshotting = codeOf(() => s.snapshot())
    await s.set('after-both-calls', 2)
    await compacting
    expect(await snapshotting).toBe(caps.ownSnapshot ? 'resolved' : 'KV_INVALID_ARGUMENT')
    expect(await s.keys()).toEqual(['a', 'after-both-calls'])
  })

  itWhen(!caps.snapshotFiles)('without snapshot files, snapshot(path) and load(path) reject with a StoreError', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    expect(await failsWithStoreError(() => s.snapshot('copy.kvs'))).toBe(true)
    expect(await failsWithStoreError(() => s.load('copy.kvs'))).toBe(true)
    expect(await s.keys()).toEqual(['a'])
  })

  it('snapshot() without a path saves the own data exactly when ownSnapshot is declared', async () => {
    const s = await backend.open()
    await sample(s, backend)
    const before = await dump(s)
    if (caps.ownSnapshot) {
      const r = await s.snapshot()
      expect(r.entries).toBe(before.length)
      expect(r.path).not.toBe('')
      if (caps.versionsAreSeqs) expect(r.seq).toBe(s.stats().seq)
      else expect(Number.isSafeInteger(r.seq)).toBe(true)
    } else {
      expect(await codeOf(() => s.snapshot())).toBe('KV_INVALID_ARGUMENT')
    }
    expect(await dump(s)).toEqual(before)
  })

  it('compact() changes no contents; it counts as a compaction exactly when compaction is declared', async () => {
    const s = await backend.open()
    await sample(s, backend)
    for (let i = 0; i < 50; i++) await s.set('churn', i)
    const before = await dump(s)
    const compactions = s.stats().compactions
    const r = await s.compact()
    expect(await dump(s)).toEqual(before)
    expect(s.stats().compactions).toBe(compactions + (caps.compaction ? 1 : 0))
    if (caps.compaction) expect(r.entries).toBe(before.length)
    else expect(typeof r.entries).toBe('number')
  })

  // Regression: saving the store's own file takes its view when it runs, so a save queued
  // behind another never writes older contents over newer ones.
  itWhen(caps.persistent)('writes made while a compaction or snapshot runs are kept, in memory and after reopen', async () => {
    const reopen = backend.reopen
    if (reopen === undefined) throw new Error('persistent without reopen')
    let s = await backend.open()
    await fillInBatches(s, backend, Array.from({ length: 300 }, (_, i) => ({ type: 'set' as const, key: `k${String(i).padStart(3, '0')}`, value: i })))
    const compacting = s.compact()
    const during = [s.set('during-compact', 1), s.delete('k000')]
    const snapshotting = caps.ownSnapshot ? s.snapshot() : s.compact()
    during.push(s.set('during-snapshot', 2), s.set('k001', 'changed'))
    await Promise.all([compacting, snapshotting, ...during])
    const before = await dump(s)
    expect(await s.has('k000')).toBe(false)
    expect(await s.get('during-snapshot')).toBe(2)
    s = await reopen.call(backend, s)
    expect(await dump(s)).toEqual(before)
    expect(await collect(s.scan({ prefix: 'during' }))).toEqual([
      ['during-compact', 1],
      ['during-snapshot', 2],
    ])
  })
})

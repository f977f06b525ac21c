// Store-level crash tests on the simulated file system: power loss at every file
// operation of a workload (with compaction in it), and I/O faults at every operation.
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { MemFs, POWER_LOSS_MODELS, type FaultCode } from '../helpers/mem-fs.js'

const DIR = '/db'

function keyOf(i: number): string {
  return `k${String(i).padStart(5, '0')}`
}
function valueOf(i: number): string {
  return `value-${i}-${'x'.repeat(i % 13)}`
}

interface History {
  /** Writes acknowledged so far (resolved promises), by index. */
  acked: Set<number>
  /** Writes whose promise rejected. */
  failed: Set<number>
  issued: number
}

/**
 * Issue `total` writes, 8 in flight; every 4th is a 2-key batch. Write i sets
 * keyOf(i) (and keyOf(i)+'b' for batches) to valueOf(i).
 */
async function workload(store: Store<string>, total: number, h: History): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++
      h.issued = Math.max(h.issued, i + 1)
      const p =
        i % 4 === 3
          ? store.batch([
              { type: 'set', key: keyOf(i), value: valueOf(i) },
              { type: 'set', key: `${keyOf(i)}b`, value: valueOf(i) },
            ])
          : store.set(keyOf(i), valueOf(i)).then(() => undefined)
      try {
        await p
        h.acked.add(i)
      } catch {
        h.failed.add(i)
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
}

/** Recovered state must hold every acked write and be a prefix of the issue order. */
async function verify(store: Store<string>, acked: ReadonlySet<number>, issued: number): Promise<string[]> {
  const problems: string[] = []
  const present = new Map<string, string>()
  for await (const [k, v] of store.scan()) present.set(k, v)
  let prefix = 0
  while (prefix < issued && present.has(keyOf(prefix))) prefix++
  for (const i of acked) if (i >= prefix) problems.push(`acked write ${i} lost (prefix ${prefix})`)
  let expected = 0
  for (let i = 0; i < prefix; i++) {
    if (present.get(keyOf(i)) !== valueOf(i)) problems.push(`${keyOf(i)} has a wrong value`)
    expected++
    if (i % 4 === 3) {
      expected++
      if (present.get(`${keyOf(i)}b`) !== valueOf(i)) problems.push(`batch ${i} torn`)
    }
  }
  if (present.size !== expected) problems.push(`${present.size} keys present, ${expected} expected: not a prefix`)
  return problems
}

describe('power loss (simulated file system)', () => {
  it('keeps every acknowledged write and a prefix of history when power fails at any file operation', async () => {
    const fs = new MemFs()
    const h: History = { acked: new Set(), failed: new Set(), issued: 0 }
    const images: { fs: MemFs; acked: Set<number>; issued: number; op: number }[] = []
    const store = await Store.open<string>({ dir: DIR, fs, compactThresholdBytes: 1024, expirySweepIntervalMs: 0 })
    fs.onOp = (index) => {
      // A crash right before op `index`: everything acked so far must survive.
      for (const [m, model] of POWER_LOSS_MODELS.entries()) {
        images.push({ fs: fs.crash(model, index * 3 + m), acked: new Set(h.acked), issued: h.issued, op: index })
      }
    }
    await workload(store, 400, h)
    fs.onOp = undefined
    await store.close()
    expect(h.failed.size).toBe(0)
    expect(images.length).toBeGreaterThan(200)
    const ops = new Set(fs.log.map((r) => r.op))
    expect(ops).toContain('rename') // compaction ran inside the workload
    const problems: string[] = []
    for (const img of images) {
      const s = await Store.open<string>({ dir: DIR, fs: img.fs, expirySweepIntervalMs: 0 })
      for (const p of await verify(s, img.acked, img.issued)) problems.push(`crash before op ${img.op}: ${p}`)
      // Writable after recovery, and a second recovery gives the same state.
      await s.set('after', 'crash')
      const before = await s.keys()
      await s.close()
      const again = await Store.open<string>({ dir: DIR, fs: img.fs, expirySweepIntervalMs: 0 })
      expect(await again.keys()).toEqual(before)
      await again.close()
    }
    expect(problems).toEqual([])
  }, 120_000)
})

describe('I/O faults at every file operation', () => {
  const cases: { code: FaultCode; shortWrite: boolean; persistent: boolean }[] = [
    { code: 'EIO', shortWrite: false, persistent: false },
    { code: 'ENOSPC', shortWrite: true, persistent: true },
    { code: 'EFBIG', shortWrite: true, persistent: false },
  ]
  for (const c of cases) {
    it(`never acknowledges a failed write and loses nothing acknowledged (${c.code}${c.shortWrite ? ', short write' : ''})`, async () => {
      // Count the ops of a clean run after open, then fail each one in turn.
      const probe = new MemFs()
    probe.mkdir(DIR)
      const p = await Store.open<string>({ dir: DIR, fs: probe, compactThresholdBytes: 1024, expirySweepIntervalMs: 0 })
      const opened = probe.opCount
      await workload(p, 200, { acked: new Set(), failed: new Set(), issued: 0 })
      const total = probe.opCount
      await p.close()
      const problems: string[] = []
      for (let k = opened; k < total; k++) {
        const fs = new MemFs()
        const h: History = { acked: new Set(), failed: new Set(), issued: 0 }
        const s = await Store.open<string>({ dir: DIR, fs, compactThresholdBytes: 1024, expirySweepIntervalMs: 0 })
        fs.failAt(k, c.code, { shortWrite: c.shortWrite, persistent: c.persistent })
        await workload(s, 200, h)
        // After the first failure every later write is rejected: nothing acked after a failure.
        const firstFail = Math.min(...h.failed)
        if (h.failed.size > 0) {
          const failure = s.stats().failure
          if (failure !== undefined) {
            for (const i of h.acked) if (i > firstFail) problems.push(`op ${k}: write ${i} acked after failure at ${firstFail}`)
            const err = await s.set('x', 'y').then(() => undefined, (e: unknown) => e)
            if (!(err instanceof StoreError) || err.code !== 'KV_IO') problems.push(`op ${k}: write after failure not rejected with KV_IO`)
          }
        }
        await s.close().catch(() => undefined)
        // Reopen what a process crash would leave (the page cache survives).
        const after = fs.crash('keep-all')
        const r = await Store.open<string>({ dir: DIR, fs: after, expirySweepIntervalMs: 0 })
        for (const msg of await verify(r, h.acked, h.issued)) problems.push(`op ${k}: ${msg}`)
        await r.close()
      }
      expect(problems).toEqual([])
    }, 120_000)
  }

  it('poisons the store on a failed fsync: later writes reject with KV_IO, reads still work', async () => {
    const fs = new MemFs()
    const s = await Store.open<string>({ dir: DIR, fs, expirySweepIntervalMs: 0 })
    await s.set('a', '1')
    fs.failAt(fs.opCount + 1, 'EIO') // the write of the next record succeeds, its datasync fails
    const err = await s.set('b', '2').then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_IO')
    expect(((err as StoreError).cause as NodeJS.ErrnoException).code).toBe('EIO')
    expect((await s.set('c', '3').catch((e: StoreError) => e.code))).toBe('KV_IO')
    expect(await s.get('a')).toBe('1')
    expect(s.stats().failure).toBeDefined()
    await s.close().catch(() => undefined)
    const r = await Store.open<string>({ dir: DIR, fs: fs.crash('keep-all'), expirySweepIntervalMs: 0 })
    expect(await r.get('a')).toBe('1')
    expect(await r.has('c')).toBe(false)
    await r.close()
  })
})

describe('torn tail at every byte of the last records', () => {
  it('opens every time with exactly the complete records, then appends and reopens', async () => {
    const golden = new MemFs()
    const s = await Store.open<string>({ dir: DIR, fs: golden, expirySweepIntervalMs: 0 })
    for (let i = 0; i < 10; i++) await s.set(keyOf(i), valueOf(i))
    await s.close()
    const walName = golden.readdir(DIR).find((n) => n.startsWith('wal-')) as string
    const wal = golden.readFile(`${DIR}/${walName}`)
    // Record boundaries: replaying a prefix tells which records a cut keeps.
    const ends: number[] = []
    const probe = new MemFs()
    probe.mkdir(DIR)
    for (let cut = wal.length; cut >= 0 && ends.length < 4; cut--) {
      probe.putFile(`${DIR}/${walName}`, wal.subarray(0, cut))
      const r = await Store.open<string>({ dir: DIR, fs: probe, expirySweepIntervalMs: 0 })
      if (r.stats().recovery?.truncatedTailBytes === 0) ends.push(cut)
      await r.close()
      probe.putFile(`${DIR}/${walName}`, wal)
    }
    const firstCut = ends[3] as number // start of the third-last record
    for (let cut = firstCut; cut < wal.length; cut++) {
      const fs = new MemFs()
      fs.mkdir(DIR)
      fs.putFile(`${DIR}/${walName}`, wal.subarray(0, cut))
      const r = await Store.open<string>({ dir: DIR, fs, expirySweepIntervalMs: 0 })
      const complete = (await r.keys()).length
      expect(complete).toBe(ends.filter((e) => e <= cut).length + 6)
      for (let i = 0; i < 10; i++) await r.set(`new${i}`, 'x')
      await r.close()
      const again = await Store.open<string>({ dir: DIR, fs, expirySweepIntervalMs: 0 })
      expect(await again.count()).toBe(complete + 10)
      await again.close()
    }
  }, 60_000)
})

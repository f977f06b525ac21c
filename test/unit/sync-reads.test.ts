// getSync, hasSync and getEntrySync: the answers of get, has and getEntry without a
// promise, read as of the call, never a mix during load().
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { numRuns } from '../helpers/runs.js'
import { tmpDir } from '../helpers/tmp.js'

const KEYS = ['a', 'b', 'c', 'd']

type Cmd =
  | { t: 'set'; key: string; value: number; ttl: number | undefined }
  | { t: 'del'; key: string }
  | { t: 'rpush'; key: string }
  | { t: 'advance'; ms: number }
  | { t: 'persist'; key: string }

const keyArb = fc.constantFrom(...KEYS)
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ t: fc.constant('set' as const), key: keyArb, value: fc.integer(), ttl: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }) }),
  fc.record({ t: fc.constant('del' as const), key: keyArb }),
  fc.record({ t: fc.constant('rpush' as const), key: keyArb }),
  fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ t: fc.constant('persist' as const), key: keyArb }),
)

/** What a call did: its value, or the code it failed with. */
function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() }
  } catch (err) {
    return { code: (err as StoreError).code }
  }
}

async function asyncOutcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p }
  } catch (err) {
    return { code: (err as StoreError).code }
  }
}

describe('synchronous reads', () => {
  it('answer exactly what get, has and getEntry resolve with, after any history', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { maxLength: 40 }), async (cmds) => {
        const clock = new FakeClock()
        const s = await Store.open<unknown>({ clock, expirySweepIntervalMs: 0 })
        for (const c of cmds) {
          if (c.t === 'set') await s.set(c.key, c.value, c.ttl === undefined ? {} : { ttl: c.ttl })
          else if (c.t === 'del') await s.delete(c.key)
          else if (c.t === 'rpush') await s.rpush(c.key, 'x').catch(() => undefined)
          else if (c.t === 'persist') await s.persist(c.key).catch(() => undefined)
          else clock.advance(c.ms)
          for (const k of KEYS) {
            expect(outcome(() => s.getSync(k))).toEqual(await asyncOutcome(s.get(k)))
            expect(outcome(() => s.hasSync(k))).toEqual(await asyncOutcome(s.has(k)))
            expect(outcome(() => s.getEntrySync(k))).toEqual(await asyncOutcome(s.getEntry(k)))
          }
        }
        await s.close()
      }),
      { numRuns: numRuns(100) },
    )
  })

  it('throw (not reject) the codes get rejects with, for bad keys, lists and a closed store', async () => {
    const s = await Store.open<unknown>({ maxKeyBytes: 8 })
    await s.rpush('list', 'x')
    for (const bad of ['', 'x'.repeat(9), '\uD800', 42 as unknown as string, null as unknown as string]) {
      for (const read of [() => s.getSync(bad), () => s.hasSync(bad), () => s.getEntrySync(bad)]) {
        expect(outcome(read)).toEqual({ code: 'KV_INVALID_KEY' })
      }
      expect(await asyncOutcome(s.get(bad))).toEqual({ code: 'KV_INVALID_KEY' })
    }
    expect(outcome(() => s.getSync('list'))).toEqual({ code: 'KV_WRONG_TYPE' })
    expect(outcome(() => s.getEntrySync('list'))).toEqual({ code: 'KV_WRONG_TYPE' })
    expect(s.hasSync('list')).toBe(true)
    await s.close()
    for (const read of [() => s.getSync('a'), () => s.hasSync('a'), () => s.getEntrySync('a')]) {
      expect(() => read()).toThrow(StoreError)
      expect(outcome(read)).toEqual({ code: 'KV_CLOSED' })
    }
  })

  it('see the old contents or the new during load(), never a mix', async () => {
    const dir = tmpDir()
    const n = 20_000
    const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(6, '0')}`)
    const s = await Store.open<string>()
    await s.batch(keys.map((key) => ({ type: 'set' as const, key, value: 'new' })))
    const file = join(dir, 'new.kvs')
    await s.snapshot(file)
    await s.batch(keys.map((key) => ({ type: 'set' as const, key, value: 'old' })))
    const seen = new Set<string>()
    const probe = (): void => {
      const values = new Set(keys.filter((_, i) => i % 97 === 0).map((k) => s.getSync(k)))
      expect(values.size).toBe(1)
      seen.add([...values][0] as string)
    }
    let done = false
    const load = s.load(file).then(() => (done = true))
    // Probe on every turn of the event loop while the load reads and installs the file.
    while (!done) {
      probe()
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await load
    probe()
    expect(seen.has('old')).toBe(true)
    expect(seen.has('new')).toBe(true)
    await s.close()
  })

  it('answer at once while update() holds the lock, where get waits', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const updating = s.update('a', async (old) => {
      await gate
      return (old ?? 0) + 1
    })
    let asyncAnswer: number | undefined
    const pending = s.get('a').then((v) => (asyncAnswer = v))
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(s.getSync('a')).toBe(1) // the update has not written yet
    expect(asyncAnswer).toBeUndefined() // get queues behind the update
    release()
    await updating
    await pending
    expect(asyncAnswer).toBe(2)
    expect(s.getSync('a')).toBe(2)
    expect(s.getEntrySync('a')?.value).toBe(2)
    await s.close()
  })

  it('return immutable values: objects frozen, bytes copied', async () => {
    const s = await Store.open<unknown>()
    await s.set('o', { x: [1] })
    await s.set('b', new Uint8Array([1, 2]))
    const o = s.getSync('o') as { x: number[] }
    expect(Object.isFrozen(o) && Object.isFrozen(o.x)).toBe(true)
    const b = s.getSync('b') as Uint8Array
    b[0] = 9
    expect([...(s.getSync('b') as Uint8Array)]).toEqual([1, 2])
    await s.close()
  })
})

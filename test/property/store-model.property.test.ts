// Model-based test of the Store against a Map + sorted keys: random commands, with
// reopen (WAL replay), compaction, snapshot/load and a controllable clock for TTLs.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { numRuns } from '../helpers/runs.js'

interface Model {
  data: Map<string, { value: string | number; expiresAt: number }>
  clock: FakeClock
}
interface Real {
  store: Store<string | number>
  dir: string | undefined
  clock: FakeClock
}

function live(m: Model): [string, string | number][] {
  const now = m.clock.now()
  return [...m.data.entries()]
    .filter(([, e]) => e.expiresAt === 0 || e.expiresAt > now)
    .map(([k, e]) => [k, e.value] as [string, string | number])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
}

type Cmd = fc.AsyncCommand<Model, Real>

const key = fc.constantFrom('a', 'b', 'ab', 'b:1', 'b:2', 'c', 'é', '\u{1F600}', '__proto__')
const value = fc.oneof(fc.string({ maxLength: 5 }), fc.integer({ min: -5, max: 5 }))

class SetCmd implements Cmd {
  constructor(readonly k: string, readonly v: string | number, readonly ttl: number) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    await r.store.set(this.k, this.v, this.ttl > 0 ? { ttl: this.ttl } : {})
    m.data.set(this.k, { value: this.v, expiresAt: this.ttl > 0 ? m.clock.now() + this.ttl : 0 })
  }
  toString = (): string => `set(${this.k}, ${JSON.stringify(this.v)}, ttl ${this.ttl})`
}

class DeleteCmd implements Cmd {
  constructor(readonly k: string) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    const existed = live(m).some(([k]) => k === this.k)
    expect(await r.store.delete(this.k)).toBe(existed)
    m.data.delete(this.k)
  }
  toString = (): string => `delete(${this.k})`
}

class ReadCmd implements Cmd {
  constructor(readonly k: string) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    const expected = live(m).find(([k]) => k === this.k)?.[1]
    expect(await r.store.get(this.k)).toEqual(expected)
    expect(await r.store.has(this.k)).toBe(expected !== undefined)
  }
  toString = (): string => `get(${this.k})`
}

class ListCmd implements Cmd {
  constructor(readonly prefix: string, readonly reverse: boolean, readonly limit: number) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    const all = live(m)
    expect(await r.store.keys(`${this.prefix}*`)).toEqual(all.filter(([k]) => k.startsWith(this.prefix)).map(([k]) => k))
    let expected = all.filter(([k]) => k.startsWith(this.prefix))
    if (this.reverse) expected = expected.reverse()
    const got: [string, string | number][] = []
    for await (const e of r.store.scan({ prefix: this.prefix, reverse: this.reverse, limit: this.limit })) got.push(e)
    expect(got).toEqual(expected.slice(0, this.limit))
    expect(await r.store.count()).toBe(all.length)
  }
  toString = (): string => `list(${this.prefix}, rev ${this.reverse}, limit ${this.limit})`
}

class BatchCmd implements Cmd {
  constructor(readonly ops: { k: string; v: string | number | null }[]) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    await r.store.batch(this.ops.map((o) => (o.v === null ? { type: 'delete' as const, key: o.k } : { type: 'set' as const, key: o.k, value: o.v })))
    for (const o of this.ops) {
      if (o.v === null) m.data.delete(o.k)
      else m.data.set(o.k, { value: o.v, expiresAt: 0 })
    }
  }
  toString = (): string => `batch(${JSON.stringify(this.ops)})`
}

class ClearCmd implements Cmd {
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    await r.store.clear()
    m.data.clear()
  }
  toString = (): string => 'clear()'
}

class IncrCmd implements Cmd {
  constructor(readonly k: string) {}
  check = (): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    const cur = live(m).find(([k]) => k === this.k)?.[1]
    const asInt = cur === undefined ? 0 : typeof cur === 'number' ? cur : /^-?(0|[1-9]\d*)$/.test(cur) ? Number(cur) : undefined
    if (asInt === undefined) {
      await expect(r.store.incr(this.k)).rejects.toMatchObject({ code: 'KV_NOT_INTEGER' })
      return
    }
    expect(await r.store.incr(this.k)).toBe(asInt + 1)
    const e = m.data.get(this.k)
    const keepExpiry = cur !== undefined && e !== undefined ? e.expiresAt : 0
    m.data.set(this.k, { value: asInt + 1, expiresAt: keepExpiry })
  }
  toString = (): string => `incr(${this.k})`
}

class AdvanceCmd implements Cmd {
  constructor(readonly ms: number) {}
  check = (): boolean => true
  async run(m: Model): Promise<void> {
    m.clock.advance(this.ms) // the real store shares the same clock
  }
  toString = (): string => `advance(${this.ms})`
}

class ReopenCmd implements Cmd {
  constructor(readonly compactFirst: boolean) {}
  check = (_m: Readonly<Model>): boolean => true
  async run(m: Model, r: Real): Promise<void> {
    if (r.dir === undefined) return
    if (this.compactFirst) await r.store.compact()
    await r.store.close()
    r.store = await Store.open<string | number>({ dir: r.dir, clock: r.clock, expirySweepIntervalMs: 0, sync: 'never' })
    expect(await r.store.count()).toBe(live(m).length)
  }
  toString = (): string => `reopen(compact ${this.compactFirst})`
}

class SnapshotLoadCmd implements Cmd {
  check = (): boolean => true
  async run(_m: Model, r: Real): Promise<void> {
    if (r.dir === undefined) return
    const path = join(r.dir, '..', `copy-${Math.random().toString(36).slice(2)}.kvs`)
    await r.store.snapshot(path)
    await r.store.load(path)
    rmSync(path, { force: true })
  }
  toString = (): string => 'snapshot+load'
}

const commands = [
  fc.tuple(key, value, fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }))).map(([k, v, t]) => new SetCmd(k, v, t)),
  key.map((k) => new DeleteCmd(k)),
  key.map((k) => new ReadCmd(k)),
  fc.tuple(fc.constantFrom('', 'a', 'b', 'b:'), fc.boolean(), fc.integer({ min: 0, max: 6 })).map(([p, rev, l]) => new ListCmd(p, rev, l)),
  fc.array(fc.record({ k: key, v: fc.option(value, { nil: null }) }), { maxLength: 4 }).map((ops) => new BatchCmd(ops)),
  fc.constant(new ClearCmd()),
  key.map((k) => new IncrCmd(k)),
  fc.integer({ min: 5, max: 40 }).map((ms) => new AdvanceCmd(ms)),
  fc.boolean().map((c) => new ReopenCmd(c)),
  fc.constant(new SnapshotLoadCmd()),
]

async function runModel(persistent: boolean, runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: 'large' }), async (cmds) => {
      const clock = new FakeClock()
      const base = persistent ? mkdtempSync(join(tmpdir(), 'kvstore-model-')) : undefined
      const dir = base === undefined ? undefined : join(base, 'db')
      const store = await Store.open<string | number>({ ...(dir === undefined ? {} : { dir, sync: 'never' as const }), clock, expirySweepIntervalMs: 0 })
      const real: Real = { store, dir, clock }
      try {
        await fc.asyncModelRun(() => ({ model: { data: new Map(), clock }, real }), cmds)
      } finally {
        await real.store.close()
        if (base !== undefined) rmSync(base, { recursive: true, force: true })
      }
    }),
    { numRuns: runs },
  )
}

describe('Store model', () => {
  it('matches a Map with sorted keys in memory', async () => {
    await runModel(false, numRuns(500))
  }, 120_000)

  it('matches a Map across reopen (WAL replay), compaction and snapshot/load', async () => {
    await runModel(true, numRuns(150))
  }, 180_000)
})

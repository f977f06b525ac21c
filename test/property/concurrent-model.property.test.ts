// Model test with calls in flight: every op is issued without awaiting the ones before it,
// and each resolved value (or error code) is checked against a model advanced at issue
// time. Writes apply in call order, so the model's answer at issue time is the only right
// one. Transactions run optimistically meanwhile; they and `incr` share one counter, whose
// results must be the distinct values 1..n (each increment linearised exactly once).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isStoreError, Store } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { MemFs } from '../helpers/mem-fs.js'
import { numRuns } from '../helpers/runs.js'

type Val = string | number
type Slot =
  | { kind: 'plain'; v: Val; exp: number }
  | { kind: 'list'; items: Val[]; exp: number }
  | { kind: 'hash'; m: Map<string, Val>; exp: number }

/** The outcome a call must settle with: a value or an error code. */
type Outcome = { ok: unknown } | { err: string }

class Model {
  readonly data = new Map<string, Slot>()
  constructor(readonly clock: FakeClock) {}

  live(k: string): Slot | undefined {
    const s = this.data.get(k)
    if (s === undefined) return undefined
    if (s.exp !== 0 && s.exp <= this.clock.now()) {
      this.data.delete(k)
      return undefined
    }
    return s
  }
  liveKeys(): string[] {
    return [...this.data.keys()].filter((k) => this.live(k) !== undefined).sort()
  }
  list(k: string, create: boolean): Slot & { kind: 'list' } {
    const s = this.live(k)
    if (s === undefined) {
      const fresh = { kind: 'list' as const, items: [] as Val[], exp: 0 }
      if (create) this.data.set(k, fresh)
      return fresh
    }
    if (s.kind !== 'list') throw new WrongType()
    return s
  }
  hash(k: string, create: boolean): Slot & { kind: 'hash' } {
    const s = this.live(k)
    if (s === undefined) {
      const fresh = { kind: 'hash' as const, m: new Map<string, Val>(), exp: 0 }
      if (create) this.data.set(k, fresh)
      return fresh
    }
    if (s.kind !== 'hash') throw new WrongType()
    return s
  }
}

class WrongType extends Error {
  code = 'KV_WRONG_TYPE'
}
class NotInteger extends Error {
  code = 'KV_NOT_INTEGER'
}

function toInteger(s: Slot | undefined): number {
  if (s === undefined) return 0
  if (s.kind !== 'plain') throw new WrongType()
  if (typeof s.v === 'number' && Number.isSafeInteger(s.v)) return s.v
  if (typeof s.v === 'string' && /^-?(0|[1-9][0-9]{0,15})$/.test(s.v)) return Number(s.v)
  throw new NotInteger()
}

/** Run `fn` on the model; a thrown model error becomes the expected error code. */
function expectFrom(fn: () => unknown): Outcome {
  try {
    return { ok: fn() }
  } catch (err) {
    return { err: (err as { code: string }).code }
  }
}

const COUNTER = 'tc'

interface Ctx {
  store: Store<Val>
  model: Model
  clock: FakeClock
  /** Results of increments of the shared counter, whatever issued them. */
  counterResults: Promise<number>[]
}

/** One call: issues it on the store and returns the promise plus the model's outcome. */
type Call = { name: string; issue: (c: Ctx) => { p: Promise<unknown>; want: Outcome | undefined } }

const key = fc.constantFrom('a', 'b', 'c', 'l', 'h')
const val: fc.Arbitrary<Val> = fc.oneof(fc.integer({ min: -3, max: 9 }), fc.constantFrom('x', '7', 'hello', ''))
const field = fc.constantFrom('f', 'g', 'h')

const calls: fc.Arbitrary<Call>[] = [
  fc.tuple(key, val, fc.constantFrom(0, 0, 50, 500)).map(([k, v, ttl]): Call => ({
    name: `set(${k}, ${JSON.stringify(v)}, ttl ${ttl})`,
    issue: ({ store, model, clock }) => ({
      p: store.set(k, v, ttl > 0 ? { ttl } : undefined),
      want: expectFrom(() => {
        model.data.set(k, { kind: 'plain', v, exp: ttl > 0 ? clock.now() + ttl : 0 })
        return true
      }),
    }),
  })),
  fc.tuple(key, val).map(([k, v]): Call => ({
    name: `setNX(${k}, ${JSON.stringify(v)})`,
    issue: ({ store, model }) => ({
      p: store.set(k, v, { ifNotExists: true }),
      want: expectFrom(() => {
        if (model.live(k) !== undefined) return false
        model.data.set(k, { kind: 'plain', v, exp: 0 })
        return true
      }),
    }),
  })),
  key.map((k): Call => ({
    name: `get(${k})`,
    issue: ({ store, model }) => ({
      p: store.get(k),
      want: expectFrom(() => {
        const s = model.live(k)
        if (s === undefined) return undefined
        if (s.kind !== 'plain') throw new WrongType()
        return s.v
      }),
    }),
  })),
  key.map((k): Call => ({
    name: `delete(${k})`,
    issue: ({ store, model }) => ({
      p: store.delete(k),
      want: expectFrom(() => model.live(k) !== undefined && model.data.delete(k)),
    }),
  })),
  key.map((k): Call => ({
    name: `has/type(${k})`,
    issue: ({ store, model }) => ({
      p: Promise.all([store.has(k), store.type(k)]),
      want: expectFrom(() => {
        const s = model.live(k)
        if (s === undefined) return [false, undefined]
        return [true, s.kind === 'plain' ? (typeof s.v === 'number' ? 'number' : 'string') : s.kind]
      }),
    }),
  })),
  fc.tuple(key, fc.integer({ min: -3, max: 3 })).map(([k, by]): Call => ({
    name: `incr(${k}, ${by})`,
    issue: ({ store, model }) => ({
      p: store.incr(k, by),
      want: expectFrom(() => {
        const s = model.live(k)
        const next = toInteger(s) + by
        model.data.set(k, { kind: 'plain', v: next, exp: s?.exp ?? 0 })
        return next
      }),
    }),
  })),
  fc.tuple(key, fc.boolean(), fc.array(val, { minLength: 1, maxLength: 3 })).map(([k, left, vs]): Call => ({
    name: `${left ? 'l' : 'r'}push(${k}, ${JSON.stringify(vs)})`,
    issue: ({ store, model }) => ({
      p: left ? store.lpush(k, ...vs) : store.rpush(k, ...vs),
      want: expectFrom(() => {
        const l = model.list(k, true)
        for (const v of vs) left ? l.items.unshift(v) : l.items.push(v)
        return l.items.length
      }),
    }),
  })),
  fc.tuple(key, fc.boolean()).map(([k, left]): Call => ({
    name: `${left ? 'l' : 'r'}pop(${k})`,
    issue: ({ store, model }) => ({
      p: left ? store.lpop(k) : store.rpop(k),
      want: expectFrom(() => {
        const l = model.list(k, false)
        const v = left ? l.items.shift() : l.items.pop()
        if (l.items.length === 0) model.data.delete(k)
        return v
      }),
    }),
  })),
  fc.tuple(key, fc.integer({ min: 0, max: 4 }), fc.boolean()).map(([k, n, left]): Call => ({
    name: `popMany(${k}, ${n}, ${left})`,
    issue: ({ store, model }) => ({
      p: store.popMany(k, n, left),
      want: expectFrom(() => {
        const l = model.list(k, false)
        if (n === 0 || model.live(k) === undefined) return []
        const out = left ? l.items.splice(0, n) : l.items.splice(Math.max(0, l.items.length - n)).reverse()
        if (l.items.length === 0) model.data.delete(k)
        return out
      }),
    }),
  })),
  key.map((k): Call => ({
    name: `lrange/llen(${k})`,
    issue: ({ store, model }) => ({
      p: Promise.all([store.lrange(k), store.llen(k)]),
      want: expectFrom(() => {
        const l = model.list(k, false)
        return [[...l.items], l.items.length]
      }),
    }),
  })),
  fc.tuple(key, fc.dictionary(field, val, { minKeys: 1, maxKeys: 2 })).map(([k, fields]): Call => ({
    name: `hset(${k}, ${JSON.stringify(fields)})`,
    issue: ({ store, model }) => ({
      p: store.hset(k, fields),
      want: expectFrom(() => {
        const h = model.hash(k, true)
        let added = 0
        for (const [f, v] of Object.entries(fields)) {
          if (!h.m.has(f)) added++
          h.m.set(f, v)
        }
        return added
      }),
    }),
  })),
  fc.tuple(key, fc.uniqueArray(field, { minLength: 1, maxLength: 3 })).map(([k, fs]): Call => ({
    name: `hdel(${k}, ${fs.join(',')})`,
    issue: ({ store, model }) => ({
      p: store.hdel(k, ...fs),
      want: expectFrom(() => {
        const h = model.hash(k, false)
        let removed = 0
        for (const f of fs) if (h.m.delete(f)) removed++
        if (h.m.size === 0) model.data.delete(k)
        return removed
      }),
    }),
  })),
  fc.tuple(key, field).map(([k, f]): Call => ({
    name: `hget/hgetall/hlen(${k}, ${f})`,
    issue: ({ store, model }) => ({
      p: Promise.all([store.hget(k, f), store.hgetall(k), store.hlen(k)]),
      want: expectFrom(() => {
        const h = model.hash(k, false)
        return [h.m.get(f), new Map(h.m), h.m.size]
      }),
    }),
  })),
  fc.tuple(key, fc.constantFrom(0, 30, 400)).map(([k, ttl]): Call => ({
    name: `expire(${k}, ${ttl})`,
    issue: ({ store, model, clock }) => ({
      p: store.expire(k, ttl),
      want: expectFrom(() => {
        const s = model.live(k)
        if (s === undefined) return false
        if (ttl === 0) model.data.delete(k)
        else s.exp = clock.now() + ttl
        return true
      }),
    }),
  })),
  key.map((k): Call => ({
    name: `persist(${k})`,
    issue: ({ store, model }) => ({
      p: store.persist(k),
      want: expectFrom(() => {
        const s = model.live(k)
        if (s === undefined || s.exp === 0) return false
        s.exp = 0
        return true
      }),
    }),
  })),
  key.map((k): Call => ({
    name: `ttl(${k})`,
    issue: ({ store, model, clock }) => ({
      p: store.ttl(k),
      want: expectFrom(() => {
        const s = model.live(k)
        return s === undefined ? -2 : s.exp === 0 ? -1 : s.exp - clock.now()
      }),
    }),
  })),
  fc.array(fc.tuple(key, fc.option(val, { nil: undefined })), { minLength: 1, maxLength: 3 }).map((ops): Call => ({
    name: `batch(${JSON.stringify(ops)})`,
    issue: ({ store, model }) => ({
      p: store.batch(ops.map(([k, v]) => (v === undefined ? { type: 'delete', key: k } : { type: 'set', key: k, value: v }))),
      want: expectFrom(() => {
        for (const [k, v] of ops) {
          if (v === undefined) model.data.delete(k)
          else model.data.set(k, { kind: 'plain', v, exp: 0 })
        }
        return undefined
      }),
    }),
  })),
  fc.constant<Call>({
    // The counter ('tc') is outside [a-l]: when a transaction creates it is not fixed at issue time.
    name: 'keys',
    issue: ({ store, model }) => ({
      p: store.keys('[a-l]*'),
      want: expectFrom(() => model.liveKeys()),
    }),
  }),
  fc.integer({ min: 1, max: 120 }).map((ms): Call => ({
    name: `tick(${ms})`,
    issue: ({ clock }) => {
      clock.advance(ms)
      return { p: Promise.resolve(), want: undefined }
    },
  })),
  // The shared counter: optimistic transactions and plain incr interleave on it.
  fc.boolean().map((viaTx): Call => ({
    name: viaTx ? 'tx increment of the counter' : 'incr of the counter',
    issue: (c) => {
      const p = viaTx
        ? c.store.transaction(
            async (tx) => {
              const v = ((await tx.get(COUNTER)) as number | undefined) ?? 0
              await Promise.resolve() // let other calls land between the read and the commit
              tx.set(COUNTER, v + 1)
              return v + 1
            },
            { retries: 1_000 },
          )
        : c.store.incr(COUNTER)
      c.counterResults.push(p)
      return { p, want: undefined }
    },
  })),
]

async function runConcurrently(store: Store<Val>, clock: FakeClock, program: Call[]): Promise<void> {
  const ctx: Ctx = { store, model: new Model(clock), clock, counterResults: [] }
  const issued = program.map((call) => ({ call, ...call.issue(ctx) }))
  const settled = await Promise.allSettled(issued.map((i) => i.p))
  settled.forEach((r, i) => {
    const { call, want } = issued[i]!
    if (want === undefined) {
      if (r.status === 'rejected') throw new Error(`${call.name} (#${i}) rejected: ${String(r.reason)}`)
      return
    }
    const got: Outcome =
      r.status === 'fulfilled'
        ? { ok: r.value }
        : isStoreError(r.reason)
          ? { err: r.reason.code }
          : { err: `not a StoreError: ${String(r.reason)}` }
    expect(got, `${call.name} (#${i} of ${program.map((c) => c.name).join('; ')})`).toEqual(want)
  })
  const counts = (await Promise.all(ctx.counterResults)).sort((a, b) => a - b)
  expect(counts).toEqual(counts.map((_, i) => i + 1))
  expect(await store.get(COUNTER)).toBe(counts.length === 0 ? undefined : counts.length)
  // The final state matches the model key by key.
  const modelKeys = ctx.model.liveKeys()
  expect((await store.keys('*')).filter((k) => k !== COUNTER)).toEqual(modelKeys)
  expect(await store.count()).toBe(modelKeys.length + (counts.length > 0 ? 1 : 0))
}

describe('store with calls in flight', () => {
  it.each([
    ['memory', false],
    ['dir on a slow-syncing in-memory Fs', true],
  ])('resolves every call with its own result (%s)', async (_name, dir) => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(...calls), { minLength: 1, maxLength: 60 }), async (program) => {
        const clock = new FakeClock()
        const fs = new MemFs()
        // Each fsync waits a macrotask, so durability promises settle well after later calls apply.
        fs.syncGate = () => new Promise((r) => setImmediate(r))
        const store = await Store.open<Val>(
          dir ? { dir: '/db', fs, clock, sync: 'always', expirySweepIntervalMs: 0 } : { clock, expirySweepIntervalMs: 0 },
        )
        try {
          await runConcurrently(store, clock, program)
        } finally {
          await store.close()
        }
      }),
      { numRuns: numRuns(150) },
    )
  })
})

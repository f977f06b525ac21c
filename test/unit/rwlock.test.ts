import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RwLock } from '../../src/rwlock.js'

const NUM_RUNS = Number.parseInt(process.env['FC_NUM_RUNS'] ?? '', 10) || 300

interface Deferred {
  readonly promise: Promise<void>
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Let every pending microtask (and the continuations they queue) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A critical section that records its start and ends when `gate` resolves. */
function section(log: string[], name: string, gate: Deferred): () => Promise<string> {
  return async () => {
    log.push(`${name}+`)
    await gate.promise
    log.push(`${name}-`)
    return name
  }
}

describe('RwLock', () => {
  it('runs a read on a free lock synchronously and releases it before returning', async () => {
    const lock = new RwLock()
    let ran = false
    const result = lock.read(() => {
      ran = true
      expect(lock.readers).toBe(1)
      return 7
    })
    expect(ran).toBe(true)
    expect(lock.idle).toBe(true)
    await expect(result).resolves.toBe(7)
  })

  it('runs a write on a free lock synchronously and releases it before returning', async () => {
    const lock = new RwLock()
    let ran = false
    const result = lock.write(() => {
      ran = true
      expect(lock.writing).toBe(true)
      return 'done'
    })
    expect(ran).toBe(true)
    expect(lock.idle).toBe(true)
    await expect(result).resolves.toBe('done')
  })

  it('runs a read synchronously while other readers hold the lock', async () => {
    const lock = new RwLock()
    const gate = deferred()
    const held = lock.read(() => gate.promise)
    let ran = false
    const inline = lock.read(() => {
      ran = true
    })
    expect(ran).toBe(true)
    expect(lock.readers).toBe(1)
    gate.resolve()
    await Promise.all([held, inline])
    expect(lock.idle).toBe(true)
  })

  it('holds the lock until an async section settles and resolves with its value', async () => {
    const lock = new RwLock()
    const gate = deferred()
    const result = lock.write(async () => {
      await gate.promise
      return 42
    })
    await settle()
    expect(lock.writing).toBe(true)
    gate.resolve()
    await expect(result).resolves.toBe(42)
    expect(lock.idle).toBe(true)
  })

  it('rejects with a synchronous throw and releases the lock', async () => {
    const lock = new RwLock()
    const boom = new Error('boom')
    const result = lock.write(() => {
      throw boom
    })
    expect(lock.idle).toBe(true)
    await expect(result).rejects.toBe(boom)
    await expect(lock.read(() => 1)).resolves.toBe(1)
  })

  it('rejects with an async rejection and releases the lock', async () => {
    const lock = new RwLock()
    const boom = new Error('boom')
    const gate = deferred()
    const failing = lock.read(async () => {
      await gate.promise
      throw boom
    })
    const next = lock.write(() => 'after')
    gate.resolve()
    await expect(failing).rejects.toBe(boom)
    await expect(next).resolves.toBe('after')
    expect(lock.idle).toBe(true)
  })

  it('releases the lock of a queued section that throws synchronously', async () => {
    const lock = new RwLock()
    const gate = deferred()
    const held = lock.write(() => gate.promise)
    const boom = new Error('boom')
    const failing = lock.write(() => {
      throw boom
    })
    const next = lock.read(() => 'read')
    gate.resolve()
    await expect(failing).rejects.toBe(boom)
    await expect(next).resolves.toBe('read')
    await held
    expect(lock.idle).toBe(true)
  })

  it('accepts a thenable that is not a native promise', async () => {
    const lock = new RwLock()
    let finish!: (value: string) => void
    const thenable: PromiseLike<string> = {
      then(onFulfilled, onRejected) {
        return new Promise<string>((resolve) => (finish = resolve)).then(onFulfilled, onRejected)
      },
    }
    const result = lock.write(() => thenable)
    await settle()
    expect(lock.writing).toBe(true)
    finish('custom')
    await expect(result).resolves.toBe('custom')
    expect(lock.idle).toBe(true)
  })

  it('lets readers share the lock', async () => {
    const lock = new RwLock()
    const log: string[] = []
    const a = deferred()
    const b = deferred()
    const r1 = lock.read(section(log, 'r1', a))
    const r2 = lock.read(section(log, 'r2', b))
    expect(log).toEqual(['r1+', 'r2+'])
    expect(lock.readers).toBe(2)
    b.resolve()
    a.resolve()
    await Promise.all([r1, r2])
    expect(log).toEqual(['r1+', 'r2+', 'r2-', 'r1-'])
  })

  it('excludes readers and writers while a writer holds the lock', async () => {
    const lock = new RwLock()
    const log: string[] = []
    const wGate = deferred()
    const rGate = deferred()
    const all = [
      lock.write(section(log, 'w', wGate)),
      lock.read(section(log, 'r', rGate)),
      lock.write(() => log.push('w2')),
    ]
    await settle()
    expect(log).toEqual(['w+'])
    expect(lock.readable).toBe(false)
    expect(lock.waiting).toBe(2)
    wGate.resolve()
    await settle()
    expect(log).toEqual(['w+', 'w-', 'r+'])
    rGate.resolve()
    await Promise.all(all)
    expect(log).toEqual(['w+', 'w-', 'r+', 'r-', 'w2'])
  })

  it('queues a reader behind a waiting writer', async () => {
    const lock = new RwLock()
    const log: string[] = []
    const r1Gate = deferred()
    const wGate = deferred()
    const r1 = lock.read(section(log, 'r1', r1Gate))
    const w = lock.write(section(log, 'w', wGate))
    expect(lock.readable).toBe(false)
    const r2 = lock.read(() => log.push('r2'))
    await settle()
    expect(log).toEqual(['r1+'])
    r1Gate.resolve()
    await r1
    await settle()
    expect(log).toEqual(['r1+', 'r1-', 'w+'])
    wGate.resolve()
    await Promise.all([w, r2])
    expect(log).toEqual(['r1+', 'r1-', 'w+', 'w-', 'r2'])
  })

  it('grants waiters in arrival order, a run of readers together', async () => {
    const lock = new RwLock()
    const log: string[] = []
    const gates = { w1: deferred(), r1: deferred(), r2: deferred(), w2: deferred(), r3: deferred() }
    const all = [
      lock.write(section(log, 'w1', gates.w1)),
      lock.read(section(log, 'r1', gates.r1)),
      lock.read(section(log, 'r2', gates.r2)),
      lock.write(section(log, 'w2', gates.w2)),
      lock.read(section(log, 'r3', gates.r3)),
    ]
    expect(lock.waiting).toBe(4)
    gates.w1.resolve()
    await settle()
    expect(log).toEqual(['w1+', 'w1-', 'r1+', 'r2+'])
    expect(lock.readers).toBe(2)
    expect(lock.waiting).toBe(2)
    gates.r2.resolve()
    await settle()
    expect(log).toEqual(['w1+', 'w1-', 'r1+', 'r2+', 'r2-'])
    gates.r1.resolve()
    await settle()
    expect(log.slice(5)).toEqual(['r1-', 'w2+'])
    gates.w2.resolve()
    gates.r3.resolve()
    await Promise.all(all)
    expect(log.slice(7)).toEqual(['w2-', 'r3+', 'r3-'])
    expect(lock.idle).toBe(true)
  })

  it('reports readers, writing, waiting, idle and readable', async () => {
    const lock = new RwLock()
    expect([lock.readers, lock.writing, lock.waiting, lock.idle, lock.readable]).toEqual([0, false, 0, true, true])
    const gate = deferred()
    const r = lock.read(() => gate.promise)
    expect([lock.readers, lock.writing, lock.waiting, lock.idle, lock.readable]).toEqual([1, false, 0, false, true])
    const wGate = deferred()
    const w = lock.write(() => wGate.promise)
    expect([lock.readers, lock.writing, lock.waiting, lock.idle, lock.readable]).toEqual([1, false, 1, false, false])
    gate.resolve()
    await r
    expect([lock.readers, lock.writing, lock.waiting, lock.idle, lock.readable]).toEqual([0, true, 0, false, false])
    wGate.resolve()
    await w
    expect([lock.readers, lock.writing, lock.waiting, lock.idle, lock.readable]).toEqual([0, false, 0, true, true])
  })

  it('acquireWrite waits for readers and keeps later readers out until released', async () => {
    const lock = new RwLock()
    const releaseRead = await lock.acquireRead()
    let granted = false
    const writer = lock.acquireWrite().then((release) => {
      granted = true
      return release
    })
    await settle()
    expect(granted).toBe(false)
    releaseRead()
    const releaseWrite = await writer
    expect(lock.writing).toBe(true)
    let read = false
    const reader = lock.read(() => (read = true))
    await settle()
    expect(read).toBe(false)
    releaseWrite()
    await reader
    expect(read).toBe(true)
    expect(lock.idle).toBe(true)
  })

  it('ignores a second call of a release function', async () => {
    const lock = new RwLock()
    const releaseA = await lock.acquireRead()
    const releaseB = await lock.acquireRead()
    releaseA()
    releaseA()
    expect(lock.readers).toBe(1)
    let wrote = false
    const writer = lock.write(() => (wrote = true))
    await settle()
    expect(wrote).toBe(false)
    releaseB()
    await writer
    expect(wrote).toBe(true)
    const releaseW = await lock.acquireWrite()
    releaseW()
    releaseW()
    expect(lock.idle).toBe(true)
  })

  it('drains a long queue in order without deep recursion', async () => {
    const lock = new RwLock()
    const gate = deferred()
    const holder = lock.write(() => gate.promise)
    const order: number[] = []
    const pending: Promise<unknown>[] = []
    let next = 0
    const enqueue = (): void => {
      const id = next++
      const run = (): void => {
        order.push(id)
        // Arrivals during the drain land behind the compaction point of the queue.
        if (id % 3 === 0 && next < 30_000) enqueue()
      }
      pending.push(id % 7 === 0 ? lock.read(run) : lock.write(run))
    }
    for (let i = 0; i < 20_000; i++) enqueue()
    gate.resolve()
    await holder
    while (order.length < next) await Promise.all(pending.slice(order.length))
    expect(order).toEqual(Array.from({ length: next }, (_, i) => i))
    expect(lock.idle).toBe(true)
  })
})

type Failure = 'none' | 'sync' | 'async'

interface OpSpec {
  readonly write: boolean
  /** 'fn' uses read/write(fn); 'acquire' uses acquireRead/acquireWrite and releases twice. */
  readonly mode: 'fn' | 'acquire'
  /** Scheduled awaits inside the critical section; 0 makes the section synchronous. */
  readonly steps: number
  readonly failure: Failure
  /** Arrive synchronously at the start instead of at a scheduled moment. */
  readonly immediate: boolean
}

interface OpRecord {
  arrive: number
  start: number
  end: number
  outcome: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined
}

const opSpec: fc.Arbitrary<OpSpec> = fc.record({
  write: fc.boolean(),
  mode: fc.constantFrom('fn' as const, 'acquire' as const),
  steps: fc.integer({ min: 0, max: 3 }),
  failure: fc.constantFrom<Failure>('none', 'none', 'sync', 'async'),
  immediate: fc.boolean(),
})

/** Run `specs` against one lock under the scheduler `s`; returns the records and any invariant breaches. */
async function runScenario(
  s: fc.Scheduler,
  specs: readonly OpSpec[],
  flushBetweenSteps: boolean,
): Promise<{ lock: RwLock; records: OpRecord[]; errors: Error[]; breaches: string[] }> {
  const lock = new RwLock()
  const records: OpRecord[] = specs.map(() => ({ arrive: -1, start: -1, end: -1, outcome: undefined }))
  const errors = specs.map((_, i) => new Error(`op ${i} failed`))
  const breaches: string[] = []
  let clock = 0
  let activeReaders = 0
  let activeWriters = 0

  const enter = (i: number): void => {
    const spec = specs[i]!
    records[i]!.start = ++clock
    if (spec.write) {
      if (activeReaders !== 0 || activeWriters !== 0) breaches.push(`writer ${i} entered beside others`)
      if (!lock.writing || lock.readers !== 0) breaches.push(`writer ${i} entered without the lock`)
      activeWriters++
    } else {
      if (activeWriters !== 0) breaches.push(`reader ${i} entered beside a writer`)
      if (lock.writing || lock.readers === 0) breaches.push(`reader ${i} entered without the lock`)
      activeReaders++
    }
  }
  const leave = (i: number): void => {
    records[i]!.end = ++clock
    if (specs[i]!.write) activeWriters--
    else activeReaders--
  }
  const body = (i: number) => (): number | Promise<number> => {
    const spec = specs[i]!
    enter(i)
    if (spec.steps === 0) {
      try {
        if (spec.failure !== 'none') throw errors[i]!
        return i
      } finally {
        leave(i)
      }
    }
    return (async () => {
      try {
        if (spec.failure === 'sync') throw errors[i]!
        for (let k = 0; k < spec.steps; k++) await s.schedule(Promise.resolve(), `op ${i} step ${k}`)
        if (spec.failure === 'async') throw errors[i]!
        return i
      } finally {
        leave(i)
      }
    })()
  }
  const begin = (i: number): void => {
    const spec = specs[i]!
    records[i]!.arrive = ++clock
    let result: Promise<number>
    if (spec.mode === 'fn') {
      result = spec.write ? lock.write(body(i)) : lock.read(body(i))
    } else {
      result = (async () => {
        const release = await (spec.write ? lock.acquireWrite() : lock.acquireRead())
        try {
          return await body(i)()
        } finally {
          release()
          release()
        }
      })()
    }
    result.then(
      (value) => (records[i]!.outcome = { ok: true, value }),
      (error: unknown) => (records[i]!.outcome = { ok: false, error }),
    )
  }

  specs.forEach((spec, i) => {
    if (spec.immediate) begin(i)
    else void s.schedule(Promise.resolve(), `arrive ${i}`).then(() => begin(i))
  })
  if (flushBetweenSteps) {
    // Each scheduled step runs to quiescence, as I/O callbacks do in a real process.
    await settle()
    while (s.count() > 0) {
      await s.waitOne()
      await settle()
    }
  } else {
    // Steps may fire while earlier continuations are still queued as microtasks.
    do {
      await s.waitAll()
      await settle()
    } while (s.count() > 0)
  }
  return { lock, records, errors, breaches }
}

describe('RwLock under random interleavings', () => {
  const scenario = fc.array(opSpec, { minLength: 1, maxLength: 10 })

  it('keeps writers exclusive, grants FIFO, shares reads, completes every acquisition and survives errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), scenario, fc.boolean(), async (s, specs, flush) => {
        const { lock, records, errors, breaches } = await runScenario(s, specs, flush)
        expect(breaches).toEqual([])

        // No starvation: everything settled, with the section's own value or error.
        records.forEach((rec, i) => {
          const spec = specs[i]!
          expect(rec.outcome, `op ${i} never settled`).toBeDefined()
          if (spec.failure === 'none') expect(rec.outcome).toEqual({ ok: true, value: i })
          else expect(rec.outcome?.ok === false && rec.outcome.error).toBe(errors[i])
        })
        expect([lock.idle, lock.readers, lock.writing, lock.waiting]).toEqual([true, 0, false, 0])

        // FIFO around writers: everything that arrived earlier has finished before a
        // writer starts, and everything that arrives later starts after it ends.
        records.forEach((w, wi) => {
          if (!specs[wi]!.write) return
          records.forEach((x, xi) => {
            if (xi === wi) return
            if (x.arrive < w.arrive) expect(x.end, `op ${xi} before writer ${wi}`).toBeLessThan(w.start)
            else expect(x.start, `op ${xi} after writer ${wi}`).toBeGreaterThan(w.end)
          })
        })

        // Readers share: a reader that arrives while an earlier reader still runs, with no
        // writer arriving between them, starts before that reader ends.
        records.forEach((a, ai) => {
          const sa = specs[ai]!
          if (sa.write || sa.steps === 0 || sa.failure === 'sync') return
          records.forEach((b, bi) => {
            const sb = specs[bi]!
            if (sb.write || sb.mode !== 'fn' || b.arrive < a.arrive || bi === ai) return
            const writerBetween = records.some((w, wi) => specs[wi]!.write && w.arrive > a.arrive && w.arrive < b.arrive)
            if (writerBetween || a.end < b.arrive) return
            expect(b.start, `reader ${bi} should overlap reader ${ai}`).toBeLessThan(a.end)
          })
        })
      }),
      { numRuns: NUM_RUNS },
    )
  })

  it('lets a writer queued before later readers in first', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 5 }), async (s, readers) => {
        const specs: OpSpec[] = [
          { write: false, mode: 'fn', steps: 2, failure: 'none', immediate: true },
          { write: true, mode: 'fn', steps: 1, failure: 'none', immediate: true },
          ...Array.from({ length: readers }, () => ({
            write: false,
            mode: 'fn' as const,
            steps: 1,
            failure: 'none' as const,
            immediate: false,
          })),
        ]
        const { records, breaches } = await runScenario(s, specs, true)
        expect(breaches).toEqual([])
        for (const later of records.slice(2)) expect(later.start).toBeGreaterThan(records[1]!.end)
      }),
      { numRuns: Math.min(NUM_RUNS, 100) },
    )
  })
})

// Serializability of optimistic transactions under adversarial interleavings.
//
// fast-check's scheduler decides when each transaction starts, when each of its reads
// resolves and when interleaved plain writes run. Every transaction logs what it read
// under its own key, so the change feed (one contiguous run of changes per commit, in
// commit order) is a complete history. The test replays that history serially against
// a model: every committed transaction must have read exactly the model state at its
// commit point and written exactly what its logic derives from those reads, and the
// final store must equal the model. Invariants (counter, total balance, no negative
// balance) are checked on top.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Store, type Change, type ChangeFeed, type Transaction } from '../../src/index.js'
import { numRuns } from '../helpers/runs.js'

type Job =
  | { kind: 'incr' }
  | { kind: 'transfer'; from: number; to: number; amount: number }
  | { kind: 'audit' }
  | { kind: 'plainIncr' }
  | { kind: 'plainOpen' }

const ACCOUNTS = 4
const START_BALANCE = 50
const acct = (i: number): string => `acct:${i}`

const jobArb: fc.Arbitrary<Job> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Job>({ kind: 'incr' }) },
  {
    weight: 4,
    arbitrary: fc
      .record({ from: fc.nat(ACCOUNTS - 1), to: fc.nat(ACCOUNTS - 1), amount: fc.integer({ min: 1, max: 60 }) })
      .map((r): Job => ({ kind: 'transfer', ...r })),
  },
  { weight: 2, arbitrary: fc.constant<Job>({ kind: 'audit' }) },
  { weight: 2, arbitrary: fc.constant<Job>({ kind: 'plainIncr' }) },
  { weight: 1, arbitrary: fc.constant<Job>({ kind: 'plainOpen' }) },
)

type Model = Map<string, unknown>

/** What a transaction job writes (besides its log) given what it read. Shared by the transactions and the replay. */
function plan(job: Job, reads: unknown[]): [string, unknown][] {
  switch (job.kind) {
    case 'incr':
      return [['counter', ((reads[0] as number | null) ?? 0) + 1]]
    case 'transfer': {
      const a = (reads[0] as number | null) ?? 0
      const b = (reads[1] as number | null) ?? 0
      // The transaction checks the balance itself: no transfer that would go negative.
      if (job.from === job.to || a < job.amount) return []
      return [
        [acct(job.from), a - job.amount],
        [acct(job.to), b + job.amount],
      ]
    }
    default:
      return []
  }
}

/** What a transaction job reads, computed from the model (serial execution). */
function modelReads(job: Job, model: Model): unknown[] {
  switch (job.kind) {
    case 'incr':
      return [model.get('counter') ?? null]
    case 'transfer':
      return [model.get(acct(job.from)) ?? null, model.get(acct(job.to)) ?? null]
    case 'audit':
      return [...model.entries()].filter(([k]) => k.startsWith('acct:')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    default:
      return []
  }
}

async function drain(feed: ChangeFeed): Promise<Change[]> {
  const out: Change[] = []
  while (feed.pending > 0) {
    const r = await feed.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

describe('transactions under any interleaving', () => {
  it('commit a history equal to running them one at a time in commit order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(jobArb, { minLength: 1, maxLength: 10 }), async (sch, jobs) => {
        const s = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
        const initial: Model = new Map<string, unknown>([['counter', 0]])
        for (let i = 0; i < ACCOUNTS; i++) initial.set(acct(i), START_BALANCE)
        await s.batch([...initial].map(([key, value]) => ({ type: 'set' as const, key, value })))
        const feed = s.watch({ highWaterMark: 1_000_000 })

        const body = async (id: number, job: Job, tx: Transaction<unknown>): Promise<unknown[]> => {
          let reads: unknown[]
          switch (job.kind) {
            case 'incr':
              reads = [(await sch.schedule(tx.get('counter'), `tx${id} get counter`)) ?? null]
              break
            case 'transfer': {
              const a = (await sch.schedule(tx.get(acct(job.from)), `tx${id} get ${acct(job.from)}`)) ?? null
              const b = (await sch.schedule(tx.get(acct(job.to)), `tx${id} get ${acct(job.to)}`)) ?? null
              reads = [a, b]
              break
            }
            default: {
              const entries: [string, unknown][] = []
              for await (const e of tx.scan({ prefix: 'acct:' })) entries.push(e)
              reads = await sch.schedule(Promise.resolve(entries), `tx${id} scan acct:`)
            }
          }
          for (const [k, v] of plan(job, reads)) tx.set(k, v)
          tx.set(`log:${id}`, reads)
          return reads
        }

        let opened = 0
        const running = jobs.map((job, id) => {
          const start = sch.schedule(Promise.resolve(), `start ${id} ${job.kind}`)
          if (job.kind === 'plainIncr') return start.then(() => s.incr('counter'))
          if (job.kind === 'plainOpen') return start.then(() => s.set(`acct:z${opened++}`, 0))
          return start.then(() => s.transaction((tx) => body(id, job, tx), { retries: 1000 }))
        })
        const results = await sch.waitFor(Promise.all(running))

        // Serial replay of the history, one commit (one version) at a time.
        const changes = await drain(feed)
        const model: Model = new Map(initial)
        const committed = new Set<number>()
        let lastVersion = 1 // the setup batch; the feed opened after it
        for (let i = 0; i < changes.length; ) {
          const version = (changes[i] as Change).version
          expect(version).toBeGreaterThan(lastVersion)
          lastVersion = version
          let j = i
          while (j < changes.length && (changes[j] as Change).version === version) j++
          const group = changes.slice(i, j)
          i = j
          const written = new Map<string, unknown>()
          for (const c of group) {
            expect(c.type).toBe('set')
            if (c.type === 'set') written.set(c.key, c.value)
          }
          const logKey = [...written.keys()].find((k) => k.startsWith('log:'))
          if (logKey !== undefined) {
            const id = Number(logKey.slice(4))
            const job = jobs[id] as Job
            expect(committed.has(id)).toBe(false)
            committed.add(id)
            const reads = modelReads(job, model)
            expect(written.get(logKey)).toEqual(reads)
            expect(results[id]).toEqual(reads)
            expect(new Map(written)).toEqual(new Map([...plan(job, reads), [logKey, reads]]))
          } else {
            // A plain write: an increment of the counter or a new empty account.
            expect(written.size).toBe(1)
            const [[key, value]] = [...written] as [[string, unknown]]
            if (key === 'counter') expect(value).toBe(((model.get('counter') as number | undefined) ?? 0) + 1)
            else expect([key.startsWith('acct:z'), value]).toEqual([true, 0])
          }
          for (const [k, v] of written) model.set(k, v)
        }

        const txCount = jobs.filter((j) => j.kind === 'incr' || j.kind === 'transfer' || j.kind === 'audit').length
        expect(committed.size).toBe(txCount)
        const stored = new Map<string, unknown>()
        for (const k of await s.keys()) stored.set(k, await s.get(k))
        expect(stored).toEqual(model)

        // Invariants on top of the replay.
        const increments = jobs.filter((j) => j.kind === 'incr' || j.kind === 'plainIncr').length
        expect(await s.get('counter')).toBe(increments)
        let total = 0
        for await (const [k, v] of s.scan({ prefix: 'acct:' })) {
          expect(v as number, k).toBeGreaterThanOrEqual(0)
          total += v as number
        }
        expect(total).toBe(ACCOUNTS * START_BALANCE)
        // Every audit saw the full total: no transfer was half-visible to it.
        jobs.forEach((job, id) => {
          if (job.kind !== 'audit') return
          const seen = results[id] as [string, number][]
          expect(seen.reduce((sum, [, v]) => sum + v, 0)).toBe(ACCOUNTS * START_BALANCE)
        })
        await s.close()
      }),
      { numRuns: numRuns(100) },
    )
  })

  it('N concurrent read-modify-write increments always end at N', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 12 }), async (sch, n) => {
        const s = await Store.open<number>({ expirySweepIntervalMs: 0 })
        let runs = 0
        const jobs = Array.from({ length: n }, (_, i) =>
          s.transaction(
            async (tx) => {
              runs++
              const v = (await sch.schedule(tx.get('c'), `read ${i}`)) ?? 0
              await sch.schedule(Promise.resolve(), `think ${i}`)
              tx.set('c', v + 1)
              return v
            },
            { retries: 1000 },
          ),
        )
        const seen = await sch.waitFor(Promise.all(jobs))
        expect(await s.get('c')).toBe(n)
        // Serial: the committed reads are exactly 0..n-1, each once.
        expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
        expect(runs).toBeGreaterThanOrEqual(n)
        await s.close()
      }),
      { numRuns: numRuns(100) },
    )
  })
})

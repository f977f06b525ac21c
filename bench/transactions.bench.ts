// Transactions: uncontended commits, a contended counter, atomic check-and-set.
import { Store } from '../src/index.js'
import { measure, timeOnce, type BenchContext, type Row } from './lib/harness.js'

const G = 'transactions'

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const s = await Store.open<number>({ expirySweepIntervalMs: 0 })
  for (let i = 0; i < 10_000; i++) await s.set(`acct:${i}`, 100)
  let i = 0
  rows.push(await measure(ctx, G, 'transaction: read 2 keys, write 2 keys', 'kvstore (memory)', 100, async () => {
    for (let k = 0; k < 100; k++) {
      const a = `acct:${i++ % 10_000}`
      const b = `acct:${(i * 7) % 10_000}`
      await s.transaction(async (tx) => {
        const x = (await tx.get(a)) ?? 0
        const y = (await tx.get(b)) ?? 0
        tx.set(a, x - 1)
        tx.set(b, y + 1)
      })
    }
  }))

  // 100 concurrent transactions incrementing one counter.
  await s.set('counter', 0)
  const rounds = ctx.quick ? 2 : 10
  let calls = 0
  const ms = await timeOnce(async () => {
    for (let r = 0; r < rounds; r++) {
      await Promise.all(
        Array.from({ length: 100 }, () =>
          s.transaction(
            async (tx) => {
              calls++
              const n = (await tx.get('counter')) ?? 0
              await Promise.resolve()
              tx.set('counter', n + 1)
            },
            { retries: 1000 },
          ),
        ),
      )
    }
  })
  const commits = rounds * 100
  if ((await s.get('counter')) !== commits) throw new Error('contended counter lost increments')
  rows.push({ group: G, workload: 'contended counter, 100 concurrent transactions', engine: 'kvstore (memory)', opsPerSec: commits / (ms / 1000), note: `${(calls / commits).toFixed(1)} callback runs per commit (retries)` })
  ctx.log(`  ${G} | contended: ${(commits / (ms / 1000)).toFixed(0)} commits/s, ${(calls / commits).toFixed(1)} runs/commit`)

  rows.push(await measure(ctx, G, 'atomic check-and-set', 'kvstore (memory)', 100, async () => {
    for (let k = 0; k < 100; k++) {
      const key = `acct:${i++ % 10_000}`
      const e = await s.getEntry(key)
      await s.atomic().check(key, e?.version ?? null).set(key, (e?.value ?? 0) + 1).commit()
    }
  }))
  await s.close()
  return rows
}

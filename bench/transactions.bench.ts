// Transactions: uncontended commits, a contended counter, atomic check-and-set.
import { Store } from '../src/index.js'
import { Rows, timeOnce, type BenchContext, type Row } from './lib/context.js'
import { measure } from './lib/tinybench.js'

const G = 'transactions'
const KV = 'kvstore (memory)'
const ACCOUNTS = 10_000

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const s = await Store.open<number>({ expirySweepIntervalMs: 0 })
  await s.batch(Array.from({ length: ACCOUNTS }, (_, i) => ({ type: 'set' as const, key: `acct:${i}`, value: 100 })))
  let i = 0
  rows.add(await measure(ctx, G, 'transaction: read 2 keys, write 2 keys', KV, 100, async () => {
    for (let k = 0; k < 100; k++) {
      const a = `acct:${i++ % ACCOUNTS}`
      const b = `acct:${(i * 7 + 1) % ACCOUNTS}`
      await s.transaction(async (tx) => {
        const x = (await tx.get(a)) ?? 0
        const y = (await tx.get(b)) ?? 0
        tx.set(a, x - 1)
        tx.set(b, y + 1)
      })
    }
  }, { note: `commits/s, uncontended, ${ACCOUNTS.toLocaleString('en')} accounts` }))

  // 100 concurrent transactions incrementing one counter, in rounds.
  const wl = 'contended counter, 100 concurrent transactions'
  if (ctx.wants(G, wl, KV)) {
    await s.set('counter', 0)
    const rounds = ctx.quick ? 2 : 20
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
    rows.add({ group: G, workload: wl, engine: KV, opsPerSec: commits / (ms / 1000), note: `commits/s; ${(calls / commits).toFixed(1)} callback runs per commit (${(((calls - commits) / calls) * 100).toFixed(0)}% of runs retried after a conflict)` })
    ctx.log(`  ${G} | ${wl}: ${(commits / (ms / 1000)).toFixed(0)} commits/s, ${(calls / commits).toFixed(1)} runs per commit`)
  }

  rows.add(await measure(ctx, G, 'atomic check-and-set', KV, 100, async () => {
    for (let k = 0; k < 100; k++) {
      const key = `acct:${i++ % ACCOUNTS}`
      const e = await s.getEntry(key)
      await s.atomic().check(key, e?.version ?? null).set(key, (e?.value ?? 0) + 1).commit()
    }
  }, { note: 'getEntry + atomic().check(version).set().commit()' }))
  await s.close()
  return rows.list
}

// EtcdStore against a real 3-member cluster losing its leader, and against a stopped
// cluster: no acknowledged write lost, none applied twice, and no call that hangs.
import { describe, expect, it } from 'vitest'
import { EtcdStore } from '../../src/etcd/index.js'
import { StoreError, type Change } from '../../src/index.js'
import { codeOf } from '../helpers/codes.js'
import { withEtcdCluster } from '../helpers/etcd-cluster.js'

const WRITERS = 1000
const ROUNDS = 2
const COUNTERS = 10

describe('EtcdStore failover', () => {
  it('the leader is SIGKILLed mid-run and restarted: every resolved write is there once, writes resume within 5 s, the watch and scan in flight stay correct', async () => {
    await withEtcdCluster(async (cluster) => {
      const store = await EtcdStore.open<number>({ endpoints: cluster.endpoints, namespace: 'failover/', timeoutMs: 15_000 })
      try {
        // Something to scan while the leader dies: a point-in-time view of 300 keys.
        for (let i = 0; i < 300; i += 100) {
          await store.batch(Array.from({ length: 100 }, (_, j) => ({ type: 'set' as const, key: `scan:${String(i + j).padStart(3, '0')}`, value: i + j })))
        }
        const feed = store.watch({ prefix: 'k:' })
        const scan = store.scan({ prefix: 'scan:' })
        const scanned: [string, number][] = []
        const first = await scan.next()
        if (!first.done) scanned.push(first.value)

        const resolvedSets: string[] = []
        const incrs = new Array<number>(COUNTERS).fill(0)
        const failures: unknown[] = []
        let killedAt = 0
        const worker = async (i: number): Promise<void> => {
          for (let round = 0; round < ROUNDS; round++) {
            try {
              await store.set(`k:${i}:${round}`, round)
              resolvedSets.push(`k:${i}:${round}`)
            } catch (err) {
              failures.push(err)
            }
            try {
              await store.incr(`c:${i % COUNTERS}`)
              incrs[i % COUNTERS] = (incrs[i % COUNTERS] as number) + 1
            } catch (err) {
              failures.push(err)
            }
          }
        }
        const run = Promise.all(Array.from({ length: WRITERS }, (_, i) => worker(i)))
        // Mid-run: once some writes went through, kill the leader without warning.
        while (resolvedSets.length < WRITERS / 2) await new Promise((r) => setTimeout(r, 5))
        const leader = await cluster.leader()
        killedAt = Date.now()
        await leader.kill('SIGKILL')
        // A new write goes through within 5 s of the kill.
        await store.set('probe', 1)
        const resumedMs = Date.now() - killedAt
        expect(resumedMs).toBeLessThan(5000)
        // The scan in flight continues across the election (its pages are pinned to one revision).
        for (;;) {
          const r = await scan.next().catch((err: unknown) => err)
          if (r instanceof Error) {
            expect(r).toBeInstanceOf(StoreError)
            break
          }
          if ((r as IteratorResult<[string, number]>).done) {
            expect(scanned.map(([k]) => k)).toEqual(Array.from({ length: 300 }, (_, i) => `scan:${String(i).padStart(3, '0')}`))
            break
          }
          scanned.push((r as IteratorResult<[string, number]>).value as [string, number])
        }
        await leader.restart()
        await run

        // With a 15 s timeout nothing failed: the election takes about a second.
        expect(failures).toEqual([])
        // Every resolved write is present; counters count each resolved incr exactly once.
        const reader = await EtcdStore.open<number>({ endpoints: cluster.endpoints, namespace: 'failover/' })
        try {
          const keys = new Set(await reader.keys('k:*'))
          expect(resolvedSets.filter((k) => !keys.has(k))).toEqual([])
          expect(keys.size).toBe(resolvedSets.length)
          for (let c = 0; c < COUNTERS; c++) expect([c, await reader.get(`c:${c}`)]).toEqual([c, incrs[c]])
        } finally {
          await reader.close()
        }
        // The watch saw every set, each once, in revision order (it resumed on another member).
        const seen: Change[] = []
        while (seen.length < resolvedSets.length) {
          const r = await Promise.race([feed.next(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))])
          if (r === 'timeout' || r.done) break
          seen.push(r.value)
        }
        const setKeys = seen.filter((c) => c.type === 'set').map((c) => c.key)
        expect(new Set(setKeys).size).toBe(setKeys.length)
        expect(setKeys.sort()).toEqual([...resolvedSets].sort())
        const versions = seen.map((c) => c.version)
        expect(versions).toEqual([...versions].sort((a, b) => a - b))
        feed.close()
      } finally {
        await store.close()
      }
    })
  }, 120_000)

  it('a stopped cluster: open, reads and writes fail with KV_UNAVAILABLE within the timeout, never hang', async () => {
    await withEtcdCluster(async (cluster) => {
      const store = await EtcdStore.open({ endpoints: cluster.endpoints, namespace: 'down/', timeoutMs: 1000 })
      try {
        await store.set('a', 1)
        for (const m of cluster.members) await m.kill('SIGKILL')
        for (const call of [() => store.get('a'), () => store.set('b', 2), () => store.incr('n'), () => store.count(), () => store.keys()]) {
          const started = Date.now()
          expect(await codeOf(call())).toBe('KV_UNAVAILABLE')
          expect(Date.now() - started).toBeLessThan(3000)
        }
        const started = Date.now()
        expect(await codeOf(EtcdStore.open({ endpoints: cluster.endpoints, timeoutMs: 1000 }))).toBe('KV_UNAVAILABLE')
        expect(Date.now() - started).toBeLessThan(3000)
      } finally {
        await store.close()
      }
    }, { members: 1 })
  }, 60_000)

  it('a cluster that hangs (every member SIGSTOPped, as in a partition): calls fail with KV_UNAVAILABLE within the timeout, and work again after', async () => {
    await withEtcdCluster(async (cluster) => {
      const store = await EtcdStore.open({ endpoints: cluster.endpoints, namespace: 'hang/', timeoutMs: 1500 })
      const pids = cluster.members.map((m) => m.pid as number)
      try {
        await store.set('a', 1)
        for (const pid of pids) process.kill(pid, 'SIGSTOP')
        try {
          for (const call of [() => store.get('a'), () => store.set('b', 2), () => store.hset('h', { f: 1 })]) {
            const started = Date.now()
            expect(await codeOf(call())).toBe('KV_UNAVAILABLE')
            expect(Date.now() - started).toBeLessThan(4000)
          }
        } finally {
          for (const pid of pids) process.kill(pid, 'SIGCONT')
        }
        // The write that timed out may or may not have applied; the store works again.
        expect(await store.set('c', 3)).toBe(true)
        expect(await store.get('a')).toBe(1)
      } finally {
        await store.close()
      }
    })
  }, 60_000)

  it('a member that is not reachable is skipped: reads and writes go to the others', async () => {
    await withEtcdCluster(async (cluster) => {
      // The first endpoint points at nothing (a port no one listens on).
      const endpoints = ['http://127.0.0.1:9', ...cluster.endpoints]
      const store = await EtcdStore.open({ endpoints, namespace: 'skip/', timeoutMs: 5000 })
      try {
        expect(await store.set('a', 1)).toBe(true)
        expect(await store.get('a')).toBe(1)
      } finally {
        await store.close()
      }
    })
  }, 60_000)
})

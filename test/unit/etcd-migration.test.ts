// Moving data between a directory store and etcd with kvstore's snapshot files, both ways.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EtcdStore } from '../../src/etcd/index.js'
import { Store, type KeyValueStore } from '../../src/index.js'
import { withEtcdCluster } from '../helpers/etcd-cluster.js'

const KEYS = 100_000
const LISTS = 300
const HASHES = 300
const WITH_TTL = 10_000

/** `a` and `b` hold the same keys, types and contents, and expiries within 1 s of each other. */
function expectSame(a: unknown[], b: unknown[]): void {
  expect(a.length).toBe(b.length)
  const strip = (e: unknown[]): unknown[] => e.map((x) => (x as unknown[]).slice(0, 3))
  expect(strip(a)).toEqual(strip(b))
  const far = a.filter((x, i) => {
    const ea = (x as number[])[3] as number
    const eb = (b[i] as number[])[3] as number
    return ea < 0 || eb < 0 ? ea !== eb : Math.abs(ea - eb) > 1000
  })
  expect(far).toEqual([])
}

/** Every key with its type, contents and absolute expiry in ms (-1: none). */
async function contents(s: KeyValueStore<unknown>): Promise<unknown[]> {
  const out: unknown[] = []
  for (const key of await s.keys()) {
    const type = await s.type(key)
    const ttl = await s.ttl(key)
    const expiry = ttl < 0 ? ttl : Date.now() + ttl
    if (type === 'list') out.push([key, type, await s.lrange(key), expiry])
    else if (type === 'hash') out.push([key, type, [...(await s.hgetall(key))].sort(), expiry])
    else out.push([key, type, await s.get(key), expiry])
  }
  return out
}

describe('migration between Store and EtcdStore', () => {
  it('a 100,000-key directory store with TTLs, lists and hashes copied to etcd and back is identical', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kvstore-migrate-'))
    try {
      await withEtcdCluster(async (cluster) => {
        const src = await Store.open({ dir: join(tmp, 'src'), sync: 'never' })
        const hour = 3_600_000
        const ops = Array.from({ length: KEYS - LISTS - HASHES }, (_, i) => ({
          type: 'set' as const,
          key: `k:${String(i).padStart(6, '0')}`,
          value: i % 3 === 0 ? i : i % 3 === 1 ? `v${i}` : { i, tags: ['a', 'b'] },
          ...(i < WITH_TTL ? { ttl: hour + i } : {}),
        }))
        for (let i = 0; i < ops.length; i += 5000) await src.batch(ops.slice(i, i + 5000))
        for (let i = 0; i < LISTS; i++) await src.rpush(`l:${i}`, 'a', i, { n: i })
        for (let i = 0; i < HASHES; i++) await src.hset(`h:${i}`, { f: i, g: `x${i}` })
        await src.expire('l:0', hour)
        await src.expire('h:0', hour)
        expect(await src.count()).toBe(KEYS)
        const before = await contents(src)

        const etcd = await EtcdStore.open({ endpoints: cluster.endpoints, namespace: 'migrate/', timeoutMs: 30_000 })
        try {
          await src.snapshot(join(tmp, 'out.kvs'))
          const loaded = await etcd.load(join(tmp, 'out.kvs'))
          expect(loaded.entries).toBe(KEYS)
          expect(await etcd.count()).toBe(KEYS)
          // Reading 100,000 keys one request at a time takes minutes: spot-check some keys
          // directly, and check the whole contents through the copy back below.
          const sample = before.filter((_, i) => i % 997 === 0 || i < 5 || i >= before.length - 5)
          const got: unknown[] = []
          for (const [key] of sample as [string][]) got.push(...(await contents({ keys: async () => [key], type: (k: string) => etcd.type(k), ttl: (k: string) => etcd.ttl(k), lrange: (k: string) => etcd.lrange(k), hgetall: (k: string) => etcd.hgetall(k), get: (k: string) => etcd.get(k) } as unknown as KeyValueStore<unknown>)))
          expectSame(got, sample)

          const back = await etcd.snapshot(join(tmp, 'back.json'))
          expect(back.entries).toBe(KEYS)
          const dst = await Store.open({ dir: join(tmp, 'dst'), sync: 'never' })
          try {
            await dst.load(join(tmp, 'back.json'))
            expectSame(await contents(dst), before)
          } finally {
            await dst.close()
          }
        } finally {
          await etcd.close()
          await src.close()
        }
      })
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  }, 600_000)
})

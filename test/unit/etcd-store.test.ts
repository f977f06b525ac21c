// EtcdStore behaviour the conformance suite does not cover: group commit, hostile data in
// etcd, etcd's history compaction, option checks.
import { afterAll, describe, expect, it } from 'vitest'
import { EtcdClient } from '../../src/etcd/client.js'
import { EtcdStore } from '../../src/etcd/index.js'
import { Layout } from '../../src/etcd/layout.js'
import { codeOf } from '../helpers/codes.js'
import { sharedEtcdCluster, stopSharedEtcdCluster } from '../helpers/etcd-cluster.js'

afterAll(stopSharedEtcdCluster)

let n = 0
async function open(): Promise<{ store: EtcdStore<unknown>; endpoints: string[]; namespace: string }> {
  const { endpoints } = await sharedEtcdCluster()
  const namespace = `unit-${process.pid}-${++n}/`
  return { store: await EtcdStore.open({ endpoints, namespace }), endpoints, namespace }
}

describe('EtcdStore', () => {
  it('concurrent plain writes share txns (group commit), and each resolves after its own write', async () => {
    const { store } = await open()
    try {
      const before = store.stats()
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(`k${i}`, i)))
      const after = store.stats()
      expect(after.writes - before.writes).toBe(200)
      expect(after.txns - before.txns).toBeLessThan(100)
      expect(await store.count()).toBe(200)
      expect(await store.get('k199')).toBe(199)
    } finally {
      await store.close()
    }
  })

  it('a record kvstore never wrote is KV_CORRUPT, not a crash or a wrong value', async () => {
    const { store, endpoints, namespace } = await open()
    const client = new EtcdClient({ endpoints, timeoutMs: 5000 })
    try {
      await client.txn([], [{ put: { key: new Layout(namespace).record('bad'), value: Buffer.from([7, 1, 2]) } }])
      expect(await codeOf(store.get('bad'))).toBe('KV_CORRUPT')
      expect(await codeOf(store.keys())).toBe('KV_CORRUPT')
      // The store keeps working for other keys, and the bad one can be overwritten.
      await store.set('good', 1)
      expect(await store.get('good')).toBe(1)
      await store.set('bad', 'fixed')
      expect(await store.get('bad')).toBe('fixed')
    } finally {
      client.close()
      await store.close()
    }
  })

  it('a transaction on a store that sat idle while etcd compacted its history still runs', async () => {
    const { store, endpoints } = await open()
    try {
      await store.set('a', 1)
      // Other writes move the cluster on; then etcd compacts everything before now.
      const other = await EtcdStore.open({ endpoints, namespace: `other-${process.pid}/` })
      for (let i = 0; i < 5; i++) await other.set('x', i)
      const { revision } = await new EtcdClient({ endpoints, timeoutMs: 5000 }).status()
      await other.close()
      const res = await fetch(`${endpoints[0]}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: String(revision), physical: true }) })
      expect(res.ok).toBe(true)
      expect(await store.transaction(async (tx) => ((await tx.get('a')) as number) + 1)).toBe(2)
    } finally {
      await store.close()
    }
  })

  it('refuses bad options with KV_INVALID_ARGUMENT, naming the closest option', async () => {
    const { endpoints } = await sharedEtcdCluster()
    expect(await codeOf(EtcdStore.open({ endpoints: [] }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(EtcdStore.open({ endpoints: ['localhost:2379'] }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(EtcdStore.open({ endpoints, maxValueBytes: 2 * 1024 * 1024 }))).toBe('KV_INVALID_ARGUMENT')
    await expect(EtcdStore.open({ endpoints, timeoutMS: 5 } as never)).rejects.toThrow(/timeoutMs/)
  })
})

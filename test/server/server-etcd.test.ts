// The server over an EtcdStore: the same protocol and commands, every request waiting for
// the one before (an EtcdStore orders calls per key, not globally).
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { EtcdStore } from '../../src/etcd/index.js'
import { createServer } from '../../src/server/index.js'
import { sharedEtcdCluster, stopSharedEtcdCluster } from '../helpers/etcd-cluster.js'

afterAll(stopSharedEtcdCluster)

describe('RESP server over an EtcdStore', () => {
  it('serves strings, counters, lists, hashes, pipelines and MULTI/EXEC from etcd', async () => {
    const cluster = await sharedEtcdCluster()
    const store = await EtcdStore.open<unknown>({ endpoints: cluster.endpoints, namespace: `srv-${randomBytes(4).toString('hex')}/` })
    const server = createServer(store)
    const { port } = await server.listen(0)
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => undefined)
    try {
      expect(server.stats().durableReplies).toBe(false)
      expect(await r.set('a', '1')).toBe('OK')
      expect(await r.incrby('a', 41)).toBe(42)
      expect(await r.rpush('l', 'x', 'y')).toBe(2)
      expect(await r.lrange('l', 0, -1)).toEqual(['x', 'y'])
      expect(await r.hset('h', 'f', 'v')).toBe(1)
      expect(await r.hgetall('h')).toEqual({ f: 'v' })
      // A pipeline mixing keys: replies in order, each request after the one before.
      const p = r.pipeline()
      for (let i = 0; i < 50; i++) p.set(`k${i}`, String(i)).incr('n').dbsize()
      const out = (await p.exec()) ?? []
      for (let i = 0; i < 50; i++) {
        expect(out[i * 3]).toEqual([null, 'OK'])
        expect(out[i * 3 + 1]).toEqual([null, i + 1])
        expect(out[i * 3 + 2]).toEqual([null, 5 + i])
      }
      expect(await r.multi().set('t', '1').incr('t').exec()).toEqual([
        [null, 'OK'],
        [null, 2],
      ])
      expect(await r.info('persistence')).toContain('mode:etcd')
    } finally {
      r.disconnect()
      await server.close()
      await store.close()
    }
  }, 60_000)
})

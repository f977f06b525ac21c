// The etcd test-cluster helper against a real etcd: JSON gateway reads and writes across
// members, leader failover, restarting a killed member, and cleanup.
import { existsSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import {
  sharedEtcdCluster,
  startEtcdCluster,
  stopSharedEtcdCluster,
  withEtcdCluster,
  type EtcdCluster,
} from '../helpers/etcd-cluster.js'

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8')

async function gateway(url: string, path: string, body: unknown, timeoutMs = 2_000): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${path} on ${url}: HTTP ${res.status}: ${text}`)
  return JSON.parse(text)
}

const put = (url: string, key: string, value: string, timeoutMs?: number) =>
  gateway(url, '/v3/kv/put', { key: b64(key), value: b64(value) }, timeoutMs)

/** The value of `key` read from member `url` (a linearizable range), or undefined when absent. */
async function get(url: string, key: string): Promise<string | undefined> {
  const res = (await gateway(url, '/v3/kv/range', { key: b64(key) })) as { kvs?: { key: string; value?: string }[] }
  const kv = res.kvs?.[0]
  if (kv === undefined) return undefined
  expect(unb64(kv.key)).toBe(key)
  return unb64(kv.value ?? '')
}

/** Retries `fn` until it resolves, failing with its last error once `ms` have passed. */
async function within<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (Date.now() >= deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('etcd test cluster', () => {
  it('replicates, fails over, restarts a killed member and cleans up', async () => {
    const started = Date.now()
    const cluster: EtcdCluster = await startEtcdCluster({ members: 3 })
    const startMs = Date.now() - started
    const pids = cluster.members.map((m) => m.pid)
    try {
      expect(cluster.members).toHaveLength(3)
      expect(new Set(cluster.endpoints).size).toBe(3)
      expect(cluster.endpoints).toEqual(cluster.members.map((m) => m.clientUrl))
      for (const m of cluster.members) {
        expect(m.running).toBe(true)
        expect(m.clientUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect(m.id).toMatch(/^[1-9]\d*$/)
        expect(m.dataDir.startsWith(cluster.dataDir)).toBe(true)
        expect(existsSync(m.dataDir)).toBe(true)
      }
      expect(new Set(cluster.members.map((m) => m.id)).size).toBe(3)
      console.log(`etcd: 3-member cluster healthy in ${startMs} ms`)

      const [a, b] = cluster.members as [(typeof cluster.members)[0], (typeof cluster.members)[0]]
      await put(a.clientUrl, 'greeting', 'hello')
      expect(await get(b.clientUrl, 'greeting')).toBe('hello')
      expect(await get(b.clientUrl, 'absent')).toBeUndefined()

      const leader = await cluster.leader()
      expect(cluster.members).toContain(leader)
      const leaderPid = leader.pid as number
      await leader.kill('SIGKILL')
      expect(leader.running).toBe(false)
      expect(leader.pid).toBeUndefined()
      expect(alive(leaderPid)).toBe(false)

      const survivor = cluster.members.find((m) => m.running)!
      const killedAt = Date.now()
      await within(5_000, () => put(survivor.clientUrl, 'after-failover', 'still-writable', 1_000))
      const failoverMs = Date.now() - killedAt
      expect(failoverMs).toBeLessThan(6_000)
      console.log(`etcd: write through a survivor succeeded ${failoverMs} ms after killing the leader`)

      const newLeader = await cluster.leader()
      expect(newLeader).not.toBe(leader)
      expect(newLeader.running).toBe(true)

      await leader.restart()
      expect(leader.running).toBe(true)
      await expect(leader.restart()).rejects.toThrow(/already running/)
      expect(await within(5_000, () => get(leader.clientUrl, 'greeting'))).toBe('hello')
      expect(await within(5_000, () => get(leader.clientUrl, 'after-failover'))).toBe('still-writable')
    } finally {
      await cluster.stop()
    }
    expect(existsSync(cluster.dataDir)).toBe(false)
    for (const m of cluster.members) expect(m.running).toBe(false)
    for (const pid of pids) expect(alive(pid as number)).toBe(false)
    await cluster.stop() // idempotent
  })

  it('withEtcdCluster stops the cluster even when the callback throws', async () => {
    let seen: EtcdCluster | undefined
    await expect(
      withEtcdCluster(
        async (c) => {
          seen = c
          await put(c.endpoints[0]!, 'k', 'v')
          expect(await get(c.endpoints[0]!, 'k')).toBe('v')
          throw new Error('boom')
        },
        { members: 1 },
      ),
    ).rejects.toThrow('boom')
    expect(seen).toBeDefined()
    expect(seen!.members).toHaveLength(1)
    expect(seen!.members[0]!.running).toBe(false)
    expect(existsSync(seen!.dataDir)).toBe(false)
  })

  it('rejects a non-positive member count', async () => {
    await expect(startEtcdCluster({ members: 0 })).rejects.toThrow(RangeError)
  })

  describe('sharedEtcdCluster', () => {
    afterAll(stopSharedEtcdCluster)

    it('starts one cluster and returns it on every call until stopped', async () => {
      const [first, second] = await Promise.all([sharedEtcdCluster(), sharedEtcdCluster()])
      expect(second).toBe(first)
      expect(await sharedEtcdCluster()).toBe(first)
      await put(first.endpoints[2]!, 'shared', 'yes')
      expect(await get(first.endpoints[0]!, 'shared')).toBe('yes')

      await stopSharedEtcdCluster()
      expect(existsSync(first.dataDir)).toBe(false)
      expect(first.members.every((m) => !m.running)).toBe(true)
      await stopSharedEtcdCluster() // nothing running: a no-op
    })
  })
})

// A worker thread for test/unit/follower-workers.test.ts: opens a read-only follower of
// workerData.dir, from the sources (tsx registers its loader in this thread, so no build is
// needed), and answers the test's requests. Every request carries an id; the reply has it too.
//   { type: 'read', id, seq, keys }  waitFor(seq), then [key, type, value, version] per key
//   { type: 'dump', id, seq }        waitFor(seq), then the same for every key, sorted
//   { type: 'write', id }            try a set: the error code it rejects with
//   { type: 'close', id }            close the follower; the thread then exits
import { parentPort, workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
const { Store } = await import('../../src/index.ts')

const WAIT_MS = 10_000
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)
const follower = await Store.open({ dir: workerData.dir, readOnly: true, expirySweepIntervalMs: 0 })

/** [key, type, value, version]; lists and hashes whole. */
async function entry(key) {
  const type = await follower.type(key)
  const value = type === 'list' ? await follower.lrange(key) : type === 'hash' ? [...(await follower.hgetall(key))].sort() : await follower.get(key)
  return [key, type, value, await follower.version(key)]
}

async function handle(m) {
  switch (m.type) {
    case 'read':
      await follower.waitFor(m.seq, { timeoutMs: WAIT_MS })
      return { seq: follower.seq, entries: await Promise.all(m.keys.map(entry)) }
    case 'dump':
      await follower.waitFor(m.seq, { timeoutMs: WAIT_MS })
      return { seq: follower.seq, entries: await Promise.all((await follower.keys()).sort().map(entry)) }
    case 'write':
      try {
        await follower.set('from-a-worker', 1)
        return { code: 'resolved' }
      } catch (err) {
        return { code: err?.code ?? String(err) }
      }
    case 'close':
      await follower.close()
      return {}
    default:
      throw new Error(`unknown request ${m.type}`)
  }
}

port.on('message', (m) => {
  handle(m).then(
    (reply) => {
      port.postMessage({ type: m.type, id: m.id, ...reply })
      if (m.type === 'close') port.close()
    },
    (err) => port.postMessage({ type: 'error', id: m.id, message: err instanceof Error ? `${err.code ?? ''} ${err.message}` : String(err) }),
  )
})
port.postMessage({ type: 'ready', id: 0, seq: follower.seq, threadId: workerData.index })

// Many readers, one writer: the main thread writes to a directory store, and each worker
// thread reads it through its own read-only follower (`Store.open({ dir, readOnly: true })`),
// which follows the writer's WAL as it grows. To read its own write in a worker, the main
// thread sends the write's sequence number (`store.seq`) and the worker waits for it
// (`follower.waitFor(seq)`) before reading. The same works across processes.
//
//   npm run build && node examples/worker-threads.mjs
//
// 'kvstore-db' resolves here through the package's own "exports" (a package can import
// itself by name), so this file runs unchanged inside this repository and in an app that
// installed kvstore-db.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { Store } from 'kvstore-db'

const WORKERS = 4
const ROUNDS = 3

if (isMainThread) {
  const dir = mkdtempSync(join(tmpdir(), 'kvstore-workers-'))
  const writer = await Store.open({ dir })
  await writer.set('config', { color: 'blue' }) // there before the workers open

  // Each worker runs this same file. next() resolves with a worker's next message, in order.
  const workers = Array.from({ length: WORKERS }, (_, id) => new Worker(new URL(import.meta.url), { workerData: { dir, id } }))
  const replies = workers.map((w) => {
    const queue = []
    let wake
    w.on('message', (m) => {
      if (wake === undefined) return queue.push(m)
      const resolve = wake
      wake = undefined
      resolve(m)
    })
    w.on('error', (err) => {
      console.error(err)
      process.exit(1)
    })
    return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => (wake = resolve)))
  })
  const ready = await Promise.all(replies.map((next) => next()))
  console.log(`${WORKERS} workers following ${dir}, each at seq ${ready.map((m) => m.seq).join(', ')}`)

  let ok = true
  for (let round = 1; round <= ROUNDS; round++) {
    const key = `greeting:${round}`
    const value = { text: `hello #${round}`, at: new Date().toISOString() }
    await writer.set(key, value)
    const seq = writer.seq // this write, and every earlier one, is at or before seq
    for (const w of workers) w.postMessage({ type: 'read', key, seq })
    for (const m of await Promise.all(replies.map((next) => next()))) {
      if (m.error !== undefined) {
        ok = false
        console.log(`worker ${m.id} could not read ${key}: ${m.error}`)
        continue
      }
      const same = JSON.stringify(m.value) === JSON.stringify(value)
      ok &&= same
      console.log(`worker ${m.id} read ${key} at seq ${m.seq}: ${JSON.stringify(m.value)}${same ? '' : '  <- not what was written'}`)
    }
  }

  for (const w of workers) w.postMessage({ type: 'stop' })
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))))
  await writer.close()
  rmSync(dir, { recursive: true, force: true })
  console.log(ok ? 'every worker read every write' : 'some worker read something else')
  if (!ok) process.exitCode = 1
} else {
  const { dir, id } = workerData
  const follower = await Store.open({ dir, readOnly: true })
  parentPort.on('message', async (m) => {
    if (m.type === 'read') {
      try {
        await follower.waitFor(m.seq, { timeoutMs: 5000 }) // KV_TIMEOUT if the record does not show up in time
        parentPort.postMessage({ id, key: m.key, value: await follower.get(m.key), seq: follower.seq })
      } catch (err) {
        parentPort.postMessage({ id, key: m.key, error: `${err.code ?? ''} ${err.message}` })
      }
    } else if (m.type === 'stop') {
      await follower.close()
      parentPort.close() // nothing else keeps the thread alive: it exits
    }
  })
  parentPort.postMessage({ id, seq: follower.seq })
}

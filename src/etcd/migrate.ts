// Moving data between an EtcdStore and kvstore's snapshot files (the binary and JSON
// formats every Store reads and writes), so data crosses backends with files that already
// exist: `etcd.snapshot(path)` then `Store.open({ file: path })`, or `store.snapshot(path)`
// then `etcd.load(path)`. Types and expiries travel; versions do not (etcd assigns its own).
import type { Clock } from '../clock.js'
import { KvHash, KvList } from '../collections.js'
import { nodeFs } from '../fs/node-fs.js'
import type { Limits } from '../limits.js'
import type { SnapshotFormatName } from '../options.js'
import type { SnapshotResult } from '../persistence/persistence.js'
import type { SnapshotEntry } from '../snapshot/format.js'
import { formatByName, formatFor, loadSnapshotFile } from '../snapshot/io.js'
import { writeSnapshotFile } from '../snapshot/write-file.js'
import type { TxnOp } from './client.js'
import { MAX_TXN_BYTES, MAX_TXN_OPS, writeSize } from './committer.js'
import { Kind, encodeElement, type KeyRecord, type Layout } from './layout.js'

/** What migration needs from its EtcdStore. */
export interface MigrationHost {
  walk(): AsyncIterable<[string, KeyRecord]>
  elements(key: string, rec: KeyRecord): Promise<unknown>
  write(ops: TxnOp[]): Promise<void>
  putRecord(key: string, rec: KeyRecord): Promise<TxnOp[]>
  readonly layout: Layout
  readonly limits: Limits
  readonly clock: Clock
  newGen(): number
  revision(): number
}

/**
 * Write every live key to a snapshot file at `path`. The walk reads pages at one etcd
 * revision, so the file is a point-in-time copy. Entries are gathered in memory first
 * (the formats write their count up front).
 */
export async function exportSnapshot(
  host: MigrationHost,
  path: string,
  format: SnapshotFormatName | undefined,
  compress: 'gzip' | 'brotli' | undefined,
): Promise<SnapshotResult> {
  const started = performance.now()
  const entries: SnapshotEntry[] = []
  let version = 0
  for await (const [key, rec] of host.walk()) {
    entries.push({ key, value: await host.elements(key, rec), expiresAt: rec.expiresAt, version: ++version })
  }
  const name = format ?? formatFor(path)
  const seq = Math.max(version, 1)
  const { bytes } = await writeSnapshotFile(nodeFs, path, formatByName(name), { seq, timestamp: host.clock.now(), count: entries.length }, entries, {
    maxKeyBytes: host.limits.maxKeyBytes,
    maxValueBytes: Number.MAX_SAFE_INTEGER,
    ...(compress !== undefined ? { compress } : {}),
  })
  return { path, format: name, entries: entries.length, bytes, timeMs: performance.now() - started, seq }
}

/**
 * Write the entries of the snapshot file at `path` into the (cleared) namespace, in txns
 * that fit etcd's limits. A collection too large for one txn has its elements written
 * first and its record last: until the record lands, the elements are invisible.
 */
export async function importSnapshot(host: MigrationHost, path: string): Promise<{ entries: number; timeMs: number }> {
  const started = performance.now()
  const loaded = await loadSnapshotFile(nodeFs, path, undefined, 0, undefined, { maxKeyBytes: host.limits.maxKeyBytes, maxValueBytes: host.limits.maxValueBytes })
  const now = host.clock.now()
  const L = host.layout
  let batch: TxnOp[] = []
  let batchOps = 0
  let batchBytes = 0
  const flush = async (): Promise<void> => {
    if (batch.length > 0) await host.write(batch)
    batch = []
    batchOps = 0
    batchBytes = 0
  }
  const add = async (ops: TxnOp[]): Promise<void> => {
    const { bytes } = writeSize({ compares: [], ops })
    if (batchOps + ops.length + 1 > MAX_TXN_OPS || batchBytes + bytes > MAX_TXN_BYTES) await flush()
    batch.push(...ops)
    batchOps += ops.length
    batchBytes += bytes
  }
  let entries = 0
  const cur = loaded.memtable.view().cursor({})
  while (cur.next()) {
    const expiresAt = cur.expiresAt
    if (expiresAt !== 0 && expiresAt <= now) continue
    const key = cur.key
    const value = cur.value
    entries++
    if (value instanceof KvList) {
      const gen = host.newGen()
      let i = 0
      for (const v of value) await add([{ put: { key: L.listElement(key, gen, i++), value: encodeElement(v) } }])
      await add(await host.putRecord(key, { kind: Kind.LIST, expiresAt, gen, head: 0, tail: i }))
    } else if (value instanceof KvHash) {
      const gen = host.newGen()
      for (const [f, v] of value) await add([{ put: { key: L.hashField(key, gen, f), value: encodeElement(v) } }])
      await add(await host.putRecord(key, { kind: Kind.HASH, expiresAt, gen, size: value.size }))
    } else {
      await add(await host.putRecord(key, { kind: Kind.VALUE, expiresAt, value }))
    }
  }
  await flush()
  return { entries, timeMs: performance.now() - started }
}

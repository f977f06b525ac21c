// Every write reaches etcd through here, as one txn that also creates a commit marker.
//
// Group commit over the network: plain writes (no compares) that arrive while a txn is in
// flight wait and go together in the next txn, up to etcd's limits (128 ops, ~1.5 MiB).
// Callers keep two writes to one key from being pending at once (see EtcdStore.#ordered),
// so a group never names a key twice, which etcd would refuse.
//
// Lost answers: each txn compares "marker n of this client does not exist" and creates it.
// When the connection breaks after a txn was sent, the txn is sent again (elsewhere) until
// etcd answers. A retry of a txn that did apply fails its marker compare, so no txn ever
// applies twice; reading the marker then tells "applied before" from "a compare failed".
import { StoreError } from '../errors.js'
import { isUncertain, type Compare, type EtcdClient, type TxnOp, type TxnOpResult } from './client.js'
import type { Layout } from './layout.js'

/** etcd's default `--max-txn-ops`. */
export const MAX_TXN_OPS = 128
/** Raw bytes per txn; etcd's limit is 1.5 MiB of request after base64 (4/3) and framing. */
export const MAX_TXN_BYTES = 1024 * 1024

/** One write: compares (none: it may share a txn) and the ops to run when they hold. */
export interface Write {
  readonly compares: readonly Compare[]
  readonly ops: readonly TxnOp[]
  /** Ops run when a compare fails (reads, to say which); only for writes with compares. */
  readonly failure?: readonly TxnOp[] | undefined
}

/** The answer to one write. `responses` is undefined when it applied but the answer was lost. */
export interface Committed {
  readonly succeeded: boolean
  readonly revision: number
  readonly responses: TxnOpResult[] | undefined
}

interface Queued {
  write: Write
  bytes: number
  resolve(c: Committed): void
  reject(err: unknown): void
}

/** Sizes of a write, as the group limits count them. */
export function writeSize(w: Write): { ops: number; bytes: number } {
  let bytes = 0
  for (const op of w.ops) {
    if ('put' in op) bytes += op.put.key.length + op.put.value.length + 16
    else if ('deleteRange' in op) bytes += op.deleteRange.key.length + (op.deleteRange.rangeEnd?.length ?? 0) + 16
    else bytes += op.range.key.length + (op.range.rangeEnd?.length ?? 0) + 16
  }
  for (const c of w.compares) bytes += c.key.length + (c.rangeEnd?.length ?? 0) + 16
  return { ops: w.ops.length, bytes }
}

/** Sends the writes of one store, grouping the plain ones. */
export class Committer {
  readonly #client: EtcdClient
  readonly #layout: Layout
  readonly #clientId: string
  readonly #markerLease: () => Promise<string>
  readonly #timeoutMs: number
  readonly #maxInFlight: number
  #next = 0
  #inFlight = 0
  #queue: Queued[] = []
  /** Txns sent (a group counts once). */
  txns = 0
  /** Writes sent. */
  writes = 0
  /** Revision of the newest txn this committer saw succeed. */
  lastRevision = 0

  constructor(client: EtcdClient, layout: Layout, clientId: string, markerLease: () => Promise<string>, timeoutMs: number, maxInFlight = 4) {
    this.#client = client
    this.#layout = layout
    this.#clientId = clientId
    this.#markerLease = markerLease
    this.#timeoutMs = timeoutMs
    this.#maxInFlight = maxInFlight
  }

  /**
   * Commit `w`. @throws {@link StoreError} `KV_BATCH_TOO_LARGE` when it alone exceeds
   * etcd's limits; `KV_UNAVAILABLE` when etcd gave no definite answer within the timeout.
   */
  commit(w: Write): Promise<Committed> {
    const { ops, bytes } = writeSize(w)
    if (ops + 1 > MAX_TXN_OPS || w.compares.length + 1 > MAX_TXN_OPS || bytes > MAX_TXN_BYTES) {
      return Promise.reject(
        new StoreError('KV_BATCH_TOO_LARGE', `a commit of ${ops} etcd ops, ${w.compares.length} compares and ~${bytes} bytes exceeds etcd's limits (${MAX_TXN_OPS - 1} ops and compares, ${MAX_TXN_BYTES} bytes)`),
      )
    }
    if (w.compares.length > 0) {
      this.writes++
      return this.#send(w.compares, w.ops, w.failure ?? []).then((c) => c)
    }
    return new Promise<Committed>((resolve, reject) => {
      this.#queue.push({ write: w, bytes, resolve, reject })
      if (this.#inFlight < this.#maxInFlight) this.#flush()
    })
  }

  #flush(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
      const group: Queued[] = []
      let ops = 1
      let bytes = 0
      while (this.#queue.length > 0) {
        const q = this.#queue[0] as Queued
        if (group.length > 0 && (ops + q.write.ops.length > MAX_TXN_OPS || bytes + q.bytes > MAX_TXN_BYTES)) break
        group.push(q)
        this.#queue.shift()
        ops += q.write.ops.length
        bytes += q.bytes
      }
      this.#inFlight++
      this.writes += group.length
      const all = group.flatMap((q) => q.write.ops)
      this.#send([], all, []).then(
        (c) => {
          let at = 0
          for (const q of group) {
            const n = q.write.ops.length
            q.resolve({ succeeded: c.succeeded, revision: c.revision, responses: c.responses?.slice(at, at + n) })
            at += n
          }
        },
        (err: unknown) => {
          for (const q of group) q.reject(err)
        },
      ).finally(() => {
        this.#inFlight--
        this.#flush()
      })
    }
  }

  async #send(compares: readonly Compare[], ops: readonly TxnOp[], failure: readonly TxnOp[]): Promise<Committed> {
    const marker = this.#layout.marker(this.#clientId, ++this.#next)
    const lease = await this.#markerLease()
    const guarded: Compare[] = [{ key: marker, target: 'VERSION', result: 'EQUAL', revision: 0 }, ...compares]
    const success: TxnOp[] = [...ops, { put: { key: marker, value: Buffer.alloc(0), lease } }]
    this.txns++
    const deadline = Date.now() + this.#timeoutMs
    let resent = false
    for (;;) {
      try {
        const res = await this.#client.txn(guarded, success, failure)
        if (res.succeeded) {
          if (res.revision > this.lastRevision) this.lastRevision = res.revision
          return { succeeded: true, revision: res.revision, responses: res.responses.slice(0, ops.length) }
        }
        if (resent) {
          // Did an earlier send apply? Then the marker exists (this read is linearizable).
          const m = await this.#client.range({ key: marker })
          if (m.kvs.length > 0) return { succeeded: true, revision: m.kvs[0]?.modRevision ?? res.revision, responses: undefined }
        }
        return { succeeded: false, revision: res.revision, responses: res.responses }
      } catch (err) {
        if (!isUncertain(err) || Date.now() >= deadline) throw err
        resent = true
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }
}

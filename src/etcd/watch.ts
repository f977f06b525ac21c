// One etcd watch stream per EtcdStore, feeding its ChangeHub (the same feeds as Store's).
//
// The stream starts after the newest revision the store has seen when the first feed
// opens, so every write the caller makes after `watch()` is delivered. When the stream
// breaks (a member died, the connection dropped) it resumes from the revision after the
// last one delivered, on the next member: no change is lost or repeated. When etcd has
// compacted its history past that revision the feeds end with `KV_OVERFLOW`.
import type { Clock } from '../clock.js'
import { StoreError } from '../errors.js'
import { copyOut } from '../keyspace.js'
import type { ChangeHub } from '../watch.js'
import type { EtcdClient, WatchEvent } from './client.js'
import { Kind, decodeRecord, type Layout } from './layout.js'

/** Pause before reconnecting a broken stream, growing to this. */
const MAX_BACKOFF_MS = 1000

export class EtcdWatcher {
  readonly #client: EtcdClient
  readonly #layout: Layout
  readonly #hub: ChangeHub
  readonly #clock: Clock
  readonly #revision: () => number
  #abort: AbortController | undefined
  /** Last revision delivered to the hub. */
  #delivered = 0
  /** Callers waiting for a revision to be delivered. */
  #waiters: { revision: number; resolve: () => void }[] = []

  constructor(client: EtcdClient, layout: Layout, hub: ChangeHub, clock: Clock, revision: () => number) {
    this.#client = client
    this.#layout = layout
    this.#hub = hub
    this.#clock = clock
    this.#revision = revision
  }

  /** Start the stream if it is not running. */
  ensure(): void {
    if (this.#abort !== undefined) return
    this.#abort = new AbortController()
    this.#delivered = this.#revision()
    void this.#run(this.#abort.signal)
  }

  /**
   * Resolves once every change up to `revision` reached the feeds (or the stream stopped).
   * Every commit of the store writes a commit marker inside the watched range, so each
   * commit's revision is delivered.
   */
  until(revision: number): Promise<void> {
    if (this.#abort === undefined || revision <= this.#delivered) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }))
  }

  /** Stop the stream (the hub's feeds are ended by the store). */
  stop(): void {
    this.#abort?.abort()
    this.#abort = undefined
    this.#release(Infinity)
  }

  #release(upTo: number): void {
    if (this.#waiters.length === 0) return
    const still: { revision: number; resolve: () => void }[] = []
    for (const w of this.#waiters) {
      if (w.revision <= upTo) w.resolve()
      else still.push(w)
    }
    this.#waiters = still
  }

  async #run(signal: AbortSignal): Promise<void> {
    const [start, end] = this.#layout.watchRange()
    let backoff = 50
    while (!signal.aborted) {
      try {
        await this.#client.watch(start, end, this.#delivered + 1, (events) => this.#deliver(events), signal, () => {
          backoff = 50
        })
      } catch (err) {
        if (signal.aborted) return
        if (err instanceof StoreError && err.code === 'KV_OVERFLOW') {
          this.#hub.failAll(err)
          this.#abort = undefined
          this.#release(Infinity)
          return
        }
      }
      if (signal.aborted) return
      await new Promise((r) => setTimeout(r, backoff))
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2)
    }
  }

  #deliver(events: WatchEvent[]): void {
    const L = this.#layout
    const clearMarker = L.clearMarker()
    // A clear (or load) is one revision: its deletes become one `clear` change.
    const cleared = new Set<number>()
    for (const e of events) if (e.type === 'PUT' && e.kv.key.equals(clearMarker)) cleared.add(e.kv.modRevision)
    const now = this.#clock.now()
    for (const e of events) {
      const rev = e.kv.modRevision
      if (rev <= this.#delivered) continue
      if (e.kv.key.equals(clearMarker)) {
        this.#hub.publish({ type: 'clear', key: '', version: rev })
        continue
      }
      if (!L.isRecord(e.kv.key)) continue
      if (cleared.has(rev)) continue // a load's writes are part of its clear
      const key = L.keyOf(e.kv.key)
      if (e.type === 'DELETE') {
        const prev = e.prevKv === undefined ? undefined : decodeRecord(e.prevKv.value)
        const expired = prev !== undefined && prev.expiresAt !== 0 && prev.expiresAt <= now
        this.#hub.publish(expired ? { type: 'expire', key, version: rev, reason: 'expired' } : { type: 'delete', key, version: rev, reason: 'deleted' })
        continue
      }
      const rec = decodeRecord(e.kv.value)
      if (rec.kind === Kind.VALUE) this.#hub.publish({ type: 'set', key, value: copyOut(rec.value), version: rev })
      else this.#hub.publish({ type: 'update', key, version: rev })
    }
    for (const e of events) if (e.kv.modRevision > this.#delivered) this.#delivered = e.kv.modRevision
    this.#release(this.#delivered)
  }
}

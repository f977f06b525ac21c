// Leases for expiring keys: one lease per expiry second, shared by every key that expires
// in that second, so a million TTL keys cost a few thousand leases, not a million. etcd
// deletes a key when its lease ends; reads compare the stored `expiresAt` with the clock,
// so they are exact to the millisecond while the lease tidies up within about a second.
import type { Clock } from '../clock.js'
import type { EtcdClient } from './client.js'

/** etcd refuses (or rounds up) shorter leases. */
const MIN_LEASE_SECONDS = 2

/** Grants and caches the per-second leases of one store. */
export class LeasePool {
  readonly #client: EtcdClient
  readonly #clock: Clock
  readonly #bySecond = new Map<number, Promise<string>>()

  constructor(client: EtcdClient, clock: Clock) {
    this.#client = client
    this.#clock = clock
  }

  /**
   * The lease for keys expiring at `expiresAt` (ms, by the store's clock). Its TTL runs on
   * etcd's clock from the grant, so it ends no earlier than `expiresAt` and at most about
   * a second after it.
   */
  leaseFor(expiresAt: number): Promise<string> {
    const second = Math.ceil(expiresAt / 1000)
    let lease = this.#bySecond.get(second)
    if (lease === undefined) {
      const ttl = Math.max(MIN_LEASE_SECONDS, Math.ceil((second * 1000 - this.#clock.now()) / 1000) + 1)
      lease = this.#client.grant(ttl)
      this.#bySecond.set(second, lease)
      // A failed grant is not cached: the next write asks again.
      lease.catch(() => this.#bySecond.delete(second))
      this.#prune()
    }
    return lease
  }

  #prune(): void {
    if (this.#bySecond.size < 4096) return
    const now = Math.floor(this.#clock.now() / 1000)
    for (const second of this.#bySecond.keys()) if (second < now) this.#bySecond.delete(second)
  }
}

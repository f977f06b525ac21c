import type { Clock } from '../../src/clock.js'

/** A clock tests move by hand, so TTL tests never sleep. */
export class FakeClock implements Clock {
  #now: number
  constructor(start = 1_700_000_000_000) {
    this.#now = start
  }
  now(): number {
    return this.#now
  }
  advance(ms: number): void {
    this.#now += ms
  }
}

/** Source of wall-clock time in milliseconds since the epoch. Inject a fake one in tests. */
export interface Clock {
  now(): number
}

/** The real clock (`Date.now`). */
export const systemClock: Clock = { now: () => Date.now() }

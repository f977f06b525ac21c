// Snapshot writes yield to the event loop by time: at most SLICE_MS of work between yields,
// and no yield at all while the slice lasts.
import { describe, expect, it } from 'vitest'
import { pacing, SLICE_MS } from '../../src/snapshot/pacing.js'

function busy(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin: a snapshot encoding entries
  }
}

describe('snapshot pacing', () => {
  it('yields to the event loop once a slice of work has passed', async () => {
    const { pause } = pacing()
    let ran = false
    setImmediate(() => {
      ran = true
    })
    let slices = 0
    while (!ran && slices < 100) {
      busy(1)
      await pause?.()
      slices++
    }
    expect(ran).toBe(true)
    // At least 1 ms per call (more when the machine is busy): the yield comes within about
    // SLICE_MS calls. That it does not come at every call is the next test's.
    expect(slices).toBeLessThanOrEqual(SLICE_MS + 2)
  })

  it('does not yield while the slice lasts', async () => {
    const { pause } = pacing()
    let ran = false
    setImmediate(() => {
      ran = true
    })
    await pause?.()
    await pause?.()
    expect(ran).toBe(false)
  })

  it('reports progress at most every 100 ms', async () => {
    const seen: number[] = []
    const { pause, pauseEvery } = pacing((done) => seen.push(done))
    const started = performance.now()
    while (performance.now() - started < 250) {
      busy(5)
      await pause?.()
    }
    expect(seen.length).toBeGreaterThanOrEqual(1)
    expect(seen.length).toBeLessThanOrEqual(3)
    for (const d of seen) expect(d % (pauseEvery as number)).toBe(0)
  })
})

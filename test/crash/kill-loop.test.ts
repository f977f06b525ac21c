import { describe, expect, it } from 'vitest'
import { runKillLoop } from './kill-loop.js'

describe('kill -9 harness', () => {
  it('loses no acknowledged write over 30 kill/reopen cycles (sync: always)', async () => {
    const report = await runKillLoop({ cycles: 30, seed: 7 })
    console.log(JSON.stringify(report))
    expect(report.violations).toEqual([])
    expect(report.lost).toBe(0)
    expect(report.ackedWrites).toBeGreaterThan(30)
  }, 180_000)

  it('loses no acknowledged write under sync: never (process kills only)', async () => {
    const report = await runKillLoop({ cycles: 8, sync: 'never', seed: 11 })
    expect(report.violations).toEqual([])
    expect(report.ackedWrites).toBeGreaterThan(8)
  }, 120_000)
})

// abstract-level's shared suite against KvstoreLevel, in memory and in a directory. The
// suite is tape; it runs in a child process (abstract-level-runner.ts) and this test fails
// with the names of the failing assertions. The counts are printed for the README and CI.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'abstract-level-runner.ts')

/** Passed and failed assertion counts of a TAP stream, and each failure with its test's name. */
function readTap(tap: string): { pass: number; fail: number; failures: string[] } {
  let test = ''
  const failures: string[] = []
  for (const line of tap.split('\n')) {
    if (line.startsWith('# ') && !/^# (tests|pass|fail|ok)\b/.test(line)) test = line.slice(2)
    else if (line.startsWith('not ok ')) failures.push(`${test}: ${line}`)
  }
  const count = (name: string): number => Number(/^# (?:tests|pass|fail) +(\d+)$/m.exec(tap.split('\n').filter((l) => l.startsWith(`# ${name} `)).pop() ?? '')?.[1] ?? 0)
  return { pass: count('pass'), fail: count('fail'), failures }
}

describe.each(['memory', 'dir'])('abstract-level suite: %s', (mode) => {
  it('passes every assertion', { timeout: 300_000 }, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kvstore-level-'))
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', RUNNER, mode, scratch], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
      const { pass, fail, failures } = readTap(r.stdout)
      console.log(`abstract-level suite (${mode}): ${pass} assertions passed, ${fail} failed`)
      expect(failures, r.stderr).toEqual([])
      expect(r.status, r.stderr).toBe(0)
      expect(pass).toBeGreaterThan(4000)
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  })
})

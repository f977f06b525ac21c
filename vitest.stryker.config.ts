// Vitest config for mutation testing only (`npm run mutate`, see stryker.config.mjs and
// docs/MUTATION.md). Not used by `npm test` or CI.
//
// Excluded here, and why:
// - test/crash/**: each test spawns writer children (tsx) and kills them in a loop
//   (~55 s together). Stryker activates a mutant inside the test-runner process only, so
//   the children always run the original code: these tests cannot kill a mutant, they
//   only make every run that covers the store slow and timing-dependent.
// - test/unit/cli.test.ts: runs the CLI as child processes and through a pty (~15 s),
//   same problem: the mutant is not active in the child.
// - test/unit/file-permissions.test.ts: sets process.umask(), which Node refuses inside a
//   worker thread, and Stryker's vitest runner always uses the `threads` pool.
// - test/unit/etcd-*.test.ts: start etcd clusters and kill members (about 2 minutes); they
//   cover src/etcd/, which is not among the mutated modules.
// - test/unit/cli-{copy,etcd,serve}.test.ts, test/unit/commands-redis-parity.test.ts,
//   test/unit/follower-workers.test.ts, test/server/**: CLI children, worker threads, etcd
//   and redis-server. A mutant is not active in a child or a worker, and every store they
//   open covers the lock and recovery, so each survivor of those modules ran them all for
//   minutes (a run of dir-lock + recovery stalled at ~3 mutants a minute).
// The other in-process tests (unit, property, trust, conformance) stay in.
//
// Order: Stryker stops a mutant's run at the first failing test (bail), and Vitest's own
// order runs the longest files first. Running small files first and the few slow ones
// last kills most mutants after a fraction of a second instead of after the slowest file.
import { statSync } from 'node:fs'
import { defineConfig, mergeConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'
import base from './vitest.config.js'

/** Files that take seconds (a million keys, fuzzing, child-process lock races), fastest first. */
const SLOW_LAST = [
  'store-ttl-types.test.ts',
  'store-model.property.test.ts',
  'snapshot-write-file.test.ts',
  'snapshot-fuzz.property.test.ts',
  'architecture.test.ts',
  'snapshot-hostile.test.ts',
  'store-dir.test.ts',
]

class FastFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const weight = (f: TestSpecification): number => {
      const slow = SLOW_LAST.findIndex((name) => f.moduleId.endsWith(`/${name}`))
      return slow >= 0 ? 1e12 + slow : statSync(f.moduleId).size
    }
    return [...files].sort((a, b) => weight(a) - weight(b))
  }
}

/**
 * `STRYKER_TESTS` (comma-separated globs) narrows the test set for one module's run, e.g.
 * `STRYKER_TESTS='test/unit/dir-lock*.test.ts,test/unit/store-dir.test.ts'`. Fewer tests
 * can only kill fewer mutants, so the score of a narrowed run is a lower bound of the
 * whole set's; what it saves is the store-wide files that cover every module.
 */
const narrowed = process.env.STRYKER_TESTS?.split(',').map((g) => g.trim()).filter((g) => g !== '')

const config = mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      exclude: ['**/node_modules/**', 'test/crash/**', 'test/unit/cli.test.ts', 'test/unit/file-permissions.test.ts', 'test/unit/etcd-*.test.ts',
        'test/unit/cli-copy.test.ts', 'test/unit/cli-etcd.test.ts', 'test/unit/cli-serve.test.ts', 'test/unit/commands-redis-parity.test.ts',
        'test/unit/follower-workers.test.ts', 'test/server/**'],
      sequence: { sequencer: FastFirstSequencer },
      // A mutant that deadlocks (a lock never granted, a promise never settled) fails its
      // test here instead of waiting for Stryker's timeout, which also restarts the runner.
      // The slowest test takes ~5 s unloaded, but the etcd conformance tests took over 15 s
      // while two Stryker runs shared the 2 cores (the dry run failed twice), hence 30 s.
      // `npm test` keeps the 60 s of vitest.config.ts.
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  }),
)

// mergeConfig concatenates arrays, so the narrowed list replaces base's include here.
if (narrowed !== undefined && narrowed.length > 0) config.test = { ...config.test, include: narrowed }

export default config

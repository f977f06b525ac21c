// Mutation testing (StrykerJS). On demand only, never in CI: `npm run mutate`.
// See docs/MUTATION.md for how to run it, restrict it and read the scores.
// @ts-check
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  // Core modules first: the storage engine and the data structures under it.
  mutate: [
    'src/wal/**/*.ts',
    'src/recovery.ts',
    'src/memtable.ts',
    'src/snapshot/**/*.ts',
    'src/transaction.ts',
    'src/atomic.ts',
    'src/rwlock.ts',
    'src/expiry-heap.ts',
    'src/dir-lock.ts',
    'src/glob.ts',
  ],
  testRunner: 'vitest',
  // Its own vitest config leaves out the child-process tests (crash, CLI); see the file.
  vitest: { configFile: 'vitest.stryker.config.ts' },
  coverageAnalysis: 'perTest',
  // Reruns only test mutants whose code or covering tests changed since the last run.
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  // One test-runner process by default: the machines have few cores and others share them.
  // Override with `npm run mutate -- --concurrency 2`.
  concurrency: 1,
  // The TypeScript checker drops mutants that do not compile before running tests.
  // STRYKER_TS_CHECKER=0 turns it off (see docs/MUTATION.md for the measured cost).
  checkers: process.env.STRYKER_TS_CHECKER === '0' ? [] : ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // Static mutants (module-level code, run once at import) cannot be switched per test:
  // each one reruns every test file. In a run of dir-lock + recovery they were 31 % of the
  // mutants and 94 % of the estimated time. They are reported as Ignored;
  // `--ignoreStatic false` runs them.
  ignoreStatic: true,
  // Busy shared machines: allow slow (not endless) mutants some slack before "Timeout".
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false },
  // Not needed to run the tests; keeps sandbox copies small.
  ignorePatterns: ['dist', 'coverage', 'bench/results', '.kvstore-data', '.scratch', 'docs'],
  tempDirName: '.stryker-tmp',
  thresholds: { high: 90, low: 75, break: null },
}

export default config

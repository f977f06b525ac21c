// Child for the stale-temp tests: a file-mode store that snapshots its file over and over
// until it is killed, so a kill -9 lands mid-write and leaves a temp file behind.
import { Store } from '../../src/index.js'

const store = await Store.open<string>({ file: process.argv[2] as string, snapshotIntervalMs: 0, expirySweepIntervalMs: 0 })
for (let i = 0; i < 20_000; i++) await store.set(`key:${String(i).padStart(6, '0')}`, `value ${i} `.repeat(8))
process.stdout.write('ready\n')
for (;;) await store.snapshot()

// Child for lock tests: opens a store, writes one key, says so, and holds the lock until killed.
import { Store } from '../../src/index.js'

const store = await Store.open<string>({ dir: process.argv[2] as string })
await store.set('held', 'yes')
process.stdout.write('ready\n')
setInterval(() => undefined, 1_000)

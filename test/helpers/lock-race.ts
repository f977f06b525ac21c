// Child for the open race: prints `opened` (and holds the lock for 3 s) or the error code.
import { Store, StoreError } from '../../src/index.js'

try {
  const store = await Store.open({ dir: process.argv[2] as string })
  process.stdout.write('opened\n')
  await new Promise((r) => setTimeout(r, 3_000))
  await store.close()
} catch (err) {
  process.stdout.write(`${err instanceof StoreError ? err.code : String(err)}\n`)
}

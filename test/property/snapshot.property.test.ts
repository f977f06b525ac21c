import fc from 'fast-check'
import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import { detectFileFormat } from '../../src/snapshot/detect.js'
import { MAX_SNAPSHOT_VERSION, type SnapshotEntry } from '../../src/snapshot/format.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { canonEntries, entriesArb, numRuns } from '../helpers/values.js'

let dir = ''
beforeAll(() => {
  dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-prop-'))
})
afterAll(() => {
  nfs.rmSync(dir, { recursive: true, force: true })
})

const metaArb = fc.record({
  seq: fc.nat({ max: MAX_SNAPSHOT_VERSION }),
  // Integer ms inside the range Date (and so the JSON ISO timestamp) can express.
  timestamp: fc.integer({ min: 0, max: 8_640_000_000_000_000 }),
})

describe('snapshot round trip', () => {
  for (const format of [jsonSnapshot, binarySnapshot]) {
    for (const compress of [undefined, 'gzip', 'brotli'] as const) {
      it(`${format.name}${compress === undefined ? '' : ` + ${compress}`} reloads exactly what it wrote, in the same order`, async () => {
        const path = join(dir, `${format.name}-${compress ?? 'plain'}`)
        await fc.assert(
          fc.asyncProperty(entriesArb, metaArb, async (entries, m) => {
            const meta = { ...m, count: entries.length }
            await writeSnapshotFile(nodeFs, path, format, meta, entries, compress === undefined ? {} : { compress })
            expect(detectFileFormat(nodeFs, path)).toBe(format)
            const got: SnapshotEntry[] = []
            const read = await format.read(nodeFs, path, (e) => got.push(e))
            expect(read).toEqual({ ...meta, version: 2 })
            expect(canonEntries(got)).toEqual(canonEntries(entries))
          }),
          { numRuns: numRuns(compress === undefined ? 60 : 25) },
        )
      })
    }
  }
})

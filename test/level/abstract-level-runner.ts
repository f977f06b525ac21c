// Runs abstract-level's shared suite (abstract-level/test, tape) against KvstoreLevel and
// prints TAP. Started by abstract-level-suite.test.ts; `node --import tsx
// test/level/abstract-level-runner.ts memory|dir <scratch dir>` runs it by hand.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { KvstoreLevel } from '../../src/level/index.js'

const require = createRequire(import.meta.url)
const tape = require('tape') as unknown
const suite = require('abstract-level/test') as (options: { test: unknown; factory: (options?: object) => unknown }) => void

const [mode, scratch] = process.argv.slice(2)
if ((mode !== 'memory' && mode !== 'dir') || scratch === undefined) throw new Error('usage: abstract-level-runner.ts memory|dir <scratch dir>')

let dbs = 0
suite({
  test: tape,
  // sync: 'never' keeps hundreds of opens off the disk's fsync queue; durability is tested elsewhere.
  factory: (options?: object) =>
    mode === 'memory' ? new KvstoreLevel(options) : new KvstoreLevel(join(scratch, `db-${++dbs}`), { ...options, store: { sync: 'never' } }),
})

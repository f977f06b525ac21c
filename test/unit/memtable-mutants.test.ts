// Memtable: what mutation testing found unpinned by memtable.test.ts (first batch): the
// exact upper chunkSize bound and the RangeError messages.
import { describe, expect, it } from 'vitest'
import { Memtable } from '../../src/memtable.js'

describe('Memtable arguments', () => {
  it('accepts chunkSize up to 32767 and refuses 32768 (positions encode offsets below 65536)', () => {
    expect(() => new Memtable({ chunkSize: 32767 })).not.toThrow()
    expect(() => new Memtable({ chunkSize: 32768 })).toThrow(new RangeError('chunkSize must be in [2, 32768)'))
    expect(() => new Memtable({ chunkSize: 1 })).toThrow(RangeError)
  })

  it('fromSorted says why it refuses unsorted keys', () => {
    expect(() => Memtable.fromSorted(['b', 'a'], [1, 2], [1, 2], null)).toThrow(new RangeError('fromSorted needs strictly ascending keys'))
  })
})

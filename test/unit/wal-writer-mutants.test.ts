// WAL writer and segment naming: what mutation testing found unpinned by wal-writer.test.ts —
// the exact error messages (op, path and fs error code), where each failing step leaves the
// file descriptors, what close() reports, which datasyncs a rotation and a flush need, the
// 'interval' timer, and the edges of segment names and listings.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Fs } from '../../src/fs/fs.js'
import { StoreError, isStoreError } from '../../src/errors.js'
import { MAX_PAYLOAD_BYTES, MAX_SEGMENT_NUMBER, SEGMENT_HEADER_SIZE, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { scanWal } from '../../src/wal/reader.js'
import { listSegments, parseSegmentFileName, removeSegmentsBelow, segmentFileName, segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import type { SyncPolicy, WalWriterOptions } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'

const DIR = '/db'
const SALT = 0x5eed5a17
const SEG1 = '/db/wal-0000000001.log'
const SEG2 = '/db/wal-0000000002.log'

function newFs(): MemFs {
  const fs = new MemFs()
  fs.mkdir(DIR)
  fs.syncAll()
  return fs
}

const payloadFor = (seq: number): Buffer => Buffer.from(`record ${seq} `)

function create(fs: Fs, sync: SyncPolicy = 'always', segment = 1, baseSeq = 0, opts: Partial<WalWriterOptions> = {}): Promise<WalWriter> {
  return WalWriter.create(fs, DIR, segment, baseSeq, { sync, newSalt: () => SALT, ...opts })
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function fsErr(code: string | undefined, message = `${code ?? 'plain'} (test)`): Error {
  return code === undefined ? new Error(message) : Object.assign(new Error(message), { code })
}

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    if (err instanceof Error) return err
    throw err
  }
  throw new Error('resolved')
}

function thrownBy(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    if (err instanceof Error) return err
    throw err
  }
  throw new Error('returned')
}

/** Seqs durable in DIR after a power loss that drops unsynced data. */
function durableSeqs(fs: MemFs): number[] {
  const seqs: number[] = []
  scanWal(fs.crash('drop-unsynced'), DIR, (r) => seqs.push(r.seq))
  return seqs
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('option and argument errors name the offending value', () => {
  it('create: sync, syncIntervalMs, maxSegmentBytes, baseSeq', async () => {
    const fs = newFs()
    await expect(create(fs, 'sometimes' as SyncPolicy)).rejects.toThrow(
      new TypeError("sync must be 'always', 'interval' or 'never', got sometimes"),
    )
    await expect(create(fs, 'interval', 1, 0, { syncIntervalMs: 0 })).rejects.toThrow(new RangeError('syncIntervalMs must be > 0, got 0'))
    await expect(create(fs, 'never', 1, 0, { maxSegmentBytes: 1.5 })).rejects.toThrow(
      new RangeError('maxSegmentBytes must be a positive integer, got 1.5'),
    )
    await expect(create(fs, 'always', 1, -1)).rejects.toThrow(new RangeError('baseSeq must be a safe non-negative integer, got -1'))
    expect(fs.log).toEqual([])
  })

  it('openForAppend: baseSeq, lastSeq, their order, validEnd', () => {
    const fs = newFs()
    const pos = { salt: SALT, baseSeq: 0, lastSeq: 0, validEnd: 32 }
    const open = (p: Partial<typeof pos>): WalWriter => WalWriter.openForAppend(fs, DIR, 1, { ...pos, ...p }, { sync: 'always' })
    expect(thrownBy(() => open({ baseSeq: -1 }))).toEqual(new RangeError('baseSeq must be a safe non-negative integer, got -1'))
    expect(thrownBy(() => open({ lastSeq: 1.5 }))).toEqual(new RangeError('lastSeq must be a safe non-negative integer, got 1.5'))
    expect(thrownBy(() => open({ baseSeq: 5, lastSeq: 4 }))).toEqual(new RangeError('lastSeq 4 is below baseSeq 5'))
    expect(thrownBy(() => open({ validEnd: 36 }))).toEqual(new RangeError('validEnd must be a multiple of 8 and >= 32, got 36'))
    expect(fs.log).toEqual([])
  })

  it('append: order, type and payload size', async () => {
    const w = await create(newFs())
    expect(thrownBy(() => w.append(2, 1, payloadFor(2)))).toEqual(new RangeError('WAL append out of order: seq 2 after 0'))
    expect(thrownBy(() => w.append(1, 0, payloadFor(1)))).toEqual(new RangeError('WAL record type must be an integer in 1..255, got 0'))
    const huge = { length: MAX_PAYLOAD_BYTES + 1 } as Uint8Array
    expect(thrownBy(() => w.append(1, 1, huge))).toEqual(
      new RangeError(`WAL payload of ${MAX_PAYLOAD_BYTES + 1} bytes exceeds ${MAX_PAYLOAD_BYTES}`),
    )
    await w.close()
  })

  it('rotate past the last segment number rejects and leaves the writer usable', async () => {
    const fs = newFs()
    const w = await create(fs, 'always', MAX_SEGMENT_NUMBER)
    await expect(w.rotate()).rejects.toThrow(new RangeError(`WAL segment number would exceed ${MAX_SEGMENT_NUMBER}`))
    await w.append(1, 1, payloadFor(1))
    expect(w.segment).toBe(MAX_SEGMENT_NUMBER)
    await w.close()
  })

  it('operations after close() reject with KV_CLOSED and a message saying so', async () => {
    const w = await create(newFs())
    await w.close()
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(isStoreError(err, 'KV_CLOSED')).toBe(true)
    expect(err.message).toBe('the WAL writer is closed')
  })
})

describe('creating a segment', () => {
  it('names the create step and the fs code when the file exists', async () => {
    const fs = newFs()
    await (await create(fs)).close()
    const err = await rejectionOf(create(fs))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL create failed on ${SEG1} (EEXIST)`)
  })

  // create's ops: open 0, write 1, datasync 2, fsyncDir 3.
  for (const [index, op] of [
    [1, 'write'],
    [2, 'datasync'],
    [3, 'directory fsync'],
  ] as const) {
    it(`names the failing step (${op}) and closes the new file`, async () => {
      const fs = newFs()
      fs.failAt(index, 'EIO')
      const err = await rejectionOf(create(fs))
      expect(isStoreError(err, 'KV_IO')).toBe(true)
      expect(err.message).toBe(`WAL ${op} failed on ${SEG1} (EIO)`)
      expect((err.cause as { code?: string }).code).toBe('EIO')
      expect(fs.openFileCount).toBe(0)
    })
  }
})

describe('openForAppend failures', () => {
  it('names the open step for a missing segment', () => {
    const err = thrownBy(() => WalWriter.openForAppend(newFs(), DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 0, validEnd: 32 }, { sync: 'always' }))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL open failed on ${SEG1} (ENOENT)`)
  })

  it('throws KV_IO naming the truncate step when ftruncate fails, and closes the file', () => {
    const fs = newFs()
    fs.putFile(SEG1, Buffer.concat([encodeSegmentHeader(1, SALT, 0), Buffer.from('garbage!')]))
    fs.failAt(1, 'EIO') // op 0 is the open, op 1 the ftruncate
    const err = thrownBy(() => WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 0, validEnd: 32 }, { sync: 'always' }))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL truncate failed on ${SEG1} (EIO)`)
    expect(fs.log.map((r) => r.op)).toEqual(['open', 'ftruncate'])
    expect(fs.openFileCount).toBe(0)
  })
})

describe('I/O error messages', () => {
  it('a failed write names the write step, the segment and the fs code', async () => {
    const fs = newFs()
    const w = await create(fs)
    fs.failAt(fs.opCount, 'ENOSPC')
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL write failed on ${SEG1} (ENOSPC)`)
    expect(w.failure).toBe(err)
    await w.close()
  })

  it('a failed datasync names the datasync step', async () => {
    const fs = newFs()
    const w = await create(fs)
    fs.failAt(fs.opCount + 1, 'EIO')
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(err.message).toBe(`WAL datasync failed on ${SEG1} (EIO)`)
    await w.close()
  })

  it('an fs error without a string code gets no code suffix', async () => {
    const fs = newFs()
    const w = await create(fs)
    const cause = Object.assign(new Error('odd'), { code: 5 })
    vi.spyOn(fs, 'write').mockImplementationOnce(() => {
      throw cause
    })
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL write failed on ${SEG1}`)
    expect(err.cause).toBe(cause)
    await w.close()
  })

  it('a write that makes no progress is an EIO write failure, not a hang', async () => {
    const fs = newFs()
    const w = await create(fs)
    vi.spyOn(fs, 'write').mockReturnValueOnce(0)
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL write failed on ${SEG1} (EIO)`)
    expect((err.cause as Error).message).toBe('write made no progress (0 bytes)')
    expect((err.cause as { code?: string }).code).toBe('EIO')
    await w.close()
  })

  it('a failure that is not an I/O error still poisons with KV_IO, the original as cause', async () => {
    const fs = newFs()
    const w = await create(fs, 'interval', 1, 0, { syncIntervalMs: 4321 })
    // A timer without unref() (as some runtimes return) makes arming the sync timer throw.
    const real = globalThis.setTimeout
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      if (ms === 4321) return 1 as unknown as NodeJS.Timeout
      return real(fn, ms)
    }) as typeof setTimeout)
    const err = await rejectionOf(w.append(1, 1, payloadFor(1)))
    expect(err).toBeInstanceOf(StoreError)
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL failed on ${SEG1}`)
    expect(err.cause).toBeInstanceOf(TypeError)
    expect(w.failure).toBe(err)
    vi.restoreAllMocks()
    await w.close()
  })
})

describe('close', () => {
  it('rejects when the final datasync fails', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    await w.append(1, 1, payloadFor(1))
    fs.failAt(fs.opCount, 'EIO')
    const err = await rejectionOf(w.close())
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL datasync failed on ${SEG1} (EIO)`)
    expect(fs.openFileCount).toBe(0)
  })

  it('rejects with KV_IO naming the close step when closing the file fails', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    await w.append(1, 1, payloadFor(1))
    const cause = fsErr('EIO')
    vi.spyOn(fs, 'close').mockImplementationOnce(() => {
      throw cause
    })
    const err = await rejectionOf(w.close())
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL close failed on ${SEG1} (EIO)`)
    expect(err.cause).toBe(cause)
    // Everything was made durable before the close.
    expect(durableSeqs(fs)).toEqual([1])
  })

  it('on a poisoned writer only closes the file and resolves, whatever close() says', async () => {
    const fs = newFs()
    const w = await create(fs)
    fs.failAt(fs.opCount, 'ENOSPC')
    await expect(w.append(1, 1, payloadFor(1))).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    const close = vi.spyOn(fs, 'close').mockImplementationOnce(() => {
      throw fsErr('EIO')
    })
    await expect(w.close()).resolves.toBeUndefined()
    expect(close).toHaveBeenCalledTimes(1)
  })

  it('closes nothing more after a rotation failed to create the next segment', async () => {
    const fs = newFs()
    const w = await create(fs)
    await w.append(1, 1, payloadFor(1))
    const close = vi.spyOn(fs, 'close')
    fs.failAt(fs.opCount, 'EIO') // the open of segment 2
    const err = await rejectionOf(w.rotate())
    expect(err.message).toBe(`WAL create failed on ${SEG2} (EIO)`)
    expect(close).toHaveBeenCalledTimes(1) // segment 1
    await w.close()
    expect(close).toHaveBeenCalledTimes(1)
    expect(fs.openFileCount).toBe(0)
  })
})

describe('rotation I/O', () => {
  it('does not datasync the old segment again when everything in it is already durable', async () => {
    const fs = newFs()
    const w = await create(fs, 'always')
    await w.append(1, 1, payloadFor(1))
    const before = fs.log.length
    expect(await w.rotate()).toBe(2)
    expect(fs.log.slice(before)).toEqual([
      { op: 'open', path: SEG2 },
      { op: 'write', path: SEG2 },
      { op: 'datasync', path: SEG2 },
      { op: 'fsyncDir', path: DIR },
    ])
    await w.close()
  })

  it('datasyncs the old segment before closing it when it holds unsynced records', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    await w.append(1, 1, payloadFor(1))
    const before = fs.log.length
    await w.rotate()
    expect(fs.log.slice(before).map((r) => `${r.op} ${r.path}`)).toEqual([`datasync ${SEG1}`, `open ${SEG2}`, `write ${SEG2}`, `datasync ${SEG2}`, `fsyncDir ${DIR}`])
    await w.close()
  })

  it('a failed close of the old segment rejects the rotation with KV_IO and poisons the writer', async () => {
    const fs = newFs()
    const w = await create(fs)
    await w.append(1, 1, payloadFor(1))
    vi.spyOn(fs, 'close').mockImplementationOnce(() => {
      throw fsErr('EIO')
    })
    const ops = fs.opCount
    const err = await rejectionOf(w.rotate())
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`WAL close failed on ${SEG1} (EIO)`)
    expect(w.failure).toBe(err)
    expect(fs.opCount).toBe(ops) // segment 2 was never created
    expect(fs.stat(SEG2)).toBeUndefined()
    await w.close()
  })
})

describe('flush waiters', () => {
  it('a flush issued during an in-flight datasync waits for the datasync that covers its own records', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    await w.append(1, 1, payloadFor(1))
    let release!: () => void
    fs.syncGate = () => {
      fs.syncGate = undefined
      return new Promise((resolve) => (release = resolve))
    }
    const first = w.flush()
    await tick()
    expect(fs.log.at(-1)?.op).toBe('datasync')
    const second = w.append(2, 1, payloadFor(2))
    let durableAtSecondFlush: number[] | undefined
    const secondFlush = w.flush().then(() => {
      durableAtSecondFlush = durableSeqs(fs)
    })
    let durableAtFirstFlush: number[] | undefined
    void first.then(() => {
      durableAtFirstFlush = durableSeqs(fs)
    })
    release()
    await Promise.all([first, second, secondFlush])
    expect(durableAtFirstFlush).toEqual([1])
    expect(durableAtSecondFlush).toEqual([1, 2])
    expect(fs.count('datasync')).toBe(3) // header, first flush, second flush
    await w.close()
  })
})

describe("'interval' sync timer", () => {
  it('arms one timer for several writes before it fires, and close() clears it', async () => {
    const fs = newFs()
    const w = await create(fs, 'interval', 1, 0, { syncIntervalMs: 60_000 })
    const armed: unknown[] = []
    const real = globalThis.setTimeout
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const t = real(fn, ms)
      if (ms === 60_000) armed.push(t)
      return t
    }) as typeof setTimeout)
    const cleared = vi.spyOn(globalThis, 'clearTimeout')
    await w.append(1, 1, payloadFor(1))
    await w.append(2, 1, payloadFor(2))
    await w.append(3, 1, payloadFor(3))
    expect(fs.count('datasync')).toBe(1) // the header's only
    expect(armed.length).toBe(1)
    await w.close()
    expect(cleared).toHaveBeenCalledWith(armed[0])
    expect(durableSeqs(fs)).toEqual([1, 2, 3])
  })

  it('poisoning clears the armed timer', async () => {
    const fs = newFs()
    const w = await create(fs, 'interval', 1, 0, { syncIntervalMs: 60_000 })
    const armed: unknown[] = []
    const real = globalThis.setTimeout
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const t = real(fn, ms)
      if (ms === 60_000) armed.push(t)
      return t
    }) as typeof setTimeout)
    const cleared = vi.spyOn(globalThis, 'clearTimeout')
    await w.append(1, 1, payloadFor(1))
    fs.failAt(fs.opCount, 'EIO')
    await expect(w.append(2, 1, payloadFor(2))).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    expect(armed.length).toBe(1)
    expect(cleared).toHaveBeenCalledWith(armed[0])
    await w.close()
  })
})

describe('automatic rotation at the exact size', () => {
  it('rotates when a record makes the segment exactly maxSegmentBytes, not one byte before', async () => {
    const frame = recordFrameSize(payloadFor(1).length)
    for (const [max, expected] of [
      [SEGMENT_HEADER_SIZE + 2 * frame, [[1, 2], [3, 4], []]],
      [SEGMENT_HEADER_SIZE + 2 * frame + 1, [[1, 2, 3], [4]]],
    ] as const) {
      const fs = newFs()
      const w = await create(fs, 'never', 1, 0, { maxSegmentBytes: max })
      for (let seq = 1; seq <= 4; seq++) await w.append(seq, 1, payloadFor(1))
      await w.close()
      const bySegment = new Map<number, number[]>()
      const wal = scanWal(fs, DIR, (r, segment) => bySegment.set(segment, [...(bySegment.get(segment) ?? []), r.seq]))
      expect(wal.segments.map((s) => bySegment.get(s.segment) ?? []), `max ${max}`).toEqual(expected)
    }
  })
})

describe('segment names', () => {
  it('segmentFileName rejects numbers outside [0, 2^32 - 1] with a message naming them', () => {
    expect(segmentFileName(MAX_SEGMENT_NUMBER)).toBe('wal-4294967295.log')
    expect(thrownBy(() => segmentFileName(-1))).toEqual(new RangeError('WAL segment number must be an integer in [0, 4294967295], got -1'))
    expect(thrownBy(() => segmentFileName(2 ** 32))).toEqual(new RangeError('WAL segment number must be an integer in [0, 4294967295], got 4294967296'))
  })

  it('parseSegmentFileName accepts the last segment number and nothing above it', () => {
    expect(parseSegmentFileName('wal-4294967295.log')).toBe(MAX_SEGMENT_NUMBER)
    expect(parseSegmentFileName('wal-4294967294.log')).toBe(MAX_SEGMENT_NUMBER - 1)
    expect(parseSegmentFileName('wal-4294967296.log')).toBeUndefined()
    expect(parseSegmentFileName('wal-9999999999.log')).toBeUndefined()
    expect(parseSegmentFileName('wal-0000000000.log')).toBe(0)
  })

  it('listSegments sorts numerically whatever order readdir returns', () => {
    const names = ['wal-0000000010.log', 'wal-0000000002.log', 'notes.txt', 'wal-0000000001.log', 'wal-0000000003.log', 'wal-0000000001.log.broken']
    const fs = { readdir: () => [...names] } as unknown as Fs
    expect(listSegments(fs, DIR)).toEqual([1, 2, 3, 10])
    const reversed = { readdir: () => [...names].reverse() } as unknown as Fs
    expect(listSegments(reversed, DIR)).toEqual([1, 2, 3, 10])
  })

  it('listSegments reports an unreadable directory as KV_IO with the fs error as cause', () => {
    const err = thrownBy(() => listSegments(newFs(), '/missing'))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe('cannot list WAL directory /missing')
    expect((err.cause as { code?: string }).code).toBe('ENOENT')
  })

  it('removeSegmentsBelow reports a failed unlink as KV_IO naming the segment, and stops there', () => {
    const fs = newFs()
    for (const n of [1, 2, 3]) fs.putFile(segmentPath(DIR, n), encodeSegmentHeader(n, SALT, 0))
    fs.failAt(fs.opCount, 'EIO')
    const err = thrownBy(() => removeSegmentsBelow(fs, DIR, 3))
    expect(isStoreError(err, 'KV_IO')).toBe(true)
    expect(err.message).toBe(`cannot delete covered WAL segment ${SEG1}`)
    expect((err.cause as { code?: string }).code).toBe('EIO')
    expect(listSegments(fs, DIR)).toEqual([1, 2, 3])
    removeSegmentsBelow(fs, DIR, 3)
    expect(listSegments(fs, DIR)).toEqual([3])
  })
})

// Appends records to the current WAL segment with group commit; see docs/FORMAT.md.

import type { Fs } from '../fs/fs.js'
import { StoreError } from '../errors.js'
import {
  MAX_PAYLOAD_BYTES,
  MAX_SEGMENT_NUMBER,
  RECORD_ALIGN,
  SEGMENT_HEADER_SIZE,
  encodeRecord,
  encodeSegmentHeader,
  randomSalt,
  recordFrameSize,
} from './format.js'
import { segmentPath } from './segments.js'

/**
 * When appended records are datasynced.
 *
 * - `'always'`: before the append's promise resolves (power-loss durable); appends made in the same
 *   tick share one datasync.
 * - `'interval'`: every `syncIntervalMs` after a write; the promise resolves once the bytes are written.
 * - `'never'`: only on `flush()`, `rotate()` and `close()`; the promise resolves once the bytes are written.
 *
 * Under every policy a resolved append has reached the OS, so it survives a process crash.
 */
export type SyncPolicy = 'always' | 'interval' | 'never'

/** Options of {@link WalWriter.create} and {@link WalWriter.openForAppend}. */
export interface WalWriterOptions {
  /** When to datasync; see {@link SyncPolicy}. */
  sync: SyncPolicy
  /**
   * Milliseconds between datasyncs under `'interval'`; ignored otherwise. Must be > 0.
   *
   * @defaultValue 100
   */
  syncIntervalMs?: number
  /**
   * Size past which the writer rotates to a new segment by itself, whatever compaction does, so
   * no segment grows without bound (the record that crosses it still goes to the old segment).
   * A positive integer.
   *
   * @defaultValue {@link DEFAULT_MAX_SEGMENT_BYTES} (256 MiB)
   */
  maxSegmentBytes?: number
  /** Permission bits of new segment files. @defaultValue the file system's default (0600 for the real one) */
  fileMode?: number
  /** @internal Salt source for new segments (tests use a fixed one). */
  newSalt?: () => number
}

/** What {@link WalWriter.openForAppend} needs to know about the segment, as found by `scanSegment`. */
export interface AppendPosition {
  /** The segment's salt (from its header). */
  salt: number
  /** The segment's base sequence (from its header). */
  baseSeq: number
  /** Seq of the last valid record, or `baseSeq` when there is none. */
  lastSeq: number
  /** Offset just past the last valid record; everything after it is cut off. */
  validEnd: number
}

interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(err: Error): void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

interface SyncWaiter {
  /** Resolve once `#syncedTotal >= target`. */
  readonly target: number
  resolve(): void
  reject(err: Error): void
}

interface Rotation {
  /** Records appended before `rotate()`, encoded with the old salt; they go to the old segment. */
  readonly carry: Buffer
  readonly carryLen: number
  readonly carryBatch: Deferred<void> | undefined
  readonly segment: number
  readonly salt: number
  readonly baseSeq: number
  readonly done: Deferred<number>
}

/** Default {@link WalWriterOptions.maxSegmentBytes}: 256 MiB. */
export const DEFAULT_MAX_SEGMENT_BYTES = 256 * 1024 * 1024

// Stryker disable next-line ArithmeticOperator: equivalent, performance only: #grow sizes the buffer to at least what a batch needs, so any initial size writes the same bytes
const INITIAL_BUFFER_BYTES = 64 * 1024
/** A batch buffer grown beyond this is dropped after its write, so one huge batch does not pin memory. */
// Stryker disable next-line ArithmeticOperator: equivalent, performance only: a dropped buffer is reallocated (and regrown) on demand
const MAX_RETAINED_BUFFER_BYTES = 4 * 1024 * 1024
const DEFAULT_SYNC_INTERVAL_MS = 100
const noop = (): void => {}

function ioError(op: string, path: string, err: unknown): StoreError {
  const code = (err as { code?: unknown } | null)?.code
  return new StoreError('KV_IO', `WAL ${op} failed on ${path}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err })
}

function closedError(): StoreError {
  return new StoreError('KV_CLOSED', 'the WAL writer is closed')
}

function checkOptions(opts: WalWriterOptions): void {
  if (opts.sync !== 'always' && opts.sync !== 'interval' && opts.sync !== 'never') {
    throw new TypeError(`sync must be 'always', 'interval' or 'never', got ${String(opts.sync)}`)
  }
  const ms = opts.syncIntervalMs
  if (ms !== undefined && !(Number.isFinite(ms) && ms > 0)) throw new RangeError(`syncIntervalMs must be > 0, got ${ms}`)
  const max = opts.maxSegmentBytes
  if (max !== undefined && !(Number.isSafeInteger(max) && max > 0)) throw new RangeError(`maxSegmentBytes must be a positive integer, got ${max}`)
}

function checkSeq(name: string, seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`${name} must be a safe non-negative integer, got ${seq}`)
}

function writeFully(fs: Fs, fd: number, buf: Uint8Array, len: number, position: number): void {
  let done = 0
  while (done < len) {
    const n = fs.write(fd, buf, done, len - done, position + done)
    // A write that makes no progress would loop forever; treat it as the I/O error it hides.
    if (!(n > 0)) throw Object.assign(new Error(`write made no progress (${n} bytes)`), { code: 'EIO' })
    done += n
  }
}

/** Create segment file `path` with its header, datasync it and fsync the directory; returns the open fd. */
async function createSegmentFile(
  fs: Fs,
  dir: string,
  path: string,
  segment: number,
  salt: number,
  baseSeq: number,
  mode: number | undefined,
): Promise<number> {
  let fd: number
  try {
    fd = fs.open(path, 'wx', mode)
  } catch (err) {
    throw ioError('create', path, err)
  }
  let op = 'write'
  try {
    const header = encodeSegmentHeader(segment, salt, baseSeq)
    writeFully(fs, fd, header, header.length, 0)
    op = 'datasync'
    await fs.datasync(fd)
    // The directory entry must be durable before any record in the file is acknowledged.
    op = 'directory fsync'
    await fs.fsyncDir(dir)
  } catch (err) {
    try {
      fs.close(fd)
    } catch {
      // Already failing; the first error is the one to report.
    }
    throw ioError(op, path, err)
  }
  return fd
}

/**
 * Appends records to one WAL segment at a time, with group commit.
 *
 * All appends issued in the same tick are encoded into one buffer, written with one `write()` and
 * covered by one datasync; appends issued while a datasync is in flight form the next batch. The
 * first write or datasync error poisons the writer: pending and later operations reject with
 * `KV_IO` (cause: the original error) and datasync is never retried. Recover by reopening.
 *
 * Not safe for concurrent use by several writers on the same segment; one `WalWriter` per directory.
 */
export class WalWriter {
  readonly #fs: Fs
  readonly #dir: string
  readonly #policy: SyncPolicy
  readonly #intervalMs: number
  readonly #maxSegmentBytes: number
  readonly #newSalt: () => number
  #segment: number
  #path: string
  /** Descriptor of segment `#segment`; -1 once closed. */
  #fd: number
  /** Bytes in the current segment file (header included) that `write()` accepted. */
  #fileEnd: number
  /** Salt for newly encoded records: that of the rotation target while a rotation is pending. */
  #salt: number
  #lastSeq: number
  /** Encoded records not yet handed to `write()`; `#batch` settles when they are written (and synced). */
  #buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES)
  #len = 0
  #batch: Deferred<void> | undefined
  // Byte counters over the writer's life (across segments) that order flushes. Invariant:
  // #syncedTotal <= #writtenTotal <= #queuedTotal. #syncedTotal starts at -1 after
  // openForAppend because the truncation there is not yet durable.
  #queuedTotal = 0
  #writtenTotal = 0
  #syncedTotal: number
  #waiters: SyncWaiter[] = []
  /**
   * Rotations requested and not yet done, oldest first. Each is sealed when requested: its carry
   * holds exactly the records appended since the previous request, so a rotation requested while
   * others are pending still sends every later append to its own (or a later) segment.
   */
  #rotations: Rotation[] = []
  /** `#queuedTotal` minus the bytes counted by {@link WalWriter.bytesSinceRotate}. */
  #rotateMark: number
  /** True while `#run` owns the I/O; only it writes, syncs and rotates, so I/O is never concurrent. */
  #busy = false
  #scheduled = false
  #idle: Promise<void> = Promise.resolve()
  #timer: ReturnType<typeof setTimeout> | undefined
  #failure: StoreError | undefined
  #closed = false
  #closePromise: Promise<void> | undefined

  readonly #fileMode: number | undefined

  private constructor(
    fs: Fs,
    dir: string,
    opts: WalWriterOptions,
    segment: number,
    fd: number,
    salt: number,
    lastSeq: number,
    fileEnd: number,
    truncated: boolean,
  ) {
    this.#fs = fs
    this.#dir = dir
    this.#policy = opts.sync
    this.#intervalMs = opts.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS
    this.#maxSegmentBytes = opts.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES
    this.#newSalt = opts.newSalt ?? randomSalt
    this.#fileMode = opts.fileMode
    this.#segment = segment
    this.#path = segmentPath(dir, segment)
    this.#fd = fd
    this.#salt = salt
    this.#lastSeq = lastSeq
    this.#fileEnd = fileEnd
    this.#rotateMark = -fileEnd
    this.#syncedTotal = truncated ? -1 : 0
  }

  /**
   * Create segment `segment` in `dir` (which must exist) and return a writer appending to it.
   *
   * Writes the 32-byte segment header with a fresh random salt, datasyncs it and fsyncs `dir`,
   * so the segment exists durably before any record in it is acknowledged. The first record
   * appended must have seq `baseSeq + 1`.
   *
   * @throws {@link StoreError} `KV_IO` when the file exists already (`EEXIST`) or any step fails;
   *   a partly created file may be left behind (recovery reads it as torn).
   * @throws TypeError / RangeError on invalid options, segment number or `baseSeq`.
   */
  static async create(fs: Fs, dir: string, segment: number, baseSeq: number, opts: WalWriterOptions): Promise<WalWriter> {
    checkOptions(opts)
    checkSeq('baseSeq', baseSeq)
    const path = segmentPath(dir, segment)
    const salt = (opts.newSalt ?? randomSalt)() >>> 0
    const fd = await createSegmentFile(fs, dir, path, segment, salt, baseSeq, opts.fileMode)
    return new WalWriter(fs, dir, opts, segment, fd, salt, baseSeq, SEGMENT_HEADER_SIZE, false)
  }

  /**
   * Reopen an existing segment after recovery and append after its last valid record.
   *
   * Truncates the file to `pos.validEnd` first, so no torn bytes remain in front of new records
   * (a length beyond the file extends it with zeros). The truncation becomes durable with the
   * next datasync. The next append must have seq `pos.lastSeq + 1`.
   *
   * @throws {@link StoreError} `KV_IO` when the file cannot be opened or truncated.
   * @throws TypeError / RangeError on invalid options or position (`validEnd` must be a multiple
   *   of 8 and at least 32; `baseSeq <= lastSeq`).
   */
  static openForAppend(fs: Fs, dir: string, segment: number, pos: AppendPosition, opts: WalWriterOptions): WalWriter {
    checkOptions(opts)
    checkSeq('baseSeq', pos.baseSeq)
    checkSeq('lastSeq', pos.lastSeq)
    if (pos.lastSeq < pos.baseSeq) throw new RangeError(`lastSeq ${pos.lastSeq} is below baseSeq ${pos.baseSeq}`)
    const end = pos.validEnd
    if (!Number.isSafeInteger(end) || end < SEGMENT_HEADER_SIZE || end % RECORD_ALIGN !== 0) {
      throw new RangeError(`validEnd must be a multiple of ${RECORD_ALIGN} and >= ${SEGMENT_HEADER_SIZE}, got ${end}`)
    }
    const path = segmentPath(dir, segment)
    let fd: number
    try {
      fd = fs.open(path, 'r+')
    } catch (err) {
      throw ioError('open', path, err)
    }
    try {
      fs.ftruncate(fd, end)
    } catch (err) {
      try {
        fs.close(fd)
      } catch {
        // Already failing; report the truncate error.
      }
      throw ioError('truncate', path, err)
    }
    return new WalWriter(fs, dir, opts, segment, fd, pos.salt >>> 0, pos.lastSeq, end, true)
  }

  /**
   * Segment that new appends go to (the new one as soon as `rotate()` is called, or as soon as an
   * append crosses `maxSegmentBytes`). To know which segment a given `rotate()` started, use the
   * number its promise resolves to: automatic rotations may have moved past it since.
   */
  get segment(): number {
    return this.#rotations[this.#rotations.length - 1]?.segment ?? this.#segment
  }

  /** Size the segment that new appends go to will have once everything queued is written (header included). */
  get sizeBytes(): number {
    return (this.#rotations.length === 0 ? this.#fileEnd : SEGMENT_HEADER_SIZE) + this.#len
  }

  /**
   * Bytes the log has grown by since the last explicit `rotate()` (or since the writer was
   * created or reopened, counting the segment's existing bytes), once everything queued is
   * written. Unlike {@link WalWriter.sizeBytes} it is not reset by automatic rotations, so it is
   * what a size-based compaction trigger should compare.
   */
  get bytesSinceRotate(): number {
    return this.#queuedTotal - this.#rotateMark
  }

  /** Seq of the last appended record (queued or written), or the base seq when there is none. */
  get lastSeq(): number {
    return this.#lastSeq
  }

  /** The `KV_IO` error that poisoned the writer, or `undefined` while it is healthy. */
  get failure(): Error | undefined {
    return this.#failure
  }

  /**
   * Append one record; resolves when it is written (and, under `'always'`, datasynced).
   *
   * The record is encoded synchronously, so append order is file order. Appends in the same tick
   * share one promise, one `write()` and one datasync. `payload` is copied before this returns.
   * Cost: O(payload) copy + two CRCs; no allocation besides batch-buffer growth.
   *
   * @throws RangeError (synchronously) unless `seq === lastSeq + 1`, `type` is an integer in
   *   1..255 and the payload is at most `MAX_PAYLOAD_BYTES`.
   * @returns a promise that rejects with `KV_IO` if the writer is or becomes poisoned (a write
   *   or datasync failed), or with `KV_CLOSED` after `close()`.
   */
  append(seq: number, type: number, payload: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#closed) return Promise.reject(closedError())
    if (seq !== this.#lastSeq + 1) throw new RangeError(`WAL append out of order: seq ${seq} after ${this.#lastSeq}`)
    if ((type & 0xff) !== type || type === 0) throw new RangeError(`WAL record type must be an integer in 1..255, got ${type}`)
    const len = payload.length
    if (len > MAX_PAYLOAD_BYTES) throw new RangeError(`WAL payload of ${len} bytes exceeds ${MAX_PAYLOAD_BYTES}`)
    const frame = recordFrameSize(len)
    const end = this.#len + frame
    if (end > this.#buf.length) this.#grow(end)
    encodeRecord(this.#buf, this.#len, this.#salt, seq, type, payload)
    this.#len = end
    this.#queuedTotal += frame
    this.#lastSeq = seq
    let batch = this.#batch
    if (batch === undefined) {
      batch = this.#batch = deferred()
      this.#kick()
    }
    // After the record is queued, so it is sealed into the segment it filled. A failed automatic
    // rotation poisons the writer (or, past the last segment number, leaves appends where they are).
    if (this.sizeBytes >= this.#maxSegmentBytes) this.#rotate(undefined, false).catch(noop)
    return batch.promise
  }

  /**
   * Write everything queued so far and datasync it, whatever the sync policy.
   *
   * Resolves at once when everything queued is already durable.
   *
   * @returns a promise that rejects with `KV_IO` when poisoned, `KV_CLOSED` after `close()`.
   */
  flush(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#closed) return Promise.reject(closedError())
    return this.#requestSync()
  }

  /**
   * Finish the current segment and continue in segment `segment + 1`; resolves to its number.
   *
   * Records appended before this call go to the old segment, which is written, datasynced and
   * closed; the new segment is created like {@link WalWriter.create} with `baseSeq = lastSeq`
   * (or `baseSeq` when given and larger: the sequence numbers in between are skipped).
   * Records appended after this call (even before it resolves) go to the new segment, also when
   * other rotations (explicit or automatic) are still in progress: rotations are sealed in call
   * order and carried out in that order, so segment `n` only ever holds records appended before
   * the rotation to `n + 1` was requested.
   *
   * A skipped range is a gap between segments that `scanWal` reports as corruption, so it is
   * only valid while something else (a snapshot at `baseSeq`) covers it.
   *
   * @returns a promise that rejects with `KV_IO` (and poisons the writer) if any step fails, with
   *   `KV_CLOSED` after `close()`, or with a RangeError when the segment number would exceed
   *   2^32 - 1 or `baseSeq` is not a safe non-negative integer.
   */
  rotate(baseSeq?: number): Promise<number> {
    return this.#rotate(baseSeq, true)
  }

  #rotate(baseSeq: number | undefined, explicit: boolean): Promise<number> {
    try {
      if (baseSeq !== undefined) checkSeq('baseSeq', baseSeq)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#closed) return Promise.reject(closedError())
    const segment = this.segment + 1
    if (segment > MAX_SEGMENT_NUMBER) return Promise.reject(new RangeError(`WAL segment number would exceed ${MAX_SEGMENT_NUMBER}`))
    // Seal the queued records (previous target's salt) for the previous target segment; later
    // appends use the new salt.
    const r: Rotation = {
      carry: this.#buf,
      carryLen: this.#len,
      carryBatch: this.#batch,
      segment,
      salt: this.#newSalt() >>> 0,
      baseSeq: Math.max(this.#lastSeq, baseSeq ?? 0),
      done: deferred(),
    }
    // A larger baseSeq skips sequence numbers (the store's `load` starts the new segment
    // after the versions it installed); the next append must follow it.
    this.#lastSeq = r.baseSeq
    if (this.#len > 0) this.#buf = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES)
    this.#len = 0
    this.#batch = undefined
    this.#salt = r.salt
    this.#rotations.push(r)
    if (explicit) this.#rotateMark = this.#queuedTotal - SEGMENT_HEADER_SIZE
    this.#kick()
    return r.done.promise
  }

  /**
   * Write and datasync everything queued, then close the segment file.
   *
   * Appends, flushes and rotations issued after this call reject with `KV_CLOSED`. Idempotent:
   * later calls return the same promise. On a writer poisoned before the call this only closes
   * the file and resolves (the failure was reported to the operations it affected).
   *
   * @returns a promise that rejects with `KV_IO` when the final write, datasync or close fails.
   */
  close(): Promise<void> {
    this.#closed = true
    return (this.#closePromise ??= this.#close())
  }

  async #close(): Promise<void> {
    const failedBefore = this.#failure !== undefined
    let error: unknown
    if (!failedBefore) {
      try {
        await this.#requestSync()
      } catch (err) {
        error = err
      }
    }
    await this.#idle
    this.#clearTimer()
    if (this.#fd >= 0) {
      const fd = this.#fd
      this.#fd = -1
      try {
        this.#fs.close(fd)
      } catch (err) {
        error ??= ioError('close', this.#path, err)
      }
    }
    if (error !== undefined && !failedBefore) throw error
  }

  #grow(need: number): void {
    // Stryker disable next-line ArithmeticOperator: equivalent, performance only: Math.max(need, ...) always fits the batch, doubling only saves reallocations
    const next = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2))
    this.#buf.copy(next, 0, 0, this.#len)
    this.#buf = next
  }

  #requestSync(): Promise<void> {
    const target = this.#queuedTotal
    if (target <= this.#syncedTotal) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject })
      this.#kick()
    })
  }

  #kick(): void {
    if (this.#busy || this.#scheduled) return
    this.#scheduled = true
    // nextTick runs after the current microtask queue drains, so appends issued from promise
    // continuations of the same tick still join this batch.
    process.nextTick(this.#onTick)
  }

  readonly #onTick = (): void => {
    this.#scheduled = false
    if (this.#busy) return
    this.#busy = true
    this.#idle = this.#run()
  }

  // The only place that does I/O after construction. Never rejects: errors poison the writer.
  async #run(): Promise<void> {
    let inflight: Deferred<void> | undefined
    try {
      while (this.#failure === undefined) {
        const rotation = this.#rotations[0]
        if (rotation !== undefined) {
          await this.#rotateNow(rotation)
          continue
        }
        if (this.#len > 0) {
          inflight = this.#batch
          this.#batch = undefined
          const len = this.#len
          this.#len = 0
          this.#write(this.#buf, len)
          if (this.#buf.length > MAX_RETAINED_BUFFER_BYTES) this.#buf = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES)
          if (this.#policy === 'always' || this.#waiters.length > 0) await this.#datasync()
          else if (this.#policy === 'interval') this.#armTimer()
          inflight?.resolve()
          inflight = undefined
          continue
        }
        if (this.#waiters.length > 0) {
          // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, with nothing queued and no rotation pending a waiter's target is <= #writtenTotal, so an unsettled waiter means #syncedTotal < #writtenTotal and the else branch is never taken
          if (this.#syncedTotal < this.#writtenTotal) await this.#datasync()
          // Nothing queued and nothing unsynced: every waiter's target is reached.
          else this.#settleWaiters()
          continue
        }
        break
      }
    } catch (err) {
      this.#poison(err, inflight)
    } finally {
      this.#busy = false
    }
  }

  /** Write `buf[0, len)` at the end of the current segment, all of it, or throw `KV_IO`. */
  #write(buf: Buffer, len: number): void {
    try {
      writeFully(this.#fs, this.#fd, buf, len, this.#fileEnd)
    } catch (err) {
      // Cut the partly written batch so no torn record stays in the file (Redis does the same);
      // best effort: the writer is poisoned either way, and recovery treats a torn end as torn.
      try {
        this.#fs.ftruncate(this.#fd, this.#fileEnd)
      } catch {
        // Keep the write error.
      }
      throw ioError('write', this.#path, err)
    }
    this.#fileEnd += len
    this.#writtenTotal += len
  }

  async #datasync(): Promise<void> {
    const covered = this.#writtenTotal
    try {
      await this.#fs.datasync(this.#fd)
    } catch (err) {
      // Never retried: after a failed fsync the kernel may have dropped the dirty pages.
      throw ioError('datasync', this.#path, err)
    }
    this.#syncedTotal = covered
    this.#settleWaiters()
  }

  #settleWaiters(): void {
    const waiters = this.#waiters
    let kept = 0
    for (const w of waiters) {
      if (w.target <= this.#syncedTotal) w.resolve()
      else waiters[kept++] = w
    }
    waiters.length = kept
  }

  async #rotateNow(r: Rotation): Promise<void> {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, writing an empty carry issues no fs call (writeFully loops while done < len) and adds 0 to the counters
    if (r.carryLen > 0) this.#write(r.carry, r.carryLen)
    if (this.#syncedTotal < this.#writtenTotal) await this.#datasync()
    r.carryBatch?.resolve()
    const fd = this.#fd
    this.#fd = -1
    try {
      this.#fs.close(fd)
    } catch (err) {
      throw ioError('close', this.#path, err)
    }
    const path = segmentPath(this.#dir, r.segment)
    this.#fd = await createSegmentFile(this.#fs, this.#dir, path, r.segment, r.salt, r.baseSeq, this.#fileMode)
    this.#segment = r.segment
    this.#path = path
    this.#fileEnd = SEGMENT_HEADER_SIZE
    this.#rotations.shift()
    r.done.resolve(r.segment)
  }

  #armTimer(): void {
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(this.#onTimer, this.#intervalMs)
    this.#timer.unref()
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent, #poison clears the timer, and one firing after close() only adds a waiter that close()'s own datasync settles (#close clears it before closing the fd)
    if (this.#failure === undefined && !this.#closed) this.#requestSync().catch(noop)
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #poison(err: unknown, inflight: Deferred<void> | undefined): void {
    const failure = (this.#failure ??=
      err instanceof StoreError && err.code === 'KV_IO' ? err : new StoreError('KV_IO', `WAL failed on ${this.#path}`, { cause: err }))
    inflight?.reject(failure)
    this.#batch?.reject(failure)
    this.#batch = undefined
    this.#len = 0
    for (const r of this.#rotations) {
      r.carryBatch?.reject(failure)
      r.done.reject(failure)
    }
    this.#rotations = []
    for (const w of this.#waiters) w.reject(failure)
    this.#waiters = []
    this.#clearTimer()
  }
}

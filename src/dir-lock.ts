import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { StoreError } from './errors.js'
import type { Fs } from './fs/fs.js'

/** Name of the lock file inside a store directory. */
export const LOCK_FILE = 'LOCK'
const BREAKER_FILE = 'LOCK.breaking'
/** A breaker left by a process that died mid-takeover is ignored after this long. */
const BREAKER_STALE_MS = 10_000
/** How long an opener keeps trying to take over a stale lock before giving up. */
const TAKEOVER_WAIT_MS = 5_000
const HALF_WRITTEN_GRACE_MS = 1_000

interface LockOwner {
  pid: number
  /** Process start time (Linux: clock ticks since boot) so a reused pid is not mistaken for the owner. */
  start: string
  host: string
}

// Directories held by Stores in this process, per file system: a second open fails
// fast without touching disk.
const heldHere = new WeakMap<Fs, Set<string>>()

function heldOn(fs: Fs): Set<string> {
  let set = heldHere.get(fs)
  if (set === undefined) heldHere.set(fs, (set = new Set()))
  return set
}

function processStart(pid: number): string {
  try {
    // Field 22 of /proc/<pid>/stat; the command name (field 2) may contain spaces, so parse after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19] ?? ''
  } catch {
    return ''
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true // cannot tell across machines: assume held
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    return true // EPERM: alive, owned by another user
  }
  const start = processStart(owner.pid)
  return owner.start === '' || start === '' || start === owner.start
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Exclusive ownership of a store directory: one `Store` per directory, across
 * processes and within one.
 *
 * The lock is a `LOCK` file created with `O_EXCL`, holding the owner's pid, process
 * start time and host. A lock whose owner process is gone (killed with -9, say) is
 * taken over; taking over is serialised by an atomic `mkdir` so two openers racing
 * for a stale lock cannot both win.
 */
export class DirLock {
  readonly #fs: Fs
  readonly #dir: string
  #held = true

  private constructor(fs: Fs, dir: string) {
    this.#fs = fs
    this.#dir = dir
  }

  /**
   * Take the lock on `dir` (which must exist).
   *
   * @throws {@link StoreError} `KV_LOCKED` when a live process (or this one) holds it;
   *   `KV_IO` when the lock file cannot be written.
   */
  static acquire(fs: Fs, dir: string): DirLock {
    const abs = resolve(dir)
    if (heldOn(fs).has(abs)) throw new StoreError('KV_LOCKED', `${abs} is already open in this process`)
    const path = join(abs, LOCK_FILE)
    const me: LockOwner = { pid: process.pid, start: processStart(process.pid), host: hostname() }
    const deadline = Date.now() + TAKEOVER_WAIT_MS
    while (Date.now() < deadline) {
      if (tryCreate(fs, path, me)) {
        heldOn(fs).add(abs)
        return new DirLock(fs, abs)
      }
      const owner = readOwner(fs, path)
      // Our own pid on a directory no Store here holds: left by a store of this process
      // that never released it (its file system image was restored after a simulated crash).
      const ownStale = owner !== undefined && owner.pid === process.pid && owner.host === hostname()
      if (owner && !ownStale && isAlive(owner)) {
        throw new StoreError('KV_LOCKED', `${abs} is locked by process ${owner.pid} on ${owner.host}`)
      }
      if (owner === undefined) {
        // Unreadable: an owner may be between creating and writing it. Only a lock
        // that stays unreadable for a while is treated as left by a crash.
        const st = fs.stat(path)
        if (st !== undefined && Date.now() - st.mtimeMs < HALF_WRITTEN_GRACE_MS) {
          sleepSync(10)
          continue
        }
      }
      if (!breakStale(fs, abs, path, owner)) sleepSync(10)
    }
    throw new StoreError('KV_LOCKED', `${abs}: could not take over a stale lock`)
  }

  /** Release the lock. Calling it twice is harmless. */
  release(): void {
    if (!this.#held) return
    this.#held = false
    heldOn(this.#fs).delete(this.#dir)
    try {
      this.#fs.unlink(join(this.#dir, LOCK_FILE))
    } catch {
      // Already gone: a later opener treats a missing lock as free anyway.
    }
  }
}

function tryCreate(fs: Fs, path: string, me: LockOwner): boolean {
  let fd: number
  try {
    fd = fs.open(path, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new StoreError('KV_IO', `cannot create lock file ${path}`, { cause: err })
  }
  try {
    const bytes = Buffer.from(JSON.stringify(me))
    let off = 0
    while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, off)
  } finally {
    fs.close(fd)
  }
  return true
}

function readOwner(fs: Fs, path: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(fs.readFile(path).toString('utf8')) as Partial<LockOwner>
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') {
      return { pid: parsed.pid, start: String(parsed.start ?? ''), host: parsed.host }
    }
  } catch {
    // Missing (released meanwhile) or half-written by an owner killed mid-create.
  }
  return undefined
}

/** Remove a stale lock while holding the breaker file. Returns true when it made progress. */
function breakStale(fs: Fs, dir: string, path: string, seen: LockOwner | undefined): boolean {
  const breaker = join(dir, BREAKER_FILE)
  let fd: number
  try {
    fd = fs.open(breaker, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new StoreError('KV_IO', `cannot create ${breaker}`, { cause: err })
    }
    const st = fs.stat(breaker)
    if (st !== undefined && Date.now() - st.mtimeMs > BREAKER_STALE_MS) {
      try {
        fs.unlink(breaker)
      } catch {
        // Another opener cleared it first.
      }
      return true
    }
    return false
  }
  fs.close(fd)
  try {
    // Re-check under the breaker: the lock may have been replaced by a live owner meanwhile.
    const now = readOwner(fs, path)
    const same =
      now === undefined ? seen === undefined : seen !== undefined && now.pid === seen.pid && now.start === seen.start
    if (same && (now === undefined || now.pid === process.pid || !isAlive(now))) {
      try {
        fs.unlink(path)
      } catch {
        // Already removed: the next create attempt decides.
      }
    }
    return true
  } finally {
    fs.unlink(breaker)
  }
}

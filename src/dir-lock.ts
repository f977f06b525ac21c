import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { StoreError } from './errors.js'
import type { Fs } from './fs/fs.js'

/** Name of the lock file inside a store directory. */
export const LOCK_FILE = 'LOCK'
/** Longest lock file name: the names derived from it (claims, nested breakers) must fit in 255 bytes. */
const MAX_NAME_LENGTH = 120
/** Older versions took their breaker (`LOCK.breaking`, an empty file) over after this long. */
const LEGACY_BREAKER_STALE_MS = 10_000
/** Breakers of breakers of … nest at most this deep (each level needs an opener to die mid-takeover). */
const MAX_BREAKER_DEPTH = 4
/** How long an opener keeps trying to take over a stale lock before giving up. */
const TAKEOVER_WAIT_MS = 5_000
/** A claim file still unreadable after this long was left by an opener killed between creating and writing it. */
const CLAIM_WRITE_GRACE_MS = 10_000
/** Lock files are a few dozen bytes; a longer one is garbage, and only this much of it is compared. */
const MAX_LOCK_BYTES = 4096
const NONCE_BYTES = 8

/** The files of one lock, all named after the lock file (`LOCK` below). */
interface LockNames {
  /** `LOCK` itself. */
  readonly lock: string
  /** `LOCK.claim-<nonce>`: an opener's lock content, written in full before it is linked as `LOCK`. */
  claim(nonce: string): string
  readonly claimName: RegExp
  /** `LOCK.breaking-<id>`, `LOCK.breaking-<id>.breaking-<id>` …: breaker of the stale file named by the prefix. */
  readonly breakerName: RegExp
  /** `<lock file or breaker>.stale-<nonce>`: a stale file moved aside by the opener with that claim. */
  readonly asideName: RegExp
  /** The breaker older versions used. */
  readonly legacyBreaker: string
}

function lockNames(lock: string): LockNames {
  const q = lock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return {
    lock,
    claim: (nonce) => `${lock}.claim-${nonce}`,
    claimName: new RegExp(`^${q}\\.claim-([0-9a-f]{16})$`),
    breakerName: new RegExp(`^${q}(?:\\.breaking-[0-9a-f]{16})+$`),
    asideName: new RegExp(`^${q}(?:\\.breaking-[0-9a-f]{16})*\\.stale-([0-9a-f]{16})$`),
    legacyBreaker: `${lock}.breaking`,
  }
}

/** Options of {@link DirLock.acquire}. */
export interface DirLockOptions {
  /**
   * Name of the lock file in the directory: a plain file name of at most 120
   * characters. A snapshot-file store locks `<file name>.lock` beside its file.
   * @defaultValue {@link LOCK_FILE}
   */
  name?: string
}
/**
 * Mode of lock files: an owner record, not store data, readable by anyone who can reach
 * the directory, so that another user's opener reports who holds it (`KV_LOCKED`)
 * instead of failing to read it.
 */
const LOCK_FILE_MODE = 0o644
/** Largest pid any supported OS hands out (`pid_t` is a signed 32-bit integer). */
const MAX_PID = 0x7fff_ffff

interface LockOwner {
  pid: number
  /** Process start time (Linux: clock ticks since boot) so a reused pid is not mistaken for the owner. */
  start: string
  host: string
  /** Random per claim (absent in locks written by older versions): no two lock files have the same bytes. */
  nonce?: string
}

/** A lock file as read through one descriptor: identity and content belong to the same file. */
interface LockImage {
  readonly dev: number | undefined
  readonly ino: number | undefined
  readonly size: number
  /** The first {@link MAX_LOCK_BYTES} bytes. */
  readonly bytes: Buffer
  readonly mtimeMs: number
  /** `undefined`: garbage (not a lock this or an older version writes, or a pid no process can have). */
  readonly owner: LockOwner | undefined
}

/**
 * Locks held by `DirLock`s in this thread, by lock file path (the directory's real
 * path joined with the lock's name), per file system.
 *
 * It lives on `globalThis` under a registered symbol, so every copy of kvstore loaded
 * (the ESM and the CJS build, two installed versions) shares it: keyed by the module's
 * own map, each copy would open a directory another copy holds. The real file system
 * is keyed by its `Fs.scope` (one value in every copy), a private `Fs` by the object.
 * The shape is fixed for the `v1` key; a different shape needs a new key. Copies that
 * do not share the registry (other keys, worker threads) still exclude each other:
 * on the real file system a `LOCK` naming this process is never taken over.
 */
interface Registry {
  readonly scoped: Map<symbol, Set<string>>
  readonly private: WeakMap<object, Set<string>>
}

// Stryker disable next-line StringLiteral: read once at import, where a per-test switch cannot reach it; applied by hand, dir-lock-mutants' registry test fails.
const REGISTRY_KEY = Symbol.for('kvstore.dirLocks.v1')

function heldOn(fs: Fs): Set<string> {
  const g = globalThis as { [REGISTRY_KEY]?: Registry }
  const reg = (g[REGISTRY_KEY] ??= { scoped: new Map(), private: new WeakMap() })
  let set = fs.scope !== undefined ? reg.scoped.get(fs.scope) : reg.private.get(fs)
  if (set === undefined) {
    set = new Set()
    if (fs.scope !== undefined) reg.scoped.set(fs.scope, set)
    else reg.private.set(fs, set)
  }
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

let myStartCache: string | undefined
/** This process's start time, read once (not at import: importing does no I/O). */
function myStart(): string {
  return (myStartCache ??= processStart(process.pid))
}

/**
 * Whether the owner of a well-formed lock may still hold it.
 *
 * Our own pid (with our start time) is this process: on the real file system another
 * copy of kvstore or a worker thread holds the directory, and taking it over would
 * give two stores one directory. Only on a private `Fs` (no `scope`: no other thread
 * or process sees its files) is it a leftover of a simulated crash, an image the test
 * restored while no `DirLock` holds it.
 */
function ownerLive(fs: Fs, owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true // cannot tell across machines: assume held
  if (owner.pid === process.pid) {
    const reused = owner.start !== '' && myStart() !== '' && owner.start !== myStart()
    return !reused && fs.scope !== undefined
  }
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    return true // EPERM: alive, owned by another user
  }
  const start = processStart(owner.pid)
  return owner.start === '' || start === '' || start === owner.start
}

/** The owner a lock file names, or `undefined` for garbage. */
function parseOwner(bytes: Buffer): LockOwner | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  // A number, string or array destructures to undefined fields and fails the pid check; null would throw.
  if (parsed === null) return undefined
  const { pid, start, host, nonce } = parsed as Record<string, unknown>
  // A pid no process can have (1.5, -1, 2^40) would otherwise count as alive forever:
  // process.kill rejects it (or, for -1 and 0, signals a whole group) instead of ESRCH.
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > MAX_PID) return undefined
  if (typeof host !== 'string' || host === '') return undefined
  if (start !== undefined && typeof start !== 'string' && typeof start !== 'number') return undefined
  const owner: LockOwner = { pid, start: String(start ?? ''), host }
  if (typeof nonce === 'string') owner.nonce = nonce
  return owner
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}

function ioError(message: string, cause: unknown): StoreError {
  return cause instanceof StoreError ? cause : new StoreError('KV_IO', message, { cause })
}

/** Read a lock file, or `undefined` when there is none. @throws {@link StoreError} `KV_IO`. */
function readImage(fs: Fs, path: string): LockImage | undefined {
  let fd: number
  try {
    fd = fs.open(path, 'r')
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined
    throw ioError(`cannot read lock file ${path}`, err)
  }
  try {
    const st = fs.fstat(fd)
    const buf = Buffer.alloc(Math.min(st.size, MAX_LOCK_BYTES))
    let off = 0
    // Stryker disable next-line EqualityOperator: at off === buf.length a read of 0 bytes returns 0 and the loop ends the same.
    while (off < buf.length) {
      const n = fs.read(fd, buf, off, buf.length - off, off)
      if (n === 0) break
      off += n
    }
    const bytes = buf.subarray(0, off)
    const owner = st.size > MAX_LOCK_BYTES ? undefined : parseOwner(bytes)
    return { dev: st.dev, ino: st.ino, size: st.size, bytes, mtimeMs: st.mtimeMs, owner }
  } catch (err) {
    throw ioError(`cannot read lock file ${path}`, err)
  } finally {
    try {
      fs.close(fd)
    } catch {
      // Read-only descriptor: nothing is lost.
    }
  }
}

/**
 * Whether two images are the same file: same inode (when the `Fs` reports one) and same
 * bytes. The bytes matter because a freed inode number is soon reused; a lock this
 * version writes carries a nonce, so no two have the same bytes.
 */
function sameFile(a: LockImage, b: LockImage): boolean {
  // Files in one directory share a device; the device only makes the inode number unique.
  // Stryker disable next-line ConditionalExpression: every file compared is in one directory, so its device always matches.
  const sameDevice = a.dev === b.dev
  // No size check: a lock file of at most 4 KiB is all in `bytes`; two longer ones are both garbage, taken over alike.
  return sameDevice && a.ino === b.ino && a.bytes.equals(b.bytes)
}

/** Link `claim` as `name`; false when `name` exists. @throws {@link StoreError} `KV_IO`. */
function tryLink(fs: Fs, claim: string, name: string): boolean {
  if (fs.link === undefined) throw new StoreError('KV_IO', `cannot lock ${name}: the file system has no link()`)
  try {
    fs.link(claim, name)
    return true
  } catch (err) {
    if (code(err) === 'EEXIST') return false
    throw ioError(`cannot create lock file ${name}`, err)
  }
}

function unlinkQuietly(fs: Fs, path: string): void {
  try {
    fs.unlink(path)
  } catch {
    // Gone already, or unremovable: a leftover the next holder sweeps (see sweepLeftovers).
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Exclusive ownership of a store directory: one `Store` per directory, across
 * processes, across copies of kvstore in one process, and within one. (Or of one
 * named lock in a directory: see {@link DirLockOptions.name}.)
 *
 * Protocol (every step atomic on POSIX file systems):
 * 1. The opener writes its owner record (pid, process start time, host, a random
 *    nonce) to its own `LOCK.claim-<nonce>`, created exclusively.
 * 2. It `link()`s the claim as `LOCK`. Exactly one of several openers succeeds, and
 *    `LOCK` is never seen empty or half-written: a garbage `LOCK` is never an
 *    opener's work in progress, it was left by power loss or someone else.
 * 3. A `LOCK` whose owner is alive (or is this process, on the real file system)
 *    means `KV_LOCKED`. A garbage one, or one whose owner is gone (kill -9), is
 *    stale and is removed under a breaker, then step 2 is retried.
 *
 * Removing a stale file is serialised by a breaker named after the very file judged
 * stale, `LOCK.breaking-<id>` (`id` hashes its inode and bytes), taken by linking the
 * opener's claim to that name. Its holder checks that `LOCK` is still that file (it
 * may have been replaced by a live owner since it was judged), renames it aside,
 * checks the file moved is that one (putting it back otherwise), and deletes it.
 * Only a breaker's holder removes a `LOCK` it does not own, and the breaker names one
 * file, so between that check and the rename the file cannot change. A breaker whose
 * holder died is itself a stale file, removed the same way under its own breaker
 * (`LOCK.breaking-<id>.breaking-<id>`): no name is ever reused for another file, so
 * no two openers can both think they hold one (a fixed breaker name, once broken,
 * could be held by two).
 */
export class DirLock {
  readonly #fs: Fs
  /** The lock file. */
  readonly #path: string
  readonly #key: string
  readonly #mine: LockImage
  #held = true

  private constructor(fs: Fs, path: string, key: string, mine: LockImage) {
    this.#fs = fs
    this.#path = path
    this.#key = key
    this.#mine = mine
  }

  /**
   * Take the lock on `dir` (which must exist), held in `dir/LOCK` (or `opts.name`).
   *
   * Synchronous: it may wait (blocking, up to 5 s in all) while another opener is
   * taking over a stale lock.
   *
   * @throws {@link StoreError} `KV_LOCKED` when a live process (or this one, through
   *   any copy of kvstore) holds it, or a stale lock could not be taken over in time;
   *   `KV_IO` (cause: the original error, message naming the path) when a lock file
   *   cannot be read or written. A failed call leaves no `LOCK` of its own behind.
   *   `KV_INVALID_ARGUMENT` for a bad `opts.name`.
   */
  static acquire(fs: Fs, dir: string, opts: DirLockOptions = {}): DirLock {
    const name = opts.name ?? LOCK_FILE
    if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || name.length > MAX_NAME_LENGTH) {
      throw new StoreError('KV_INVALID_ARGUMENT', `lock name must be a plain file name of at most ${MAX_NAME_LENGTH} characters`)
    }
    const names = lockNames(name)
    const abs = resolve(dir)
    let key: string
    try {
      key = join(fs.realpath?.(abs) ?? abs, name)
    } catch (err) {
      throw ioError(`cannot lock ${join(abs, name)}: cannot resolve ${abs}`, err)
    }
    const held = heldOn(fs)
    if (held.has(key)) throw new StoreError('KV_LOCKED', `${name === LOCK_FILE ? abs : key} is already open in this process`)
    held.add(key)
    try {
      const nonce = randomBytes(NONCE_BYTES).toString('hex')
      const me: LockOwner = { pid: process.pid, start: myStart(), host: hostname(), nonce }
      const claim = join(abs, names.claim(nonce))
      const mine = writeClaim(fs, claim, me)
      try {
        takeLock(fs, abs, names.lock, claim, mine)
      } finally {
        // Held or not, the claim's name goes: when held, `LOCK` names the same file.
        unlinkQuietly(fs, claim)
      }
      sweepLeftovers(fs, abs, names)
      return new DirLock(fs, join(abs, names.lock), key, mine)
    } catch (err) {
      held.delete(key)
      throw err
    }
  }

  /** Release the lock. Calling it twice is harmless. */
  release(): void {
    if (!this.#held) return
    this.#held = false
    const path = this.#path
    try {
      // Only our own file: one put there by someone else (after ours was deleted by
      // hand) is theirs to release.
      const now = readImage(this.#fs, path)
      if (now !== undefined && sameFile(now, this.#mine)) this.#fs.unlink(path)
    } catch {
      // Unreadable or unremovable: another process sees a dead owner once we exit.
    } finally {
      heldOn(this.#fs).delete(this.#key)
    }
  }
}

/** Create `claim` exclusively with `me` in it. @throws {@link StoreError} `KV_IO`; nothing is left behind. */
function writeClaim(fs: Fs, claim: string, me: LockOwner): LockImage {
  let fd: number
  try {
    fd = fs.open(claim, 'wx', LOCK_FILE_MODE)
  } catch (err) {
    throw ioError(`cannot create lock file ${claim}`, err)
  }
  try {
    const bytes = Buffer.from(JSON.stringify(me))
    let off = 0
    while (off < bytes.length) {
      const n = fs.write(fd, bytes, off, bytes.length - off, off)
      if (n <= 0) throw Object.assign(new Error(`short write to ${claim}`), { code: 'EIO' })
      off += n
    }
    // No fsync: the lock excludes live processes, which see the page cache. After
    // power loss `LOCK` may come back empty, which is garbage and taken over, rightly.
    const st = fs.fstat(fd)
    const open = fd
    // Not closed again if close fails: Linux frees the descriptor either way, and a
    // second close could hit a descriptor another file has been given meanwhile.
    fd = -1
    fs.close(open)
    return { dev: st.dev, ino: st.ino, size: bytes.length, bytes, mtimeMs: st.mtimeMs, owner: me }
  } catch (err) {
    if (fd !== -1) {
      try {
        fs.close(fd)
      } catch {
        // Already failing.
      }
    }
    unlinkQuietly(fs, claim)
    throw ioError(`cannot write lock file ${claim}`, err)
  }
}

/** Link `claim` as `LOCK`, taking over a stale lock if need be. @throws {@link StoreError} `KV_LOCKED`, `KV_IO`. */
function takeLock(fs: Fs, dir: string, name: string, claim: string, mine: LockImage): void {
  const lock = join(dir, name)
  const deadline = Date.now() + TAKEOVER_WAIT_MS
  for (;;) {
    if (tryLink(fs, claim, lock)) return
    const seen = readImage(fs, lock)
    if (seen !== undefined) {
      // A link that succeeded but reported EEXIST (NFS replays a retransmitted request).
      if (sameFile(seen, mine)) return
      const owner = seen.owner
      if (owner !== undefined && ownerLive(fs, owner)) {
        const who = owner.pid === process.pid ? ' (this process: another copy of kvstore or a worker thread)' : ''
        const what = name === LOCK_FILE ? dir : lock
        throw new StoreError('KV_LOCKED', `${what} is locked by process ${owner.pid} on ${owner.host}${who}`)
      }
    }
    if (Date.now() >= deadline) throw new StoreError('KV_LOCKED', `${name === LOCK_FILE ? dir : lock}: could not take over a stale lock`)
    // Missing: released meanwhile, link again at once. Otherwise stale: garbage or its owner is gone.
    if (seen !== undefined && !breakStale(fs, claim, mine, lock, seen)) sleepSync(10)
  }
}

/** Breaker name for removing the file at `path`, judged stale as `seen`. */
function breakerFor(path: string, seen: LockImage): string {
  const id = createHash('sha256')
    .update(`${seen.dev ?? ''}:${seen.ino ?? ''}:${seen.size}:`)
    .update(seen.bytes)
    .digest('hex')
    .slice(0, 16)
  return `${path}.breaking-${id}`
}

/**
 * Remove the file at `path`, judged stale as `seen`, under its breaker. Returns false
 * when a live opener holds the breaker (wait, then look again), true when the caller
 * should look again at once.
 */
function breakStale(fs: Fs, claim: string, mine: LockImage, path: string, seen: LockImage, depth = 0): boolean {
  const breaker = breakerFor(path, seen)
  if (!tryLink(fs, claim, breaker)) {
    const holder = readImage(fs, breaker)
    if (holder === undefined) return true // released meanwhile
    if (holder.owner !== undefined && ownerLive(fs, holder.owner)) return false
    if (depth >= MAX_BREAKER_DEPTH) return false
    // Its holder died mid-takeover (or it is garbage): a stale file like any other.
    return breakStale(fs, claim, mine, breaker, holder, depth + 1)
  }
  try {
    // Nobody else removes this file while we hold its breaker; but it may have been
    // replaced (by its owner's release and a new owner's link) since it was judged.
    const now = readImage(fs, path)
    if (now !== undefined && sameFile(now, seen)) removeIfSame(fs, path, seen, (mine.owner as LockOwner).nonce as string)
    return true
  } finally {
    // Left in place when it cannot be removed: its holder (this process) is alive for
    // now, and once it is gone the breaker is stale and swept.
    const now = readImageQuietly(fs, breaker)
    if (now !== undefined && sameFile(now, mine)) unlinkQuietly(fs, breaker)
  }
}

function readImageQuietly(fs: Fs, path: string): LockImage | undefined {
  let image: LockImage | undefined
  try {
    image = readImage(fs, path)
  } catch {
    // Unreadable counts as absent; the caller decides what an absent lock means.
  }
  return image
}

/**
 * Delete `path` if it is the file `judged`. Checking and deleting cannot be one step:
 * the file is renamed aside (atomic: whatever is at `path` moves), and the file moved
 * is compared with the one judged: a different one is put back. Under the file's
 * breaker it is always the one judged; the check guards that invariant.
 */
function removeIfSame(fs: Fs, path: string, judged: LockImage, nonce: string): void {
  const aside = `${path}.stale-${nonce}`
  try {
    fs.rename(path, aside)
  } catch (err) {
    if (code(err) === 'ENOENT') return // removed by someone else: the caller looks again
    throw ioError(`cannot move stale lock file ${path} aside`, err)
  }
  const moved = readImage(fs, aside)
  if (moved !== undefined && !sameFile(moved, judged)) {
    try {
      fs.link?.(aside, path)
    } catch (err) {
      // EEXIST would need a file to take the name while this one was aside, which the
      // breaker rules out; the file moved is dropped then, and its owner's release
      // leaves the new one alone.
      if (code(err) !== 'EEXIST') {
        unlinkQuietly(fs, aside)
        throw ioError(`cannot restore lock file ${path}`, err)
      }
    }
  }
  try {
    fs.unlink(aside)
  } catch (err) {
    if (code(err) !== 'ENOENT') throw ioError(`cannot remove stale lock file ${aside}`, err)
  }
}

/**
 * Delete what openers that died mid-way left: claim files, breakers, stale files moved
 * aside. Housekeeping only, run by the holder (so no stale `LOCK` is left for a breaker
 * to guard): errors are ignored.
 */
function sweepLeftovers(fs: Fs, dir: string, of: LockNames): void {
  let names: string[]
  try {
    names = fs.readdir(dir)
  } catch {
    return
  }
  const now = Date.now()
  for (const name of names) {
    const legacy = name === of.legacyBreaker
    if (!legacy && !of.claimName.test(name) && !of.breakerName.test(name)) continue
    const path = join(dir, name)
    const img = readImageQuietly(fs, path)
    if (img === undefined) continue
    // An unreadable claim is being written (for microseconds) or its writer died; a
    // breaker is a link of a complete claim.
    const abandoned = legacy
      ? now - img.mtimeMs > LEGACY_BREAKER_STALE_MS
      : img.owner !== undefined
        ? !ownerLive(fs, img.owner)
        : now - img.mtimeMs > CLAIM_WRITE_GRACE_MS
    if (abandoned) unlinkQuietly(fs, path)
  }
  for (const name of names) {
    const m = of.asideName.exec(name)
    if (m === null) continue
    // A live opener's claim outlives the files it moves aside: while it exists, so may they.
    try {
      if (fs.stat(join(dir, of.claim(m[1] as string))) !== undefined) continue
    } catch {
      continue
    }
    unlinkQuietly(fs, join(dir, name))
  }
}

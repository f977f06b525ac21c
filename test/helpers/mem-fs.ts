// In-memory Fs with power-loss simulation and fault injection, for deterministic crash tests.
// Port of the ideas in SQLite's crash VFS (test6.c) and RocksDB's FaultInjectionTestFS
// (RELIABILITY.md §11): every file keeps its durable image (as of the last datasync) and its
// current image; every directory keeps its durable entry set (as of the last fsyncDir) and its
// current one. crash() materialises what a power loss could leave behind.

import { posix } from 'node:path'
import { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, type Fs, type FsStat, type OpenFlags } from '../../src/fs/fs.js'

/** Error codes that {@link MemFs.failAt} can inject. */
export type FaultCode = 'ENOSPC' | 'EIO' | 'EFBIG'

/** The operations the fault-injection op counter counts (and that {@link MemFs.log} records). */
export type FsOp = 'open' | 'write' | 'datasync' | 'fsyncDir' | 'rename' | 'link' | 'unlink' | 'chmod' | 'ftruncate'

/**
 * What survives {@link MemFs.crash}.
 *
 * - `'drop-unsynced'`: file data as of each file's last datasync; directory operations are kept
 *   (LevelDB's RESET_DROP_UNSYNCED_DATA).
 * - `'keep-prefix'`: like `'drop-unsynced'`, plus, per file, a random prefix of the unsynced
 *   writes/truncates in issue order, the last one possibly cut at a random byte (a torn write).
 * - `'forget-dir-ops'`: unsynced data dropped *and* directory entries as of each directory's last
 *   fsyncDir: unsynced creates, renames and unlinks are undone (LevelDB RESET_DELETE_UNSYNCED_FILES).
 * - `'keep-all'`: everything, as after a process crash (the page cache survives).
 */
export type CrashModel = 'drop-unsynced' | 'keep-prefix' | 'forget-dir-ops' | 'keep-all'

/** The power-loss crash models (all but `'keep-all'`). */
export const POWER_LOSS_MODELS: readonly CrashModel[] = ['drop-unsynced', 'keep-prefix', 'forget-dir-ops']

/** Options of {@link MemFs.failAt}. */
export interface FaultOptions {
  /** Fail every counted op from `opIndex` on, not only that one. @defaultValue false */
  persistent?: boolean
  /**
   * When the op at `opIndex` is a write of 2 bytes or more, write only the first half and return
   * that count; the error is then raised by the next op (the caller's retry), as a full disk does.
   * @defaultValue false
   */
  shortWrite?: boolean
}

/** One entry of {@link MemFs.log}. */
export interface OpRecord {
  readonly op: FsOp
  readonly path: string
}

/** A file's bytes: `buf[0, size)`, grown geometrically. */
class Content {
  buf: Buffer
  size: number

  constructor(bytes?: Uint8Array) {
    this.size = bytes?.length ?? 0
    this.buf = Buffer.alloc(Math.max(64, this.size))
    if (bytes !== undefined) this.buf.set(bytes)
  }

  write(pos: number, bytes: Uint8Array): void {
    const end = pos + bytes.length
    if (end > this.buf.length) {
      const next = Buffer.alloc(Math.max(end, this.buf.length * 2))
      this.buf.copy(next, 0, 0, this.size)
      this.buf = next
    }
    // Writing past EOF leaves a hole of zeros (buf beyond size is kept zeroed by truncate).
    this.buf.set(bytes, pos)
    if (end > this.size) this.size = end
  }

  truncate(len: number): void {
    if (len < this.size) this.buf.fill(0, len, this.size)
    else if (len > this.buf.length) {
      const next = Buffer.alloc(len)
      this.buf.copy(next, 0, 0, this.size)
      this.buf = next
    }
    this.size = len
  }

  apply(change: Change): void {
    if (change.kind === 'write') this.write(change.pos, change.bytes)
    else this.truncate(change.len)
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.size))
  }

  clone(): Content {
    return new Content(this.buf.subarray(0, this.size))
  }
}

type Change = { kind: 'write'; pos: number; bytes: Buffer } | { kind: 'truncate'; len: number }

/** The `dev` every MemFs reports: one simulated disk. */
const DEV = 1
/** Inode numbers are unique across all MemFs instances, so a crash image keeps its files' numbers and new files never reuse one. */
let nextIno = 1

class Inode {
  ino = nextIno++
  mode = DEFAULT_FILE_MODE
  current = new Content()
  durable = new Content()
  /** Changes not yet applied to `durable`, in issue order; `pending[0]` is change number `applied`. */
  pending: Change[] = []
  applied = 0
  mtimeMs = Date.now()

  change(c: Change): void {
    this.current.apply(c)
    this.pending.push(c)
    this.mtimeMs = Date.now()
  }

  /** Make changes up to (not including) number `upto` durable. */
  syncTo(upto: number): void {
    while (this.applied < upto) {
      const c = this.pending.shift()
      if (c === undefined) break
      this.durable.apply(c)
      this.applied++
    }
  }
}

class Dir {
  ino = nextIno++
  mode = DEFAULT_DIR_MODE
  entries = new Map<string, Inode | Dir>()
  durable = new Map<string, Inode | Dir>()
  /** Bumped on every entry change; a fsyncDir makes the version it saw durable. */
  version = 0
  durableVersion = 0
  mtimeMs = Date.now()

  touch(): void {
    this.version++
    this.mtimeMs = Date.now()
  }
}

interface Handle {
  readonly inode: Inode
  readonly path: string
  readonly readable: boolean
  readonly writable: boolean
  readonly append: boolean
  pos: number
}

interface Fault {
  at: number
  readonly code: FaultCode
  readonly persistent: boolean
  shortWrite: boolean
}

function statOf(node: Inode | Dir): FsStat {
  if (node instanceof Dir) return { size: 0, isDirectory: true, mtimeMs: node.mtimeMs, dev: DEV, ino: node.ino, mode: node.mode }
  return { size: node.current.size, isDirectory: false, mtimeMs: node.mtimeMs, dev: DEV, ino: node.ino, mode: node.mode }
}

function fsError(code: string, op: string, path: string, message = code): Error {
  return Object.assign(new Error(`${message}: ${op} '${path}'`), { code, syscall: op, path })
}

/** Like fs.writeSync and fs.readSync: a range outside the buffer is a caller bug, not a short transfer. */
function checkRange(op: 'read' | 'write', buf: Uint8Array, offset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > buf.byteLength) {
    throw Object.assign(new RangeError(`${op} range [${offset}, ${offset + length}) is outside a ${buf.byteLength}-byte buffer`), { code: 'ERR_OUT_OF_RANGE' })
  }
}

/** Deterministic PRNG (mulberry32) so crash states replay from a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * In-memory {@link Fs} that can simulate power loss ({@link MemFs.crash}) and inject I/O faults ({@link MemFs.failAt}).
 *
 * Paths are POSIX; relative paths resolve against `/`, which always exists. `mkdir` is recursive
 * and, like the real thing, a new directory's entry is durable only after its parent is
 * fsyncDir'd. Counted ops (see {@link FsOp}) are numbered from 0 in issue order, failed ones
 * included, so a test can run a workload once, read {@link MemFs.opCount}, then inject a fault at
 * every index. A failed datasync leaves the data unsynced (it is never silently made durable).
 *
 * Files and directories record their permission bits (`mode`; no umask is simulated) and an
 * inode number (`ino`, unique across instances; `dev` is always 1); `link` names share one inode.
 * A MemFs has no {@link Fs.scope}: it is a private file system, invisible to other processes.
 */
export class MemFs implements Fs {
  #root = new Dir()
  #handles = new Map<number, Handle>()
  #nextFd = 3
  #opCount = 0
  #faults: Fault[] = []
  /** Every counted op in issue order. */
  readonly log: OpRecord[] = []
  /** Called before each counted op runs, with its index; a test can snapshot `crash()` states here. */
  onOp: ((index: number, op: FsOp, path: string) => void) | undefined
  /** When set, datasync and fsyncDir await it before completing, so a test can hold syncs in flight. */
  syncGate: ((op: 'datasync' | 'fsyncDir', path: string) => Promise<void>) | undefined

  /** Number of counted ops issued so far (the next op's index). */
  get opCount(): number {
    return this.#opCount
  }

  /** Number of file descriptors currently open. */
  get openFileCount(): number {
    return this.#handles.size
  }

  /** How many times `op` was issued (failed attempts included). */
  count(op: FsOp): number {
    let n = 0
    for (const r of this.log) if (r.op === op) n++
    return n
  }

  /**
   * Make the counted op with index `opIndex` fail with `code` (and every later one when `persistent`).
   *
   * A failing op has no effect, except a `shortWrite`, which writes half and returns the short count.
   */
  failAt(opIndex: number, code: FaultCode, opts: FaultOptions = {}): void {
    this.#faults.push({ at: opIndex, code, persistent: opts.persistent ?? false, shortWrite: opts.shortWrite ?? false })
  }

  /**
   * The state a crash now would leave, as a new `MemFs` whose content is all durable.
   *
   * This instance is unchanged, so a test may take crash states at any point (e.g. from
   * {@link MemFs.onOp}) and carry on. `seed` drives the random choices of `'keep-prefix'`.
   */
  crash(model: CrashModel = 'drop-unsynced', seed = 1): MemFs {
    const random = rng(seed)
    const out = new MemFs()
    const inodes = new Map<Inode, Inode>()
    const copyFile = (src: Inode): Inode => {
      let dst = inodes.get(src)
      if (dst !== undefined) return dst
      let content: Content
      if (model === 'keep-all') content = src.current.clone()
      else {
        content = src.durable.clone()
        if (model === 'keep-prefix') {
          const n = src.pending.length
          const k = Math.floor(random() * (n + 1))
          for (let i = 0; i < k; i++) content.apply(src.pending[i] as Change)
          const torn = src.pending[k]
          if (torn?.kind === 'write') {
            const cut = Math.floor(random() * torn.bytes.length)
            if (cut > 0) content.write(torn.pos, torn.bytes.subarray(0, cut))
          }
        }
      }
      dst = new Inode()
      dst.current = content
      dst.durable = content.clone()
      dst.mtimeMs = src.mtimeMs
      // Modes and inode numbers are kept: a crash loses data and entries, not metadata.
      dst.ino = src.ino
      dst.mode = src.mode
      inodes.set(src, dst)
      return dst
    }
    const copyDir = (src: Dir, dst: Dir): void => {
      const entries = model === 'forget-dir-ops' ? src.durable : src.entries
      for (const [name, node] of entries) {
        if (node instanceof Dir) {
          const d = new Dir()
          d.ino = node.ino
          d.mode = node.mode
          copyDir(node, d)
          dst.entries.set(name, d)
        } else dst.entries.set(name, copyFile(node))
      }
      dst.durable = new Map(dst.entries)
    }
    copyDir(this.#root, out.#root)
    return out
  }

  /** Test setup: make everything durable (all file data, all directory entries) without counting ops. */
  syncAll(): void {
    const visit = (dir: Dir): void => {
      dir.durable = new Map(dir.entries)
      dir.durableVersion = dir.version
      for (const node of dir.entries.values()) {
        if (node instanceof Dir) visit(node)
        else node.syncTo(node.applied + node.pending.length)
      }
    }
    visit(this.#root)
  }

  /** Test setup: create or replace `path` with `bytes`, durably (data and directory entry), without counting an op. */
  putFile(path: string, bytes: Uint8Array, mode = DEFAULT_FILE_MODE): void {
    const { dir, name } = this.#parent(path, 'putFile')
    const inode = new Inode()
    inode.mode = mode
    inode.current = new Content(bytes)
    inode.durable = new Content(bytes)
    dir.entries.set(name, inode)
    dir.durable.set(name, inode)
  }

  /** Open `path`; a file it creates gets `mode` (no umask is simulated). */
  open(path: string, flags: OpenFlags, mode = DEFAULT_FILE_MODE): number {
    this.#begin('open', path)
    const { dir, name } = this.#parent(path, 'open')
    let node = dir.entries.get(name)
    // O_EXCL checks existence first, whatever the entry is (EEXIST for a directory too).
    if (flags === 'wx' && node !== undefined) throw fsError('EEXIST', 'open', path)
    if (node instanceof Dir) throw fsError('EISDIR', 'open', path)
    if (node === undefined) {
      if (flags === 'r' || flags === 'r+') throw fsError('ENOENT', 'open', path)
      node = new Inode()
      node.mode = mode & 0o7777
      dir.entries.set(name, node)
      dir.touch()
    } else if (flags === 'w' && node.current.size > 0) {
      node.change({ kind: 'truncate', len: 0 })
    }
    const fd = this.#nextFd++
    this.#handles.set(fd, { inode: node, path, readable: flags === 'r' || flags === 'r+', writable: flags !== 'r', append: flags === 'a', pos: 0 })
    return fd
  }

  close(fd: number): void {
    if (!this.#handles.delete(fd)) throw fsError('EBADF', 'close', String(fd))
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    const h = this.#handle(fd, 'write')
    const fault = this.#begin('write', h.path, true)
    if (!h.writable) throw fsError('EBADF', 'write', h.path)
    checkRange('write', buf, offset, length)
    let n = length
    if (fault !== undefined) {
      if (!(fault.shortWrite && length >= 2)) throw this.#faultError(fault, 'write', h.path)
      // Half now; the error comes with the caller's next op, like a disk filling up.
      n = length >> 1
      fault.shortWrite = false
      fault.at = this.#opCount
    }
    const pos = h.append ? h.inode.current.size : (position ?? h.pos)
    h.inode.change({ kind: 'write', pos, bytes: Buffer.from(buf.subarray(offset, offset + n)) })
    if (position === null || h.append) h.pos = pos + n
    return n
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const h = this.#handle(fd, 'read')
    if (!h.readable) throw fsError('EBADF', 'read', h.path)
    checkRange('read', buf, offset, length)
    const c = h.inode.current
    const n = Math.max(0, Math.min(length, c.size - position))
    if (n > 0) buf.set(c.buf.subarray(position, position + n), offset)
    return n
  }

  async datasync(fd: number): Promise<void> {
    const h = this.#handle(fd, 'datasync')
    this.#begin('datasync', h.path)
    // Covers the changes issued before the call, applied when the call completes.
    const upto = h.inode.applied + h.inode.pending.length
    await (this.syncGate?.('datasync', h.path) ?? Promise.resolve())
    h.inode.syncTo(upto)
  }

  async fsyncDir(path: string): Promise<void> {
    this.#begin('fsyncDir', path)
    const dir = this.#lookup(path, 'fsyncDir')
    if (!(dir instanceof Dir)) throw fsError('ENOTDIR', 'fsyncDir', path)
    const version = dir.version
    const snapshot = new Map(dir.entries)
    await (this.syncGate?.('fsyncDir', path) ?? Promise.resolve())
    if (version >= dir.durableVersion) {
      dir.durable = snapshot
      dir.durableVersion = version
    }
  }

  ftruncate(fd: number, length: number): void {
    const h = this.#handle(fd, 'ftruncate')
    this.#begin('ftruncate', h.path)
    if (!h.writable) throw fsError('EINVAL', 'ftruncate', h.path)
    h.inode.change({ kind: 'truncate', len: length })
  }

  fstat(fd: number): FsStat {
    const h = this.#handle(fd, 'fstat')
    return statOf(h.inode)
  }

  stat(path: string): FsStat | undefined {
    let node: Inode | Dir | undefined
    try {
      node = this.#lookup(path, 'stat')
    } catch {
      return undefined
    }
    return node === undefined ? undefined : statOf(node)
  }

  /** Same as {@link MemFs.stat}: there are no symbolic links. */
  lstat(path: string): FsStat | undefined {
    return this.stat(path)
  }

  /** Resolve `path` against `/`; there are no symbolic links, so only existence is checked. */
  realpath(path: string): string {
    const abs = posix.resolve('/', path)
    if (this.#lookup(abs, 'realpath') === undefined) throw fsError('ENOENT', 'realpath', path)
    return abs
  }

  /** Set the permission bits of a file or directory (counted as op `chmod`). */
  chmod(path: string, mode: number): void {
    this.#begin('chmod', path)
    const node = this.#lookup(path, 'chmod')
    if (node === undefined) throw fsError('ENOENT', 'chmod', path)
    node.mode = mode & 0o7777
  }

  /**
   * Add the name `name` for the file at `existing` (a hard link; counted as op `link`).
   * Like `rename`, the new entry is durable only after its directory is fsyncDir'd.
   */
  link(existing: string, name: string): void {
    this.#begin('link', existing)
    const src = this.#lookup(existing, 'link')
    if (src === undefined) throw fsError('ENOENT', 'link', existing)
    const dst = this.#parent(name, 'link')
    if (dst.dir.entries.has(dst.name)) throw fsError('EEXIST', 'link', name)
    if (src instanceof Dir) throw fsError('EPERM', 'link', existing)
    dst.dir.entries.set(dst.name, src)
    dst.dir.touch()
  }

  rename(from: string, to: string): void {
    this.#begin('rename', from)
    const src = this.#parent(from, 'rename')
    const node = src.dir.entries.get(src.name)
    if (node === undefined) throw fsError('ENOENT', 'rename', from)
    const dst = this.#parent(to, 'rename')
    const existing = dst.dir.entries.get(dst.name)
    if (existing === node) return
    if (existing instanceof Dir && !(node instanceof Dir)) throw fsError('EISDIR', 'rename', to)
    if (node instanceof Dir && existing !== undefined && !(existing instanceof Dir)) throw fsError('ENOTDIR', 'rename', to)
    if (existing instanceof Dir && existing.entries.size > 0) throw fsError('ENOTEMPTY', 'rename', to)
    src.dir.entries.delete(src.name)
    src.dir.touch()
    dst.dir.entries.set(dst.name, node)
    dst.dir.touch()
  }

  unlink(path: string): void {
    this.#begin('unlink', path)
    const { dir, name } = this.#parent(path, 'unlink')
    const node = dir.entries.get(name)
    if (node === undefined) throw fsError('ENOENT', 'unlink', path)
    if (node instanceof Dir) throw fsError('EISDIR', 'unlink', path)
    dir.entries.delete(name)
    dir.touch()
  }

  readdir(path: string): string[] {
    const dir = this.#lookup(path, 'readdir')
    if (dir === undefined) throw fsError('ENOENT', 'readdir', path)
    if (!(dir instanceof Dir)) throw fsError('ENOTDIR', 'readdir', path)
    return [...dir.entries.keys()].sort()
  }

  /** Create `path` and missing parents, each with `mode`; existing directories are kept as they are. */
  mkdir(path: string, mode = DEFAULT_DIR_MODE): void {
    let dir = this.#root
    for (const part of this.#parts(path)) {
      const next = dir.entries.get(part)
      if (next instanceof Dir) dir = next
      else if (next !== undefined) throw fsError('EEXIST', 'mkdir', path)
      else {
        const d = new Dir()
        d.mode = mode & 0o7777
        dir.entries.set(part, d)
        dir.touch()
        dir = d
      }
    }
  }

  rmdir(path: string): void {
    const { dir, name } = this.#parent(path, 'rmdir')
    const node = dir.entries.get(name)
    if (node === undefined) throw fsError('ENOENT', 'rmdir', path)
    if (!(node instanceof Dir)) throw fsError('ENOTDIR', 'rmdir', path)
    if (node.entries.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path)
    dir.entries.delete(name)
    dir.touch()
  }

  readFile(path: string): Buffer {
    const node = this.#lookup(path, 'readFile')
    if (node === undefined) throw fsError('ENOENT', 'open', path)
    if (node instanceof Dir) throw fsError('EISDIR', 'read', path)
    return node.current.bytes()
  }

  /** Count and log a counted op; throw its injected fault, or return it when `deferShort` lets the caller do a short write. */
  #begin(op: FsOp, path: string, deferShort = false): Fault | undefined {
    const index = this.#opCount++
    this.log.push({ op, path })
    this.onOp?.(index, op, path)
    for (const f of this.#faults) {
      if (index === f.at || (f.persistent && index > f.at)) {
        if (deferShort && f.shortWrite && index === f.at) return f
        throw this.#faultError(f, op, path)
      }
    }
    return undefined
  }

  #faultError(f: Fault, op: string, path: string): Error {
    return fsError(f.code, op, path, `${f.code} (injected)`)
  }

  #handle(fd: number, op: string): Handle {
    const h = this.#handles.get(fd)
    if (h === undefined) throw fsError('EBADF', op, String(fd))
    return h
  }

  #parts(path: string): string[] {
    return posix.resolve('/', path).split('/').filter((p) => p !== '')
  }

  #lookup(path: string, op: string): Inode | Dir | undefined {
    let node: Inode | Dir = this.#root
    for (const part of this.#parts(path)) {
      if (!(node instanceof Dir)) throw fsError('ENOTDIR', op, path)
      const next: Inode | Dir | undefined = node.entries.get(part)
      if (next === undefined) return undefined
      node = next
    }
    return node
  }

  #parent(path: string, op: string): { dir: Dir; name: string } {
    const parts = this.#parts(path)
    const name = parts.pop()
    if (name === undefined) throw fsError('EISDIR', op, path)
    const dir = this.#lookup('/' + parts.join('/'), op)
    if (dir === undefined) throw fsError('ENOENT', op, path)
    if (!(dir instanceof Dir)) throw fsError('ENOTDIR', op, path)
    return { dir, name }
  }
}

import * as fs from 'node:fs'
import { dirname } from 'node:path'
import { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, OS_FILES, type Fs, type FsStat, type OpenFlags } from './fs.js'

function toStat(s: fs.Stats): FsStat {
  return { size: s.size, isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino, mode: s.mode & 0o7777 }
}

/**
 * {@link Fs} on the real file system (`node:fs`).
 *
 * Files and directories it creates default to {@link DEFAULT_FILE_MODE} and
 * {@link DEFAULT_DIR_MODE}: a store may hold private data, so nothing kvstore
 * creates is readable by other users unless asked for.
 */
export class NodeFs implements Fs {
  /** Shared by every copy of kvstore in the process (see {@link OS_FILES}). */
  readonly scope = OS_FILES

  open(path: string, flags: OpenFlags, mode: number = DEFAULT_FILE_MODE): number {
    return fs.openSync(path, flags, mode)
  }
  close(fd: number): void {
    fs.closeSync(fd)
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    return fs.writeSync(fd, buf, offset, length, position)
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    return fs.readSync(fd, buf, offset, length, position)
  }
  datasync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())))
  }
  async fsyncDir(dir: string): Promise<void> {
    // Directory fsync makes renames and unlinks durable. Windows cannot open a
    // directory for fsync (EPERM/EISDIR); there rename durability is the OS's.
    let fd: number
    try {
      fd = fs.openSync(dir, 'r')
    } catch (err) {
      if (process.platform === 'win32') return
      throw err
    }
    try {
      await new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())))
    } finally {
      fs.closeSync(fd)
    }
  }
  ftruncate(fd: number, length: number): void {
    fs.ftruncateSync(fd, length)
  }
  fstat(fd: number): FsStat {
    return toStat(fs.fstatSync(fd))
  }
  stat(path: string): FsStat | undefined {
    const s = fs.statSync(path, { throwIfNoEntry: false })
    return s ? toStat(s) : undefined
  }
  lstat(path: string): FsStat | undefined {
    const s = fs.lstatSync(path, { throwIfNoEntry: false })
    return s ? toStat(s) : undefined
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to)
  }
  link(existing: string, name: string): void {
    fs.linkSync(existing, name)
  }
  unlink(path: string): void {
    fs.unlinkSync(path)
  }
  chmod(path: string, mode: number): void {
    fs.chmodSync(path, mode)
  }
  realpath(path: string): string {
    return fs.realpathSync.native(path)
  }
  readdir(dir: string): string[] {
    return fs.readdirSync(dir)
  }
  mkdir(dir: string, mode: number = DEFAULT_DIR_MODE): void {
    // Not `{ recursive: true }`: Node's recursive mkdirSync never returns where mkdir fails with
    // ENOENT under a parent that exists (a path in /proc or /sys), which hung Store.open. One
    // level at a time instead; `mode` applies to every directory created, parents included.
    mkdirParents(dir, mode, 0)
  }
  rmdir(dir: string): void {
    fs.rmdirSync(dir)
  }
  readFile(path: string): Buffer {
    return fs.readFileSync(path)
  }
}

/** Deepest chain of missing parents `mkdir` creates (a guard: real paths are far shallower). */
const MAX_MKDIR_DEPTH = 256

function mkdirParents(dir: string, mode: number, depth: number): void {
  const err = tryMkdir(dir, mode)
  if (err === undefined) return
  if (err.code !== 'ENOENT' || depth >= MAX_MKDIR_DEPTH) throw err
  const parent = dirname(dir)
  // ENOENT although the parent exists (or there is no parent left): this path cannot be made.
  if (parent === dir || fs.existsSync(parent)) throw err
  mkdirParents(parent, mode, depth + 1)
  const again = tryMkdir(dir, mode)
  if (again !== undefined) throw again
}

/** Make one directory; `undefined` when it was made or already is a directory, else the error. */
function tryMkdir(dir: string, mode: number): NodeJS.ErrnoException | undefined {
  try {
    fs.mkdirSync(dir, { mode })
    return undefined
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EEXIST' && fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) return undefined
    return e
  }
}

/** The shared real-file-system instance. */
export const nodeFs: Fs = new NodeFs()

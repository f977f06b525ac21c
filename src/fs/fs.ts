// The I/O seam: every file operation kvstore performs goes through `Fs`, so tests
// can inject faults (ENOSPC, EIO, short writes) and simulate power loss.
//
// Data-path calls are synchronous (small writes cost less as one syscall than as a
// thread-pool round trip); durability calls are asynchronous so that fsync runs off
// the event loop and group commit can gather the next batch meanwhile.
//
// Members added after the first release (`link`, `lstat`, `chmod`, `realpath`, `scope`
// and the `dev`/`ino`/`mode` stat fields) are optional in the type only so that `Fs`
// implementations written before them keep compiling; both implementations in this
// package provide them, and each caller says what it does without them.

/**
 * Permission bits of files kvstore creates: owner read/write only. Store data is
 * private by default; a file kvstore replaces keeps the mode it had.
 */
export const DEFAULT_FILE_MODE = 0o600

/** Permission bits of directories kvstore creates: owner only. */
export const DEFAULT_DIR_MODE = 0o700

/**
 * The {@link Fs.scope} of every `Fs` that sees the operating system's files.
 *
 * A registered symbol, so every copy of kvstore loaded in a process (ESM and CJS
 * builds, two versions in `node_modules`) gets the same value: the in-process lock
 * registry keys the real file system by it, not by the identity of an `Fs` object.
 */
export const OS_FILES: unique symbol = Symbol.for('kvstore.fs.os-files')

/** What `Fs.stat` reports. */
export interface FsStat {
  readonly size: number
  readonly isDirectory: boolean
  readonly mtimeMs: number
  /** Device of the file system holding the file; with `ino`, the file's identity. */
  readonly dev?: number
  /** Inode number: with `dev`, tells a file from another one later given the same name. */
  readonly ino?: number
  /** Permission bits (`mode & 0o7777`). */
  readonly mode?: number
}

/** Flags accepted by `Fs.open`, with `node:fs` meanings. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx' | 'a'

/**
 * File operations used by kvstore. Errors are thrown as Node-style errors with a
 * `code` (`ENOENT`, `EEXIST`, `ENOSPC`, `EIO` …); callers wrap them in `StoreError`.
 */
export interface Fs {
  /**
   * Which files this `Fs` sees, for the in-process lock registry: {@link OS_FILES} for
   * the real file system. Absent for a private file system (an in-memory test `Fs`):
   * the object itself is then the identity, and no other thread or process can see
   * its files.
   */
  readonly scope?: symbol
  /**
   * Open a file and return a descriptor. `mode` gives the permission bits of a file
   * the call creates (subject to the umask); an existing file keeps its mode.
   * Implementations default it to {@link DEFAULT_FILE_MODE}.
   */
  open(path: string, flags: OpenFlags, mode?: number): number
  close(fd: number): void
  /** Write up to `length` bytes; returns the bytes written, which may be fewer (short write). `position` null = at the file offset. */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number
  /** Read up to `length` bytes at `position`; returns bytes read (0 at EOF). */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number
  /** Flush file data (and the metadata needed to read it) to stable storage. */
  datasync(fd: number): Promise<void>
  /** Make directory entries (creates, renames, unlinks) in `dir` durable. */
  fsyncDir(dir: string): Promise<void>
  /** Truncate (or extend with zeros) an open file to `length` bytes. */
  ftruncate(fd: number, length: number): void
  fstat(fd: number): FsStat
  /** Stat a path, following symbolic links; `undefined` when it does not exist. */
  stat(path: string): FsStat | undefined
  /** Stat a path without following a final symbolic link; `undefined` when it does not exist. */
  lstat?(path: string): FsStat | undefined
  /** Replace `to` with `from` atomically (`to` may exist). */
  rename(from: string, to: string): void
  /**
   * Give the file at `existing` the additional name `name`. Fails with `EEXIST` when
   * `name` exists, atomically: of several processes linking to one name, exactly one
   * succeeds, and the name never shows a partly written file.
   */
  link?(existing: string, name: string): void
  unlink(path: string): void
  /** Set the permission bits of `path` exactly (no umask). */
  chmod?(path: string, mode: number): void
  /** The absolute path of `path` with symbolic links resolved; fails with `ENOENT` when it does not exist. */
  realpath?(path: string): string
  readdir(dir: string): string[]
  /**
   * Create `dir` and missing parents; an existing directory is fine. `mode` gives the
   * permission bits of the directories created (subject to the umask); implementations
   * default it to {@link DEFAULT_DIR_MODE}.
   */
  mkdir(dir: string, mode?: number): void
  rmdir(dir: string): void
  /** Read a whole file (convenience for small files and recovery). */
  readFile(path: string): Buffer
}

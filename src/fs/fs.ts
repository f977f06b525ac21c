// The I/O seam: every file operation kvstore performs goes through `Fs`, so tests
// can inject faults (ENOSPC, EIO, short writes) and simulate power loss.
//
// Data-path calls are synchronous (small writes cost less as one syscall than as a
// thread-pool round trip); durability calls are asynchronous so that fsync runs off
// the event loop and group commit can gather the next batch meanwhile.

/** What `Fs.stat` reports. */
export interface FsStat {
  readonly size: number
  readonly isDirectory: boolean
  readonly mtimeMs: number
}

/** Flags accepted by `Fs.open`, with `node:fs` meanings. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx' | 'a'

/**
 * File operations used by kvstore. Errors are thrown as Node-style errors with a
 * `code` (`ENOENT`, `EEXIST`, `ENOSPC`, `EIO` …); callers wrap them in `StoreError`.
 */
export interface Fs {
  /** Open a file and return a descriptor. */
  open(path: string, flags: OpenFlags): number
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
  /** Stat a path; `undefined` when it does not exist. */
  stat(path: string): FsStat | undefined
  rename(from: string, to: string): void
  unlink(path: string): void
  readdir(dir: string): string[]
  mkdir(dir: string): void
  rmdir(dir: string): void
  /** Read a whole file (convenience for small files and recovery). */
  readFile(path: string): Buffer
}

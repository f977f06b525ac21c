import * as fs from 'node:fs'
import type { Fs, FsStat, OpenFlags } from './fs.js'

function toStat(s: fs.Stats): FsStat {
  return { size: s.size, isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs }
}

/** {@link Fs} on the real file system (`node:fs`). */
export class NodeFs implements Fs {
  open(path: string, flags: OpenFlags): number {
    return fs.openSync(path, flags)
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
  rename(from: string, to: string): void {
    fs.renameSync(from, to)
  }
  unlink(path: string): void {
    fs.unlinkSync(path)
  }
  readdir(dir: string): string[] {
    return fs.readdirSync(dir)
  }
  mkdir(dir: string): void {
    fs.mkdirSync(dir, { recursive: true })
  }
  rmdir(dir: string): void {
    fs.rmdirSync(dir)
  }
  readFile(path: string): Buffer {
    return fs.readFileSync(path)
  }
}

/** The shared real-file-system instance. */
export const nodeFs: Fs = new NodeFs()

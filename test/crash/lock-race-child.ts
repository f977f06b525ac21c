// Child for the lock takeover race (lock-race.test.ts). Reads commands on stdin:
//   `go <dir>`  take the lock on <dir>; print `opened <pid>` or the error code
//   `release`   release it if held; print `released`
// The lock is taken through a file system that sleeps inside every takeover window: after
// reading or stat'ing a lock file (between a staleness judgement and acting on it), after
// creating one exclusively (while it is still empty), before a rename, link or unlink of
// one. Racing openers then interleave there far more often than they would by chance.
import { createInterface } from 'node:readline'
import { basename } from 'node:path'
import { DirLock } from '../../src/dir-lock.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'

const PAUSE_MS = Number(process.argv[2] ?? 20)

function pause(ms = Math.random() * PAUSE_MS): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

const isLockFile = (path: string): boolean => basename(path).startsWith('LOCK')

const lockFds = new Set<number>()

const slowFs: Fs = Object.assign(Object.create(nodeFs) as Fs, {
  open(path: string, flags: Parameters<Fs['open']>[1], mode?: number): number {
    const fd = nodeFs.open(path, flags, mode)
    if (isLockFile(path)) lockFds.add(fd)
    // Created but not yet written: a LOCK made by open + write stays empty a long while.
    if (flags === 'wx' && isLockFile(path)) pause(basename(path) === 'LOCK' ? 3 * PAUSE_MS : undefined)
    return fd
  },
  close(fd: number): void {
    nodeFs.close(fd)
    if (lockFds.delete(fd)) pause()
  },
  readFile(path: string): Buffer {
    const bytes = nodeFs.readFile(path)
    if (isLockFile(path)) pause()
    return bytes
  },
  stat(path: string) {
    const st = nodeFs.stat(path)
    if (isLockFile(path)) pause()
    return st
  },
  rename(from: string, to: string): void {
    if (isLockFile(from)) pause()
    nodeFs.rename(from, to)
  },
  link(existing: string, name: string): void {
    if (isLockFile(name)) pause()
    nodeFs.link?.(existing, name)
  },
  unlink(path: string): void {
    // Between judging a lock stale and removing it.
    if (isLockFile(path)) pause()
    nodeFs.unlink(path)
  },
})

let held: DirLock | undefined
const out = (line: string): boolean => process.stdout.write(`${line}\n`)

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.startsWith('go ')) {
    try {
      held = DirLock.acquire(slowFs, line.slice(3))
      out(`opened ${process.pid}`)
    } catch (err) {
      out((err as { code?: string }).code ?? `error ${String(err)}`)
    }
  } else if (line === 'release') {
    held?.release()
    held = undefined
    out('released')
  }
})
out('ready')

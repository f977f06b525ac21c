// DirLock: one holder per directory across processes, across copies of kvstore in one
// process, and within one; race-free takeover of stale locks; KV_IO for every OS error.
import { execFileSync, spawnSync } from 'node:child_process'
import * as nfs from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { DirLock, LOCK_FILE } from '../../src/dir-lock.js'
import { StoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { FullDisk } from '../helpers/full-disk.js'
import { MemFs } from '../helpers/mem-fs.js'
import { tmpDir } from '../helpers/tmp.js'

function startOf(pid: number): string {
  const stat = nfs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? ''
}

/** Owner record of a process that is alive for the whole test: vitest's own parent. */
function liveOwner(): string {
  return JSON.stringify({ pid: process.ppid, start: startOf(process.ppid), host: hostname() })
}

let dead: string | undefined
/** Owner record of a process that has exited. */
function deadOwner(): string {
  if (dead === undefined) {
    const pid = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString())
    dead = JSON.stringify({ pid, start: '1', host: hostname() })
  }
  return dead
}

function ownOwner(): string {
  return JSON.stringify({ pid: process.pid, start: startOf(process.pid), host: hostname() })
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code ?? `no code: ${String(err)}`
  }
  return 'returned'
}

function lockText(dir: string): string {
  return nfs.readFileSync(join(dir, LOCK_FILE), 'utf8')
}

/** A LOCK file older than any grace period an implementation might give a half-written one. */
function putOldLock(dir: string, text: string, name = LOCK_FILE): void {
  const path = join(dir, name)
  nfs.writeFileSync(path, text)
  const past = new Date(Date.now() - 120_000)
  nfs.utimesSync(path, past, past)
}

/** nodeFs with hooks that run before selected calls (to put another process's moves in the takeover window). */
function hookedFs(hooks: Partial<Record<'link' | 'rename' | 'open', (...args: string[]) => void>>): Fs {
  return Object.assign(Object.create(nodeFs) as Fs, {
    link: (a: string, b: string) => (hooks.link?.(a, b), nodeFs.link?.(a, b)),
    rename: (a: string, b: string) => (hooks.rename?.(a, b), nodeFs.rename(a, b)),
    open: (p: string, f: Parameters<Fs['open']>[1], m?: number) => (hooks.open?.(p, f), nodeFs.open(p, f, m)),
  })
}

/** Replace LOCK atomically, as another opener's link would. */
function replaceLock(dir: string, text: string): void {
  nfs.writeFileSync(join(dir, 'replacement'), text)
  nfs.renameSync(join(dir, 'replacement'), join(dir, LOCK_FILE))
}

describe('DirLock basics', () => {
  it('writes a complete owner record, excludes a second opener, and removes LOCK on release', () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    expect(JSON.parse(lockText(dir))).toMatchObject({ pid: process.pid, host: hostname() })
    // Only LOCK is left: the claim file it was linked from is gone.
    expect(nfs.readdirSync(dir)).toEqual([LOCK_FILE])
    expect(codeOf(() => DirLock.acquire(nodeFs, dir))).toBe('KV_LOCKED')
    lock.release()
    lock.release()
    expect(nfs.readdirSync(dir)).toEqual([])
    DirLock.acquire(nodeFs, dir).release()
  })

  it('creates LOCK 0644: an owner record anyone who can reach the directory may read (to report who holds it)', () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    expect(nfs.statSync(join(dir, LOCK_FILE)).mode & 0o777).toBe(0o644)
    lock.release()
  })

  it('a live process holding LOCK means KV_LOCKED, and its LOCK is left alone', () => {
    const dir = tmpDir()
    putOldLock(dir, liveOwner())
    expect(codeOf(() => DirLock.acquire(nodeFs, dir))).toBe('KV_LOCKED')
    expect(lockText(dir)).toBe(liveOwner())
  })

  it("takes over a dead process's LOCK", () => {
    const dir = tmpDir()
    putOldLock(dir, deadOwner())
    const lock = DirLock.acquire(nodeFs, dir)
    expect(JSON.parse(lockText(dir)).pid).toBe(process.pid)
    lock.release()
  })

  it('takes over an empty or garbage LOCK at once, however fresh: a live opener never shows one', () => {
    for (const text of ['', '{"pid":', 'garbage', 'null', '[]', '{}', `{"pid":${process.ppid}}`, 'x'.repeat(10_000)]) {
      const dir = tmpDir()
      nfs.writeFileSync(join(dir, LOCK_FILE), text)
      const t0 = Date.now()
      const lock = DirLock.acquire(nodeFs, dir)
      expect(Date.now() - t0).toBeLessThan(500)
      expect(JSON.parse(lockText(dir)).pid).toBe(process.pid)
      lock.release()
    }
  })

  it('treats a LOCK naming a pid no process can have (1.5, -1, 0, 2^31, 2^40, "12") as garbage', () => {
    for (const pid of [1.5, -1, 0, 2 ** 31, 2 ** 40, '12', null]) {
      const dir = tmpDir()
      putOldLock(dir, JSON.stringify({ pid, start: '', host: hostname() }))
      const lock = DirLock.acquire(nodeFs, dir)
      expect(JSON.parse(lockText(dir)).pid).toBe(process.pid)
      lock.release()
    }
  })

  it('release leaves a LOCK that is not its own (deleted by hand, then taken by another) alone', () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    nfs.unlinkSync(join(dir, LOCK_FILE))
    nfs.writeFileSync(join(dir, LOCK_FILE), liveOwner())
    lock.release()
    expect(lockText(dir)).toBe(liveOwner())
  })

  it('fails with KV_IO naming the path when the directory is missing', () => {
    const dir = join(tmpDir(), 'missing')
    let err: unknown
    try {
      DirLock.acquire(nodeFs, dir)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(StoreError)
    expect(err).toMatchObject({ code: 'KV_IO', cause: { code: 'ENOENT' } })
    expect((err as Error).message).toContain(dir)
  })
})

describe('copies of kvstore in one process', () => {
  it('a second module copy (its own nodeFs object) gets KV_LOCKED while the first holds the directory', async () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    try {
      vi.resetModules()
      const copy = await import('../../src/dir-lock.js')
      const copyFs = (await import('../../src/fs/node-fs.js')).nodeFs
      expect(copy.DirLock).not.toBe(DirLock)
      expect(copyFs).not.toBe(nodeFs)
      expect(codeOf(() => copy.DirLock.acquire(copyFs, dir))).toBe('KV_LOCKED')
      expect(codeOf(() => copy.DirLock.acquire(copyFs, join(dir, '.', '')))).toBe('KV_LOCKED')
      // The holder is untouched.
      expect(JSON.parse(lockText(dir)).pid).toBe(process.pid)
    } finally {
      lock.release()
    }
  })

  it('a wrapper of nodeFs shares the registry with nodeFs (the real file system is one, whatever object)', () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    const wrapped = Object.create(nodeFs) as Fs
    expect(codeOf(() => DirLock.acquire(wrapped, dir))).toBe('KV_LOCKED')
    lock.release()
    DirLock.acquire(wrapped, dir).release()
  })

  it('a symlinked path to a held directory gets KV_LOCKED', () => {
    const dir = tmpDir()
    const link = join(tmpDir(), 'alias')
    nfs.symlinkSync(dir, link)
    const lock = DirLock.acquire(nodeFs, dir)
    expect(codeOf(() => DirLock.acquire(nodeFs, link))).toBe('KV_LOCKED')
    lock.release()
  })

  it('never takes over a LOCK naming this process (pid and start time) on the real file system', () => {
    // What a copy that does not share the registry (an older version, a worker thread) left.
    const dir = tmpDir()
    putOldLock(dir, ownOwner())
    const err = (() => {
      try {
        DirLock.acquire(nodeFs, dir)
      } catch (e) {
        return e as StoreError
      }
      return undefined
    })()
    expect(err?.code).toBe('KV_LOCKED')
    expect(err?.message).toMatch(new RegExp(`locked by process ${process.pid} .*this process`))
    expect(lockText(dir)).toBe(ownOwner())
  })

  it('takes over a LOCK naming this pid with another start time (a reused pid)', () => {
    const dir = tmpDir()
    putOldLock(dir, JSON.stringify({ pid: process.pid, start: '1', host: hostname() }))
    DirLock.acquire(nodeFs, dir).release()
  })

  it('on a private Fs, a LOCK naming this process that no DirLock holds is a restored crash image: taken over', () => {
    const fs = new MemFs()
    fs.mkdir('/db')
    fs.putFile('/db/LOCK', Buffer.from(ownOwner()))
    const lock = DirLock.acquire(fs, '/db')
    expect(codeOf(() => DirLock.acquire(fs, '/db'))).toBe('KV_LOCKED')
    lock.release()
    expect(fs.readdir('/db')).toEqual([])
  })

  it('the ESM and the CJS build opened in one process exclude each other, and a worker thread is excluded too', async () => {
    const out = tmpDir('kvstore-dual-')
    const { build } = await import('tsup')
    await build({
      entry: { index: 'src/index.ts' },
      format: ['esm', 'cjs'],
      outDir: out,
      target: 'node20',
      dts: false,
      sourcemap: false,
      clean: false,
      silent: true,
      config: false,
    })
    nfs.writeFileSync(join(out, 'package.json'), '{"type":"module"}')
    nfs.writeFileSync(
      join(out, 'worker.cjs'),
      `const { parentPort, workerData } = require('node:worker_threads')
      require(workerData.cjsPath).Store.open({ dir: workerData.dir }).then(
        async (s) => { await s.close(); parentPort.postMessage('opened') },
        (e) => parentPort.postMessage(e.code ?? String(e)),
      )`,
    )
    const dir = tmpDir()
    const script = `
      import { createRequire } from 'node:module'
      import { pathToFileURL } from 'node:url'
      const [esmPath, cjsPath, workerPath, dir] = process.argv.slice(1)
      const esm = await import(pathToFileURL(esmPath).href)
      const cjs = createRequire(cjsPath)(cjsPath)
      const result = { distinct: esm.Store !== cjs.Store }
      const attempt = async (first, second) => {
        const a = await first.Store.open({ dir })
        try {
          const b = await second.Store.open({ dir })
          await b.close()
          return 'opened'
        } catch (err) {
          return err.code ?? String(err)
        } finally {
          await a.close()
        }
      }
      result.cjsAfterEsm = await attempt(esm, cjs)
      result.esmAfterCjs = await attempt(cjs, esm)
      // A worker thread has its own globalThis (no shared registry): the LOCK naming this process excludes it.
      const { Worker } = await import('node:worker_threads')
      const held = await esm.Store.open({ dir })
      result.worker = await new Promise((resolve) => {
        const w = new Worker(workerPath, { workerData: { cjsPath, dir } })
        w.once('message', resolve)
        w.once('error', (e) => resolve(String(e)))
      })
      await held.close()
      process.stdout.write(JSON.stringify(result))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, join(out, 'index.js'), join(out, 'index.cjs'), join(out, 'worker.cjs'), dir], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({ distinct: true, cjsAfterEsm: 'KV_LOCKED', esmAfterCjs: 'KV_LOCKED', worker: 'KV_LOCKED' })
  }, 60_000)
})

describe('stale lock takeover', () => {
  it('does not remove a LOCK that a live owner put in place after it was judged stale', () => {
    const dir = tmpDir()
    putOldLock(dir, 'garbage')
    // Between the judgement and the check under the breaker, another opener takes over.
    const fs = hookedFs({ link: (_a, b) => b.includes('LOCK.breaking-') && replaceLock(dir, liveOwner()) })
    expect(codeOf(() => DirLock.acquire(fs, dir))).toBe('KV_LOCKED')
    expect(lockText(dir)).toBe(liveOwner())
    expect(nfs.readdirSync(dir).sort()).toEqual([LOCK_FILE])
  })

  it('puts back a live LOCK it moved aside by mistake', () => {
    const dir = tmpDir()
    putOldLock(dir, 'garbage')
    // The replacement lands between the check under the breaker and the rename aside.
    const fs = hookedFs({ rename: (a) => a === join(dir, LOCK_FILE) && replaceLock(dir, liveOwner()) })
    expect(codeOf(() => DirLock.acquire(fs, dir))).toBe('KV_LOCKED')
    expect(lockText(dir)).toBe(liveOwner())
    expect(nfs.readdirSync(dir).sort()).toEqual([LOCK_FILE])
  })

  it('tells a new LOCK from the stale one even when it gets the same inode number (compares bytes)', () => {
    const fs = new MemFs()
    fs.mkdir('/db')
    fs.putFile('/db/LOCK', Buffer.from('garbage'))
    // The replacement is written into the very inode judged stale: same dev and ino.
    const wrapped = new Proxy(fs, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop, target) as unknown
        if (prop === 'link') {
          return (a: string, b: string) => {
            if (b.startsWith('/db/LOCK.breaking-')) {
              const fd = target.open('/db/LOCK', 'w')
              const bytes = Buffer.from(liveOwner())
              target.write(fd, bytes, 0, bytes.length, 0)
              target.close(fd)
            }
            target.link(a, b)
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    expect(codeOf(() => DirLock.acquire(wrapped, '/db'))).toBe('KV_LOCKED')
    expect(fs.readFile('/db/LOCK').toString()).toBe(liveOwner())
  })

  it('waits while a live opener holds the breaker, then takes over', () => {
    const dir = tmpDir()
    putOldLock(dir, 'garbage')
    let breaker: string | undefined
    let reads = 0
    const fs = hookedFs({
      // Another live opener holds the breaker of this stale LOCK when we come to take it.
      link: (_a, b) => {
        if (breaker === undefined && b.includes('LOCK.breaking-')) nfs.writeFileSync((breaker = b), liveOwner())
      },
      // It finishes after a while: the stale LOCK and its breaker go.
      open: (p, f) => {
        if (p === breaker && f === 'r' && ++reads === 5) {
          nfs.unlinkSync(breaker)
          nfs.unlinkSync(join(dir, LOCK_FILE))
        }
      },
    })
    const lock = DirLock.acquire(fs, dir)
    expect(reads).toBe(5)
    expect(JSON.parse(lockText(dir)).pid).toBe(process.pid)
    expect(nfs.readdirSync(dir)).toEqual([LOCK_FILE])
    lock.release()
  })

  it('breaks a breaker whose holder died (or a garbage one), and one of those nested', () => {
    for (const plants of [[deadOwner()], [''], [deadOwner(), deadOwner()], [deadOwner(), '', deadOwner()]]) {
      const dir = tmpDir()
      putOldLock(dir, deadOwner())
      const planted: string[] = []
      // Each time we go for a breaker, one left by a dead opener is in the way, as many levels deep as planted.
      const fs = hookedFs({
        link: (_a, b) => {
          if (b.includes('LOCK.breaking-') && planted.length < plants.length && !planted.includes(b)) {
            nfs.writeFileSync(b, plants[planted.length] as string)
            planted.push(b)
          }
        },
      })
      const lock = DirLock.acquire(fs, dir)
      expect(planted.length).toBe(plants.length)
      expect(nfs.readdirSync(dir)).toEqual([LOCK_FILE])
      lock.release()
    }
  })

  it('ignores an old version\'s LOCK.breaking, and sweeps it once long abandoned', () => {
    const dir = tmpDir()
    putOldLock(dir, deadOwner())
    putOldLock(dir, '', 'LOCK.breaking')
    DirLock.acquire(nodeFs, dir).release()
    expect(nfs.readdirSync(dir)).toEqual([])
  })

  it("sweeps dead openers' claim files and the files they moved aside, and nothing else", () => {
    const dir = tmpDir()
    const dead = 'a'.repeat(16)
    const live = 'b'.repeat(16)
    putOldLock(dir, deadOwner(), `LOCK.claim-${dead}`)
    putOldLock(dir, 'garbage', `LOCK.stale-${dead}`)
    putOldLock(dir, '', `LOCK.claim-${'c'.repeat(16)}`) // writer killed before writing
    putOldLock(dir, liveOwner(), `LOCK.claim-${live}`)
    putOldLock(dir, 'garbage', `LOCK.stale-${live}`)
    putOldLock(dir, deadOwner(), `LOCK.breaking-${'e'.repeat(16)}`)
    putOldLock(dir, deadOwner(), `LOCK.breaking-${'e'.repeat(16)}.breaking-${'f'.repeat(16)}`)
    putOldLock(dir, 'garbage', `LOCK.breaking-${'e'.repeat(16)}.stale-${dead}`)
    putOldLock(dir, liveOwner(), `LOCK.breaking-${'1'.repeat(16)}`)
    nfs.writeFileSync(join(dir, 'LOCK.breaking'), '') // an old version taking over right now
    nfs.writeFileSync(join(dir, `LOCK.claim-${'d'.repeat(16)}`), '') // being written right now
    for (const other of ['LOCK.claim-notes', 'LOCK.stale', 'wal-0000000001.log', 'LOCKS']) nfs.writeFileSync(join(dir, other), 'x')
    const lock = DirLock.acquire(nodeFs, dir)
    expect(nfs.readdirSync(dir).sort()).toEqual(
      [
        LOCK_FILE,
        'LOCK.breaking',
        `LOCK.breaking-${'1'.repeat(16)}`,
        'LOCK.claim-notes',
        'LOCK.stale',
        'LOCKS',
        `LOCK.claim-${live}`,
        `LOCK.claim-${'d'.repeat(16)}`,
        `LOCK.stale-${live}`,
        'wal-0000000001.log',
      ].sort(),
    )
    lock.release()
  })
})

describe('DirLock I/O errors', () => {
  /** `fs`, except that the first breaker it is asked to link is already held by a dead opener. */
  function withDeadBreaker(fs: MemFs): Fs {
    let planted = false
    return new Proxy(fs, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop, target) as unknown
        if (prop === 'link') {
          return (a: string, b: string) => {
            if (!planted && b.includes('LOCK.breaking-')) {
              planted = true
              target.putFile(b, Buffer.from(deadOwner()))
            }
            target.link(a, b)
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }

  interface Setup {
    files: Record<string, string>
    deadBreaker?: boolean
  }

  function prepare(setup: Setup): { mem: MemFs; fs: Fs } {
    const mem = new MemFs()
    mem.mkdir('/db')
    for (const [name, text] of Object.entries(setup.files)) mem.putFile(`/db/${name}`, Buffer.from(text))
    return { mem, fs: setup.deadBreaker === true ? withDeadBreaker(mem) : mem }
  }

  /** Run acquire (and release) with a fault at counted op `k` after setup. */
  function faulted(setup: Setup, k: number, persistent: boolean): { fs: MemFs; err: unknown } {
    const { mem, fs } = prepare(setup)
    mem.failAt(mem.opCount + k, 'ENOSPC', { persistent })
    try {
      DirLock.acquire(fs, '/db').release()
      return { fs: mem, err: undefined }
    } catch (err) {
      return { fs: mem, err }
    }
  }

  const setups: Record<string, Setup> = {
    'a free directory': { files: {} },
    'a garbage LOCK': { files: { LOCK: '' } },
    'a dead LOCK, a dead breaker in the way, leftovers to sweep': {
      files: { LOCK: deadOwner(), [`LOCK.claim-${'a'.repeat(16)}`]: deadOwner(), [`LOCK.stale-${'a'.repeat(16)}`]: '' },
      deadBreaker: true,
    },
  }

  for (const [name, setup] of Object.entries(setups)) {
    it(`a fault at any file operation is KV_IO naming the path and leaves no partial LOCK (${name})`, () => {
      const { mem: probe, fs: probeFs } = prepare(setup)
      const before = probe.opCount
      DirLock.acquire(probeFs, '/db').release()
      const ops = probe.opCount - before
      expect(ops).toBeGreaterThan(2)
      for (let k = 0; k < ops; k++) {
        for (const persistent of [false, true]) {
          const { fs, err } = faulted(setup, k, persistent)
          if (err === undefined) continue // a fault in housekeeping (or release) is not an open failure
          expect(err, `op ${k}`).toBeInstanceOf(StoreError)
          expect(err, `op ${k}`).toMatchObject({ code: 'KV_IO', cause: { code: 'ENOSPC' } })
          expect((err as Error).message, `op ${k}`).toContain('/db/LOCK')
          // A LOCK left is never one of ours half-made: it is complete, or the original stale one.
          if (fs.stat('/db/LOCK') !== undefined) {
            const text = fs.readFile('/db/LOCK').toString()
            if (text.includes(`"pid":${process.pid}`)) expect(JSON.parse(text)).toMatchObject({ pid: process.pid })
          }
          if (!persistent) {
            // Cleanup ran (its unlinks do not fail): no claim left, and no LOCK of ours.
            const claims = fs.readdir('/db').filter((n) => n.startsWith('LOCK.claim-') && !(n in setup.files))
            expect(claims, `op ${k}`).toEqual([])
            if (fs.stat('/db/LOCK') !== undefined) expect(fs.readFile('/db/LOCK').toString()).not.toContain(`"pid":${process.pid}`)
          }
          // The failed open released its place in the registry: a retry on a healthy disk works.
          const again = DirLock.acquire(fs.crash('keep-all'), '/db')
          again.release()
        }
      }
    })
  }

  it('a full disk makes open fail with KV_IO (cause ENOSPC) and leaves the directory empty', () => {
    const disk = new FullDisk()
    disk.mem.mkdir('/db')
    disk.full = true
    let err: unknown
    try {
      DirLock.acquire(disk.fs, '/db')
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'KV_IO', cause: { code: 'ENOSPC' } })
    expect((err as Error).message).toContain('/db/LOCK')
    expect(disk.mem.readdir('/db')).toEqual([])
    disk.full = false
    DirLock.acquire(disk.fs, '/db').release()
  })

  it('a write that fails after the file was created (ENOSPC on data, not inode) leaves no LOCK', () => {
    const fs = new MemFs()
    fs.mkdir('/db')
    fs.failAt(fs.opCount + 1, 'ENOSPC') // op 0 creates the file, op 1 writes it
    expect(codeOf(() => DirLock.acquire(fs, '/db'))).toBe('KV_IO')
    expect(fs.readdir('/db')).toEqual([])
  })
})

describe('named locks (a file store locks <file>.lock beside its file)', () => {
  it('exclude like LOCK, independently of LOCK and of other names, and take over the same way', () => {
    const dir = tmpDir()
    nfs.writeFileSync(join(dir, 'data (1).json'), '{}')
    const name = 'data (1).json.lock'
    const a = DirLock.acquire(nodeFs, dir, { name })
    expect(JSON.parse(nfs.readFileSync(join(dir, name), 'utf8')).pid).toBe(process.pid)
    expect(codeOf(() => DirLock.acquire(nodeFs, dir, { name }))).toBe('KV_LOCKED')
    const other = DirLock.acquire(nodeFs, dir, { name: 'other.kvs.lock' })
    const dirLock = DirLock.acquire(nodeFs, dir)
    expect(nfs.readdirSync(dir).sort()).toEqual([LOCK_FILE, 'data (1).json', name, 'other.kvs.lock'].sort())
    for (const l of [a, other, dirLock]) l.release()
    expect(nfs.readdirSync(dir)).toEqual(['data (1).json'])
    // Stale: taken over, and the dead opener's leftovers (named after this lock) swept.
    putOldLock(dir, deadOwner(), name)
    putOldLock(dir, deadOwner(), `${name}.claim-${'a'.repeat(16)}`)
    putOldLock(dir, deadOwner(), `LOCK.claim-${'b'.repeat(16)}`) // another lock's: not this one's to sweep
    const b = DirLock.acquire(nodeFs, dir, { name })
    expect(nfs.readdirSync(dir).sort()).toEqual([`LOCK.claim-${'b'.repeat(16)}`, 'data (1).json', name].sort())
    b.release()
  })

  it('refuses names that are not plain file names', () => {
    const dir = tmpDir()
    for (const name of ['', '.', '..', 'a/b', 'a\\b', 'a\0b', 'x'.repeat(121)]) {
      expect(codeOf(() => DirLock.acquire(nodeFs, dir, { name }))).toBe('KV_INVALID_ARGUMENT')
    }
    expect(nfs.readdirSync(dir)).toEqual([])
  })
})

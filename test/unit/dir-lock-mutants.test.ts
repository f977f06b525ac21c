// Rules of the lock protocol that Stryker showed dir-lock.test.ts leaves free (see
// docs/MUTATION.md): who counts as alive, the exact limits, each error's code and
// message, the breaker names other versions compute, and that no descriptor, claim,
// close or sleep is wasted. Mostly on MemFs, with a proxy that intercepts single calls.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as nfs from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DirLock, LOCK_FILE } from '../../src/dir-lock.js'
import type { Fs, FsStat } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { MemFs } from '../helpers/mem-fs.js'
import { tmpDir } from '../helpers/tmp.js'

/** What `readFileSync` of a `/proc/…` path gives: the real file, none (no procfs), or a stat line cut short. */
const proc = vi.hoisted(() => ({ mode: 'real' as 'real' | 'unreadable' | 'short' }))
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>()
  const readFileSync = ((path: unknown, ...rest: unknown[]) => {
    if (typeof path === 'string' && path.startsWith('/proc/') && proc.mode !== 'real') {
      if (proc.mode === 'short') return '1 (node) S 0 1'
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' })
    }
    return (real.readFileSync as (...a: unknown[]) => unknown)(path, ...rest)
  }) as typeof real.readFileSync
  return { ...real, readFileSync, default: { ...real, readFileSync } }
})

afterEach(() => {
  proc.mode = 'real'
  vi.restoreAllMocks()
})

const HOST = hostname()

function startOf(pid: number): string {
  const stat = nfs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? ''
}

/** A lock record on this host; `start: undefined` leaves the field out. */
function record(fields: Record<string, unknown>): string {
  return JSON.stringify({ host: HOST, ...fields })
}

/** Record of a process alive for the whole test (vitest's parent) with its real start time, unless overridden. */
function live(fields: Record<string, unknown> = {}): string {
  return record({ pid: process.ppid, start: startOf(process.ppid), ...fields })
}

let deadPid: number | undefined
function dead(): string {
  deadPid ??= Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString())
  return record({ pid: deadPid, start: '1' })
}

function memDb(files: Record<string, string | Buffer> = {}): MemFs {
  const mem = new MemFs()
  mem.mkdir('/db')
  for (const [name, text] of Object.entries(files)) mem.putFile(`/db/${name}`, Buffer.from(text))
  return mem
}

type Method = 'open' | 'close' | 'write' | 'read' | 'fstat' | 'stat' | 'rename' | 'link' | 'unlink'
/** Each hook gets the real call and its arguments, and decides what happens. */
type Hooks = { [K in Method]?: (orig: MemFs[K], ...args: Parameters<MemFs[K]>) => ReturnType<MemFs[K]> }

/** `mem` behind a proxy whose hooked methods run the hook instead. */
function hook(mem: MemFs, hooks: Hooks): Fs {
  return new Proxy(mem, {
    get: (target, prop) => {
      const v = Reflect.get(target, prop, target) as unknown
      if (typeof v !== 'function') return v
      const bound = (v as (...a: unknown[]) => unknown).bind(target)
      const h = (hooks as Record<PropertyKey, ((orig: unknown, ...a: unknown[]) => unknown) | undefined>)[prop]
      return h === undefined ? bound : (...a: unknown[]) => h(bound, ...a)
    },
  })
}

/** Like fs.readSync and fs.writeSync, a hook that shortens a transfer still refuses a range outside the buffer. */
function inRange(buf: Uint8Array, off: number, len: number): void {
  if (off < 0 || len < 0 || off + len > buf.byteLength) throw Object.assign(new RangeError(`range [${off}, ${off + len}) outside ${buf.byteLength} bytes`), { code: 'ERR_OUT_OF_RANGE' })
}

/** `first(matches)` is true for the first call where `matches` is, and false ever after. */
function firstTime(): (matches: boolean) => boolean {
  let done = false
  return (matches) => matches && !done && (done = true)
}

function errno(code: string, what = 'call'): Error {
  return Object.assign(new Error(`${code}: ${what}`), { code })
}

interface Outcome {
  code: string
  message: string
  cause?: string
}
/** Acquire (and release at once); `ok` or the error's code, message and cause code. */
function attempt(fs: Fs, dir = '/db', name?: string): Outcome | 'ok' {
  try {
    DirLock.acquire(fs, dir, name === undefined ? {} : { name }).release()
    return 'ok'
  } catch (err) {
    const e = err as { code?: string; message: string; cause?: { code?: string } }
    return { code: e.code ?? 'none', message: e.message, ...(e.cause?.code !== undefined ? { cause: e.cause.code } : {}) }
  }
}

function codeOf(fs: Fs, dir = '/db'): string {
  const r = attempt(fs, dir)
  return r === 'ok' ? 'ok' : r.code
}

/**
 * Date.now under test control, and sleeps (DirLock's Atomics.wait) that advance it
 * instead of blocking. `sleeps` lists every sleep asked for, in ms.
 */
function virtualTime(start = 1_800_000_000_000): { now: () => number; advance: (ms: number) => void; sleeps: number[] } {
  let now = start
  const sleeps: number[] = []
  vi.spyOn(Date, 'now').mockImplementation(() => now)
  vi.spyOn(Atomics, 'wait').mockImplementation((_a, _i, _v, ms) => {
    sleeps.push(ms ?? Infinity)
    now += ms ?? 0
    return 'timed-out'
  })
  return { now: () => now, advance: (ms) => (now += ms), sleeps }
}

const isBreaker = (path: string): boolean => /\.breaking-[0-9a-f]{16}$/.test(path)

describe('who holds a lock', () => {
  it('the owner record carries pid, host, a nonce and this process start time (field 22 of /proc/self/stat)', () => {
    const dir = tmpDir()
    const lock = DirLock.acquire(nodeFs, dir)
    const rec = JSON.parse(nfs.readFileSync(join(dir, LOCK_FILE), 'utf8')) as Record<string, unknown>
    lock.release()
    expect(rec).toEqual({ pid: process.pid, start: startOf(process.pid), host: HOST, nonce: expect.stringMatching(/^[0-9a-f]{16}$/) })
    expect(rec.start).toMatch(/^\d+$/)
  })

  it('a LOCK from another host is held, even when a process of that pid here is gone', () => {
    const mem = memDb({ LOCK: JSON.stringify({ pid: JSON.parse(dead()).pid, start: '1', host: 'elsewhere' }) })
    const r = attempt(mem)
    expect(r).toMatchObject({ code: 'KV_LOCKED', message: `/db is locked by process ${JSON.parse(dead()).pid} on elsewhere` })
  })

  it('a live pid holds the lock when its start time matches, is a number, or is not recorded; a different one is a reused pid', () => {
    const cases: [string, string][] = [
      [live(), 'KV_LOCKED'],
      [live({ start: Number(startOf(process.ppid)) }), 'KV_LOCKED'],
      [live({ start: undefined }), 'KV_LOCKED'],
      [live({ start: '' }), 'KV_LOCKED'],
      [live({ start: '1' }), 'ok'],
      // Not a type any version writes: garbage, even though it would print as the right start.
      [live({ start: [startOf(process.ppid)] }), 'ok'],
      [live({ start: true }), 'ok'],
    ]
    for (const [text, want] of cases) expect(codeOf(memDb({ LOCK: text })), text).toBe(want)
  })

  it('a LOCK naming this pid without a start time is this process on the real file system: KV_LOCKED', () => {
    const dir = tmpDir()
    nfs.writeFileSync(join(dir, LOCK_FILE), record({ pid: process.pid }))
    expect(codeOf(nodeFs, dir)).toBe('KV_LOCKED')
    nfs.writeFileSync(join(dir, LOCK_FILE), record({ pid: process.pid, start: '' }))
    expect(codeOf(nodeFs, dir)).toBe('KV_LOCKED')
    expect(JSON.parse(nfs.readFileSync(join(dir, LOCK_FILE), 'utf8'))).toEqual({ host: HOST, pid: process.pid, start: '' })
  })

  it('only ESRCH from kill(pid, 0) means gone: EPERM (another user’s process) is alive', () => {
    const pid = 4_000_000
    const kill = vi.spyOn(process, 'kill')
    kill.mockImplementation(() => {
      throw errno('EPERM', 'kill')
    })
    expect(attempt(memDb({ LOCK: record({ pid, start: '1' }) }))).toMatchObject({ code: 'KV_LOCKED', message: `/db is locked by process ${pid} on ${HOST}` })
    kill.mockImplementation(() => {
      throw errno('ESRCH', 'kill')
    })
    expect(codeOf(memDb({ LOCK: record({ pid, start: '1' }) }))).toBe('ok')
    expect(kill).toHaveBeenCalledWith(pid, 0)
  })

  it('pids run from 1 to 2^31-1: both ends are pids whose process may be alive', () => {
    // init (pid 1) is alive; kill(1, 0) succeeds as root and is EPERM otherwise: alive either way.
    expect(codeOf(memDb({ LOCK: record({ pid: 1, start: startOf(1) }) }))).toBe('KV_LOCKED')
    // A live process (as kill reports it) at the top of the range, whose /proc entry cannot be read: held.
    vi.spyOn(process, 'kill').mockImplementation(() => true)
    expect(codeOf(memDb({ LOCK: record({ pid: 0x7fff_ffff, start: '5' }) }))).toBe('KV_LOCKED')
    expect(codeOf(memDb({ LOCK: record({ pid: 0x8000_0000, start: '5' }) }))).toBe('ok')
  })

  it('a LOCK whose host is empty or not a string is garbage, taken over even when its pid is alive', () => {
    for (const host of ['', 5, null]) expect(codeOf(memDb({ LOCK: live({ host }) })), String(host)).toBe('ok')
  })
})

describe('where /proc cannot be read (no procfs, a hardened container)', () => {
  /** A fresh copy of DirLock: this process's start time is read once per module. */
  async function freshDirLock(): Promise<typeof DirLock> {
    vi.resetModules()
    return (await import('../../src/dir-lock.js')).DirLock
  }

  for (const mode of ['unreadable', 'short'] as const) {
    it(`start times are unknown (${mode}): recorded as '', and a live pid is assumed to be the owner`, async () => {
      const ppidStart = startOf(process.ppid)
      proc.mode = mode
      const Fresh = await freshDirLock()
      const mem = memDb()
      Fresh.acquire(mem, '/db').release()
      const dir = tmpDir()
      const lock = Fresh.acquire(nodeFs, dir)
      expect(JSON.parse(nfs.readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, start: '' })
      lock.release()
      // The live parent with a start time that does not match: cannot tell a reused pid, so held.
      const other = memDb({ LOCK: record({ pid: process.ppid, start: String(Number(ppidStart) + 1) }) })
      expect(() => Fresh.acquire(other, '/db')).toThrow(expect.objectContaining({ code: 'KV_LOCKED' }))
      // This pid with some start time on the real file system: this process, as far as can be told.
      nfs.writeFileSync(join(dir, LOCK_FILE), record({ pid: process.pid, start: '1' }))
      expect(() => Fresh.acquire(nodeFs, dir)).toThrow(expect.objectContaining({ code: 'KV_LOCKED' }))
    })
  }
})

describe('reading a lock file', () => {
  it('an error opening LOCK other than ENOENT is KV_IO naming it, not a missing LOCK', () => {
    const mem = memDb({ LOCK: live() })
    const first = firstTime()
    const fs = hook(mem, {
      open: (orig, path, flags, mode) => {
        if (first(path === '/db/LOCK' && flags === 'r')) throw errno('EACCES', 'open')
        return orig(path, flags, mode)
      },
    })
    expect(attempt(fs)).toEqual({ code: 'KV_IO', message: 'cannot read lock file /db/LOCK', cause: 'EACCES' })
    expect(mem.readdir('/db')).toEqual(['LOCK'])
  })

  it('an error reading is KV_IO naming the file, and the descriptor is closed', () => {
    const mem = memDb({ LOCK: live() })
    const fs = hook(mem, {
      read: () => {
        throw errno('EIO', 'read')
      },
    })
    expect(attempt(fs)).toEqual({ code: 'KV_IO', message: 'cannot read lock file /db/LOCK', cause: 'EIO' })
    expect(mem.openFileCount).toBe(0)
    expect(mem.readFile('/db/LOCK').toString()).toBe(live())
  })

  it('no descriptor is left open, whether the lock is held, taken over or acquired', () => {
    for (const files of [{ LOCK: live() }, { LOCK: dead() }, { LOCK: 'garbage' }, {}]) {
      const mem = memDb(files)
      attempt(mem)
      expect(mem.openFileCount, JSON.stringify(files)).toBe(0)
    }
  })

  it('reads a lock in as many calls as the file system needs (3 bytes each)', () => {
    const mem = memDb({ LOCK: live() })
    const fs = hook(mem, { read: (orig, fd, buf, off, len, pos) => (inRange(buf, off, len), orig(fd, buf, off, Math.min(len, 3), pos)) })
    expect(codeOf(fs)).toBe('KV_LOCKED')
  })

  /** `mem`, except that fstat of LOCK (or of it moved aside) opened for reading reports `size(real)` instead of the real size. */
  function misreportedSize(mem: MemFs, size: (real: number) => number): Fs {
    const lockFds = new Set<number>()
    return hook(mem, {
      open: (orig, path, flags, mode) => {
        const fd = orig(path, flags, mode)
        if ((path === '/db/LOCK' || path.startsWith('/db/LOCK.stale-')) && flags === 'r') lockFds.add(fd)
        return fd
      },
      fstat: (orig, fd) => {
        const st = orig(fd)
        return lockFds.has(fd) ? ({ ...st, size: size(st.size) } as FsStat) : st
      },
    })
  }

  it('a LOCK shorter than fstat said (it shrank meanwhile) is judged by the bytes read', () => {
    const mem = memDb({ LOCK: live() })
    expect(codeOf(misreportedSize(mem, (n) => n + 100))).toBe('KV_LOCKED')
  })

  it('a LOCK reported as 1 TiB is read up to 4 KiB only (bounded memory): garbage, taken over', () => {
    const mem = memDb({ LOCK: live() })
    expect(codeOf(misreportedSize(mem, () => 2 ** 40))).toBe('ok')
  })

  it('up to 4096 bytes a LOCK is parsed; from 4097 it is garbage, whatever it starts with', () => {
    const rec = live()
    expect(codeOf(memDb({ LOCK: rec.padEnd(4096, ' ') }))).toBe('KV_LOCKED')
    expect(codeOf(memDb({ LOCK: rec.padEnd(4097, ' ') }))).toBe('ok')
  })
})

describe('creating the claim', () => {
  it('a file system that takes 5 bytes per write still gets the whole record', () => {
    const mem = memDb()
    const fs = hook(mem, { write: (orig, fd, buf, off, len, pos) => (inRange(buf, off, len), orig(fd, buf, off, Math.min(len, 5), pos)) })
    const lock = DirLock.acquire(fs, '/db')
    expect(JSON.parse(mem.readFile('/db/LOCK').toString())).toMatchObject({ pid: process.pid, host: HOST })
    lock.release()
  })

  it('a write that makes no progress is KV_IO "short write", not a loop, and leaves nothing', () => {
    const mem = memDb()
    const fs = hook(mem, { write: () => 0 })
    const r = attempt(fs)
    expect(r).toMatchObject({ code: 'KV_IO', message: expect.stringMatching(/^cannot write lock file \/db\/LOCK\.claim-[0-9a-f]{16}$/), cause: 'EIO' })
    expect(mem.readdir('/db')).toEqual([])
    expect(mem.openFileCount).toBe(0)
  })

  it('the cause of a write that makes no progress says "short write to" the claim', () => {
    const fs = hook(memDb(), { write: () => 0 })
    let cause: unknown
    try {
      DirLock.acquire(fs, '/db').release()
    } catch (err) {
      cause = (err as { cause?: unknown }).cause
    }
    expect((cause as Error | undefined)?.message).toMatch(/^short write to \/db\/LOCK\.claim-[0-9a-f]{16}$/)
  })

  /** Records every close; `failClose` makes a close of the claim fail after releasing the descriptor (as Linux does). */
  function closes(mem: MemFs, opts: { failWrite?: boolean; failClose?: boolean }): { fs: Fs; closed: number[]; claimFd: () => number } {
    const closed: number[] = []
    let claimFd = -100
    const fs = hook(mem, {
      open: (orig, path, flags, mode) => {
        const fd = orig(path, flags, mode)
        if (path.includes('.claim-')) claimFd = fd
        return fd
      },
      write: (orig, fd, buf, off, len, pos) => {
        if (opts.failWrite === true) throw errno('ENOSPC', 'write')
        return orig(fd, buf, off, len, pos)
      },
      close: (orig, fd) => {
        closed.push(fd)
        orig(fd)
        if (opts.failClose === true && fd === claimFd) throw errno('EIO', 'close')
      },
    })
    return { fs, closed, claimFd: () => claimFd }
  }

  it('a failing write closes the claim once and removes it', () => {
    const mem = memDb()
    const { fs, closed, claimFd } = closes(mem, { failWrite: true })
    expect(attempt(fs)).toMatchObject({ code: 'KV_IO', cause: 'ENOSPC' })
    expect(closed).toEqual([claimFd()])
    expect(mem.readdir('/db')).toEqual([])
    expect(mem.openFileCount).toBe(0)
  })

  it('a failing close is not retried (the descriptor is gone either way) and the claim is removed', () => {
    const mem = memDb()
    const { fs, closed, claimFd } = closes(mem, { failClose: true })
    expect(attempt(fs)).toMatchObject({ code: 'KV_IO', message: expect.stringMatching(/^cannot write lock file \/db\/LOCK\.claim-/), cause: 'EIO' })
    expect(closed).toEqual([claimFd()])
    expect(mem.readdir('/db')).toEqual([])
  })
})

describe('linking', () => {
  it('an Fs without link() is KV_IO naming the lock file, and leaves nothing', () => {
    const mem = memDb()
    const fs = new Proxy(mem, {
      get: (target, prop) => {
        if (prop === 'link') return undefined
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    expect(attempt(fs)).toEqual({ code: 'KV_IO', message: 'cannot lock /db/LOCK: the file system has no link()' })
    expect(mem.readdir('/db')).toEqual([])
  })

  it('a link error other than EEXIST is KV_IO, not a LOCK held by someone', () => {
    const mem = memDb()
    const first = firstTime()
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (first(b === '/db/LOCK')) throw errno('EIO', 'link')
        orig(a, b)
      },
    })
    expect(attempt(fs)).toEqual({ code: 'KV_IO', message: 'cannot create lock file /db/LOCK', cause: 'EIO' })
    expect(mem.readdir('/db')).toEqual([])
  })

  it('a link that succeeded but reported EEXIST (NFS replaying a request) is a held lock, not another owner', () => {
    const dir = tmpDir()
    const fs = Object.assign(Object.create(nodeFs) as Fs, {
      link: (a: string, b: string) => {
        nodeFs.link?.(a, b)
        if (b === join(dir, LOCK_FILE)) throw errno('EEXIST', 'link')
      },
    })
    const lock = DirLock.acquire(fs, dir)
    expect(JSON.parse(nfs.readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid)
    lock.release()
    expect(nfs.readdirSync(dir)).toEqual([])
  })
})

describe('the breaker', () => {
  /** The breaker names `fs` is asked to link, in order. */
  function breakersLinked(mem: MemFs, strip?: boolean): { fs: Fs; names: string[] } {
    const names: string[] = []
    const noIds = (st: FsStat | undefined): FsStat | undefined => {
      if (st === undefined) return st
      const { dev: _dev, ino: _ino, ...rest } = st
      return rest
    }
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b)) names.push(b)
        orig(a, b)
      },
      ...(strip === true ? { fstat: (orig, fd) => noIds(orig(fd)) as FsStat, stat: (orig, p) => noIds(orig(p)) } : {}),
    })
    return { fs, names }
  }

  it('is named LOCK.breaking-<first 16 hex of sha256("dev:ino:size:" + bytes)>: the name every version computes', () => {
    const mem = memDb({ LOCK: dead() })
    const st = mem.stat('/db/LOCK') as FsStat
    const id = createHash('sha256').update(`${st.dev}:${st.ino}:${st.size}:`).update(dead()).digest('hex').slice(0, 16)
    const { fs, names } = breakersLinked(mem)
    expect(codeOf(fs)).toBe('ok')
    expect(names).toEqual([`/db/LOCK.breaking-${id}`])
  })

  it('on a file system that reports no inode, dev and ino hash as empty', () => {
    const mem = memDb({ LOCK: 'garbage' })
    const id = createHash('sha256').update(`::7:`).update('garbage').digest('hex').slice(0, 16)
    const { fs, names } = breakersLinked(mem, true)
    expect(codeOf(fs)).toBe('ok')
    expect(names).toEqual([`/db/LOCK.breaking-${id}`])
  })

  it('a stale LOCK is taken over without sleeping; a breaker held by a live opener is looked at every 10 ms', () => {
    const time = virtualTime()
    expect(codeOf(memDb({ LOCK: dead() }))).toBe('ok')
    expect(time.sleeps).toEqual([])
    const mem = memDb({ LOCK: 'garbage' })
    let looks = 0
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b) && looks === 0) mem.putFile(b, Buffer.from(live()))
        orig(a, b)
      },
      // The other opener finishes on our third look: the stale LOCK and its breaker go.
      open: (orig, path, flags, mode) => {
        if (isBreaker(path) && flags === 'r' && ++looks === 3) {
          mem.unlink(path)
          mem.unlink('/db/LOCK')
        }
        return orig(path, flags, mode)
      },
    })
    expect(codeOf(fs)).toBe('ok')
    expect(looks).toBe(3)
    expect(time.sleeps).toEqual([10, 10])
  })

  it('a breaker gone between the failed link and the read (released meanwhile) means look again at once', () => {
    const time = virtualTime()
    const mem = memDb({ LOCK: dead() })
    let failed = false
    const first = firstTime()
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (first(isBreaker(b))) {
          failed = true
          throw errno('EEXIST', 'link')
        }
        orig(a, b)
      },
    })
    expect(codeOf(fs)).toBe('ok')
    expect(failed).toBe(true)
    expect(time.sleeps).toEqual([])
  })

  /** Every breaker of LOCK is held by a live opener that never finishes. */
  function heldForever(mem: MemFs): Fs {
    return hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b) && mem.stat(b) === undefined) mem.putFile(b, Buffer.from(live()))
        orig(a, b)
      },
    })
  }

  it('gives up with KV_LOCKED once 5 s have passed, not one look later', () => {
    const time = virtualTime()
    const start = time.now()
    expect(attempt(heldForever(memDb({ LOCK: 'garbage' })))).toEqual({ code: 'KV_LOCKED', message: '/db: could not take over a stale lock' })
    expect(time.now() - start).toBe(5000)
    expect(time.sleeps.length).toBe(500)
  })

  it('a named lock gives up naming its file', () => {
    virtualTime()
    const mem = memDb({ 'data.kvs.lock': 'garbage' })
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b) && mem.stat(b) === undefined) mem.putFile(b, Buffer.from(live()))
        orig(a, b)
      },
    })
    expect(attempt(fs, '/db', 'data.kvs.lock')).toEqual({ code: 'KV_LOCKED', message: '/db/data.kvs.lock: could not take over a stale lock' })
  })

  /** Each breaker of a breaker … is in the way, held by a dead opener, `depth` levels deep. */
  function deadChain(mem: MemFs, depth: number): { fs: Fs; planted: string[] } {
    const planted: string[] = []
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b) && planted.length < depth && !planted.includes(b)) {
          mem.putFile(b, Buffer.from(dead()))
          planted.push(b)
        }
        orig(a, b)
      },
    })
    return { fs, planted }
  }

  it('breaks breakers of dead openers 4 levels deep, and no deeper (gives up instead of recursing on)', () => {
    const time = virtualTime()
    const four = memDb({ LOCK: dead() })
    const a = deadChain(four, 4)
    expect(codeOf(a.fs)).toBe('ok')
    expect(a.planted.map((p) => p.split('.breaking-').length - 1)).toEqual([1, 2, 3, 4])
    expect(four.readdir('/db')).toEqual([])
    expect(time.sleeps).toEqual([])
    const five = memDb({ LOCK: dead() })
    const b = deadChain(five, 5)
    expect(attempt(b.fs)).toMatchObject({ code: 'KV_LOCKED', message: '/db: could not take over a stale lock' })
    expect(b.planted.length).toBe(5)
    expect(time.sleeps.length).toBe(500)
    expect(five.readFile('/db/LOCK').toString()).toBe(dead())
  })

  it('a LOCK rewritten in place by a live owner (same inode, same size) is left where it is: never moved aside', () => {
    const rec = live()
    const mem = memDb({ LOCK: 'x'.repeat(rec.length) })
    const fs = hook(mem, {
      link: (orig, a, b) => {
        orig(a, b)
        if (isBreaker(b)) {
          const fd = mem.open('/db/LOCK', 'r+')
          mem.write(fd, Buffer.from(rec), 0, rec.length, 0)
          mem.close(fd)
        }
      },
    })
    expect(codeOf(fs)).toBe('KV_LOCKED')
    expect(mem.count('rename')).toBe(0)
    expect(mem.readFile('/db/LOCK').toString()).toBe(rec)
    expect(mem.readdir('/db')).toEqual(['LOCK'])
  })

  it('its holder removes the breaker only while it is still its own', () => {
    const mem = memDb({ LOCK: dead() })
    let breaker = ''
    const fs = hook(mem, {
      link: (orig, a, b) => {
        if (isBreaker(b)) breaker = b
        orig(a, b)
      },
      // While the stale LOCK is moved aside, another (live) opener's file takes the breaker's name.
      rename: (orig, from, to) => {
        if (from === '/db/LOCK') mem.putFile(breaker, Buffer.from(live()))
        orig(from, to)
      },
    })
    const lock = DirLock.acquire(fs, '/db')
    expect(mem.readFile(breaker).toString()).toBe(live())
    lock.release()
  })
})

describe('removing a stale LOCK', () => {
  it('gone before it could be moved aside (ENOENT): look again and take the lock', () => {
    const mem = memDb({ LOCK: dead() })
    const fs = hook(mem, {
      rename: (orig, from, to) => {
        if (from === '/db/LOCK') {
          mem.unlink(from)
          throw errno('ENOENT', 'rename')
        }
        orig(from, to)
      },
    })
    expect(codeOf(fs)).toBe('ok')
    expect(mem.readdir('/db')).toEqual([])
  })

  it('moving it aside fails otherwise: KV_IO naming it, LOCK untouched', () => {
    const mem = memDb({ LOCK: dead() })
    const first = firstTime()
    const fs = hook(mem, {
      rename: (orig, from, to) => {
        if (first(from === '/db/LOCK')) throw errno('EIO', 'rename')
        orig(from, to)
      },
    })
    expect(attempt(fs)).toEqual({ code: 'KV_IO', message: 'cannot move stale lock file /db/LOCK aside', cause: 'EIO' })
    expect(mem.readdir('/db')).toEqual(['LOCK'])
  })

  /** A live owner's LOCK lands just before the stale one is moved aside; putting it back fails with `code`. */
  function putBackFails(code: string): MemFs & { result: Outcome | 'ok' } {
    const mem = memDb({ LOCK: 'garbage' })
    const fs = hook(mem, {
      rename: (orig, from, to) => {
        if (from === '/db/LOCK') mem.putFile('/db/LOCK', Buffer.from(live()))
        orig(from, to)
      },
      link: (orig, a, b) => {
        if (a.includes('.stale-')) throw errno(code, 'link')
        orig(a, b)
      },
    })
    return Object.assign(mem, { result: attempt(fs) })
  }

  it('a file moved aside by mistake that cannot be put back is KV_IO, and not left aside', () => {
    const mem = putBackFails('EIO')
    expect(mem.result).toEqual({ code: 'KV_IO', message: 'cannot restore lock file /db/LOCK', cause: 'EIO' })
    expect(mem.readdir('/db').filter((n) => n.includes('.stale-'))).toEqual([])
  })

  it('one that cannot be put back because the name is taken (EEXIST) is dropped, and the open goes on', () => {
    const mem = putBackFails('EEXIST')
    expect(mem.result).toBe('ok')
    expect(mem.readdir('/db')).toEqual([])
  })

  it('deleting the file moved aside: ENOENT is fine, any other error is KV_IO naming it', () => {
    for (const code of ['ENOENT', 'EIO']) {
      const mem = memDb({ LOCK: dead() })
      const first = firstTime()
      const fs = hook(mem, {
        unlink: (orig, path) => {
          if (first(path.includes('.stale-'))) {
            if (code === 'ENOENT') orig(path)
            throw errno(code, 'unlink')
          }
          orig(path)
        },
      })
      const r = attempt(fs)
      if (code === 'ENOENT') expect(r).toBe('ok')
      else expect(r).toMatchObject({ code: 'KV_IO', message: expect.stringMatching(/^cannot remove stale lock file \/db\/LOCK\.stale-[0-9a-f]{16}$/), cause: 'EIO' })
    }
  })
})

describe('acquire arguments, messages and the registry', () => {
  it('a lock name of 120 characters is fine, 121 is KV_INVALID_ARGUMENT, and so is a name that is not a string', () => {
    const mem = memDb()
    expect(attempt(mem, '/db', 'n'.repeat(120))).toBe('ok')
    const msg = 'lock name must be a plain file name of at most 120 characters'
    expect(attempt(mem, '/db', 'n'.repeat(121))).toEqual({ code: 'KV_INVALID_ARGUMENT', message: msg })
    expect(attempt(mem, '/db', 7 as unknown as string)).toEqual({ code: 'KV_INVALID_ARGUMENT', message: msg })
    expect(mem.readdir('/db')).toEqual([])
  })

  it('already open in this process: the directory for LOCK, the lock file for a named lock', () => {
    const mem = memDb()
    const a = DirLock.acquire(mem, '/db')
    const b = DirLock.acquire(mem, '/db', { name: 'x.lock' })
    expect(attempt(mem, '/db/')).toEqual({ code: 'KV_LOCKED', message: '/db is already open in this process' })
    expect(attempt(mem, '/db', 'x.lock')).toEqual({ code: 'KV_LOCKED', message: '/db/x.lock is already open in this process' })
    a.release()
    b.release()
  })

  it('locked by another process: the directory for LOCK, the lock file for a named lock, no "this process" note', () => {
    const who = `locked by process ${process.ppid} on ${HOST}`
    expect(attempt(memDb({ LOCK: live() }))).toEqual({ code: 'KV_LOCKED', message: `/db is ${who}` })
    expect(attempt(memDb({ 'x.lock': live() }), '/db', 'x.lock')).toEqual({ code: 'KV_LOCKED', message: `/db/x.lock is ${who}` })
  })

  it('release leaves alone a copy of its LOCK (same bytes, another inode): only the file it linked is its own', () => {
    const mem = memDb()
    const lock = DirLock.acquire(mem, '/db')
    const bytes = mem.readFile('/db/LOCK')
    mem.unlink('/db/LOCK')
    mem.putFile('/db/LOCK', bytes) // restored from a backup, say
    lock.release()
    expect(mem.readFile('/db/LOCK')).toEqual(bytes)
  })

  it('a second release, after another holder took the directory, leaves that holder registered', () => {
    const mem = memDb()
    const a = DirLock.acquire(mem, '/db')
    a.release()
    const b = DirLock.acquire(mem, '/db')
    a.release()
    expect(codeOf(mem)).toBe('KV_LOCKED')
    expect(mem.readFile('/db/LOCK').toString()).toContain(`"pid":${process.pid}`)
    b.release()
    expect(mem.readdir('/db')).toEqual([])
  })

  it('held locks are registered on globalThis under Symbol.for("kvstore.dirLocks.v1"), the key every copy shares', () => {
    type Registry = { scoped: Map<symbol, Set<string>>; private: WeakMap<object, Set<string>> }
    const dir = tmpDir()
    const mem = memDb()
    const a = DirLock.acquire(nodeFs, dir)
    const b = DirLock.acquire(mem, '/db')
    const reg = (globalThis as Record<symbol, Registry | undefined>)[Symbol.for('kvstore.dirLocks.v1')]
    expect(reg?.scoped.get(nodeFs.scope as symbol)?.has(join(nfs.realpathSync(dir), LOCK_FILE))).toBe(true)
    expect(reg?.private.get(mem)?.has('/db/LOCK')).toBe(true)
    a.release()
    b.release()
    expect(reg?.private.get(mem)?.has('/db/LOCK')).toBe(false)
  })
})

describe('sweeping leftovers', () => {
  it("an old version's LOCK.breaking and an unreadable claim are swept after more than 10 s, not at exactly 10 s", () => {
    const time = virtualTime()
    const claim = `LOCK.claim-${'c'.repeat(16)}`
    const mem = memDb({ 'LOCK.breaking': '', [claim]: '' })
    time.advance(10_000)
    DirLock.acquire(mem, '/db').release()
    expect(mem.readdir('/db').sort()).toEqual(['LOCK.breaking', claim])
    time.advance(1)
    DirLock.acquire(mem, '/db').release()
    expect(mem.readdir('/db')).toEqual([])
  })

  it('a file moved aside is kept when it cannot be told whether its claim still exists', () => {
    const aside = `LOCK.stale-${'a'.repeat(16)}`
    const mem = memDb({ [aside]: 'garbage' })
    const fs = hook(mem, {
      stat: (orig, path) => {
        if (path.includes('.claim-')) throw errno('EACCES', 'stat')
        return orig(path)
      },
    })
    DirLock.acquire(fs, '/db').release()
    expect(mem.readdir('/db')).toEqual([aside])
    DirLock.acquire(mem, '/db').release()
    expect(mem.readdir('/db')).toEqual([])
  })
})

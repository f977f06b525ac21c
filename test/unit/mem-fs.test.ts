import { describe, it, expect } from 'vitest'
import type { Fs } from '../../src/fs/fs.js'
import { MemFs } from '../helpers/mem-fs.js'

function fresh(): MemFs {
  const fs = new MemFs()
  fs.mkdir('/d')
  fs.syncAll()
  return fs
}

function writeAll(fs: MemFs, fd: number, text: string): void {
  const b = Buffer.from(text)
  expect(fs.write(fd, b, 0, b.length, null)).toBe(b.length)
}

const text = (fs: MemFs, path: string): string => fs.readFile(path).toString()

describe('MemFs file semantics', () => {
  it('reads back what was written, appends with null positions and pwrites at positions', () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    writeAll(fs, fd, 'hello')
    writeAll(fs, fd, ' world')
    fs.write(fd, Buffer.from('J'), 0, 1, 0)
    expect(text(fs, '/d/f')).toBe('Jello world')
    fs.write(fd, Buffer.from('!'), 0, 1, 13)
    expect([...fs.readFile('/d/f').subarray(11)]).toEqual([0, 0, 0x21])
    fs.ftruncate(fd, 5)
    expect(text(fs, '/d/f')).toBe('Jello')
    fs.ftruncate(fd, 7)
    expect([...fs.readFile('/d/f').subarray(5)]).toEqual([0, 0])
    expect(fs.fstat(fd).size).toBe(7)
    fs.close(fd)
    const r = fs.open('/d/f', 'r')
    const buf = Buffer.alloc(10)
    expect(fs.read(r, buf, 0, 10, 1)).toBe(6)
    expect(buf.subarray(0, 4).toString()).toBe('ello')
    fs.close(r)
  })

  it("truncates on 'w', appends on 'a' and refuses to replace on 'wx'", () => {
    const fs = fresh()
    fs.putFile('/d/f', Buffer.from('old content'))
    fs.close(fs.open('/d/f', 'w'))
    expect(text(fs, '/d/f')).toBe('')
    const a = fs.open('/d/f', 'a')
    fs.write(a, Buffer.from('x'), 0, 1, 0)
    fs.write(a, Buffer.from('y'), 0, 1, 0)
    expect(text(fs, '/d/f')).toBe('xy')
    expect(() => fs.open('/d/f', 'wx')).toThrow(expect.objectContaining({ code: 'EEXIST' }))
  })

  it('reports missing files, closed descriptors and directory misuse with Node error codes', () => {
    const fs = fresh()
    expect(() => fs.open('/d/missing', 'r')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(() => fs.open('/nodir/f', 'w')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(() => fs.readFile('/d/missing')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    const fd = fs.open('/d/f', 'w')
    fs.close(fd)
    expect(() => fs.write(fd, Buffer.from('x'), 0, 1, null)).toThrow(expect.objectContaining({ code: 'EBADF' }))
    expect(() => fs.close(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }))
    const r = fs.open('/d/f', 'r')
    expect(() => fs.write(r, Buffer.from('x'), 0, 1, null)).toThrow(expect.objectContaining({ code: 'EBADF' }))
    expect(() => fs.readdir('/d/f')).toThrow(expect.objectContaining({ code: 'ENOTDIR' }))
    expect(() => fs.rmdir('/d')).toThrow(expect.objectContaining({ code: 'ENOTEMPTY' }))
    expect(() => fs.unlink('/d')).toThrow(expect.objectContaining({ code: 'EISDIR' }))
    expect(fs.stat('/d/missing')).toBeUndefined()
    expect(fs.stat('/d')?.isDirectory).toBe(true)
    expect(fs.readdir('/d')).toEqual(['f'])
  })
})

describe('MemFs crash semantics', () => {
  it('drops data that was never datasynced and keeps data that was', async () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    await fs.fsyncDir('/d')
    writeAll(fs, fd, 'synced ')
    await fs.datasync(fd)
    writeAll(fs, fd, 'unsynced')
    for (const model of ['drop-unsynced', 'forget-dir-ops'] as const) expect(text(fs.crash(model), '/d/f')).toBe('synced ')
    expect(text(fs.crash('keep-all'), '/d/f')).toBe('synced unsynced')
    // The original is untouched by taking crash states.
    expect(text(fs, '/d/f')).toBe('synced unsynced')
  })

  it('drops an unsynced truncation', async () => {
    const fs = fresh()
    fs.putFile('/d/f', Buffer.from('0123456789'))
    const fd = fs.open('/d/f', 'r+')
    fs.ftruncate(fd, 2)
    expect(text(fs.crash('drop-unsynced'), '/d/f')).toBe('0123456789')
    await fs.datasync(fd)
    expect(text(fs.crash('drop-unsynced'), '/d/f')).toBe('01')
  })

  it('keeps a random prefix of the unsynced writes, possibly torn, under keep-prefix', async () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    await fs.fsyncDir('/d')
    writeAll(fs, fd, 'aaaa')
    await fs.datasync(fd)
    for (const chunk of ['bbbb', 'cccc', 'dddd']) writeAll(fs, fd, chunk)
    const lengths = new Set<number>()
    for (let seed = 1; seed <= 200; seed++) {
      const got = text(fs.crash('keep-prefix', seed), '/d/f')
      expect('aaaabbbbccccdddd'.startsWith(got)).toBe(true)
      expect(got.length).toBeGreaterThanOrEqual(4)
      lengths.add(got.length)
    }
    // Every length from "synced only" to "everything" shows up, torn lengths included.
    expect([...lengths].sort((x, y) => x - y)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    // The same seed gives the same state.
    expect(text(fs.crash('keep-prefix', 9), '/d/f')).toBe(text(fs.crash('keep-prefix', 9), '/d/f'))
  })

  it('does not make a rename durable until the directory is fsynced', async () => {
    const fs = fresh()
    const fd = fs.open('/d/tmp', 'w')
    writeAll(fs, fd, 'new state')
    await fs.datasync(fd)
    fs.close(fd)
    await fs.fsyncDir('/d')
    fs.rename('/d/tmp', '/d/final')
    const lost = fs.crash('forget-dir-ops')
    expect(lost.readdir('/d')).toEqual(['tmp'])
    expect(text(lost, '/d/tmp')).toBe('new state')
    // Under the other models directory operations are assumed to have reached the disk.
    expect(fs.crash('drop-unsynced').readdir('/d')).toEqual(['final'])
    await fs.fsyncDir('/d')
    expect(fs.crash('forget-dir-ops').readdir('/d')).toEqual(['final'])
  })

  it('forgets a created file and brings back an unlinked one when the directory was not fsynced', async () => {
    const fs = fresh()
    fs.putFile('/d/old', Buffer.from('old'))
    fs.close(fs.open('/d/new', 'w'))
    fs.unlink('/d/old')
    expect(fs.crash('forget-dir-ops').readdir('/d')).toEqual(['old'])
    expect(fs.crash('drop-unsynced').readdir('/d')).toEqual(['new'])
  })

  it('does not make a new directory durable until its parent is fsynced', async () => {
    const fs = new MemFs()
    fs.mkdir('/a/b')
    expect(fs.crash('forget-dir-ops').stat('/a')).toBeUndefined()
    await fs.fsyncDir('/')
    expect(fs.crash('forget-dir-ops').stat('/a/b')).toBeUndefined()
    await fs.fsyncDir('/a')
    expect(fs.crash('forget-dir-ops').stat('/a/b')?.isDirectory).toBe(true)
  })

  it('does not count a datasync still in flight at the crash', async () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    await fs.fsyncDir('/d')
    let release!: () => void
    fs.syncGate = () => new Promise((resolve) => (release = resolve))
    writeAll(fs, fd, 'data')
    const syncing = fs.datasync(fd)
    writeAll(fs, fd, ' after')
    expect(text(fs.crash('drop-unsynced'), '/d/f')).toBe('')
    release()
    await syncing
    // Covers what was written before the call, not what came during it.
    expect(text(fs.crash('drop-unsynced'), '/d/f')).toBe('data')
  })

  it('makes everything durable with syncAll', () => {
    const fs = new MemFs()
    fs.mkdir('/x')
    const fd = fs.open('/x/f', 'w')
    writeAll(fs, fd, 'abc')
    fs.syncAll()
    expect(text(fs.crash('forget-dir-ops'), '/x/f')).toBe('abc')
  })

  it('starts the crashed state with every descriptor closed and a fresh op counter', () => {
    const fs = fresh()
    fs.open('/d/f', 'w')
    const after = fs.crash('keep-all')
    expect([after.openFileCount, after.opCount, after.log.length]).toEqual([0, 0, 0])
    expect(fs.openFileCount).toBe(1)
  })
})

describe('MemFs fault injection', () => {
  it('numbers counted ops in issue order and logs them', async () => {
    const fs = fresh()
    const seen: string[] = []
    fs.onOp = (i, op) => seen.push(`${i}:${op}`)
    const fd = fs.open('/d/f', 'w')
    writeAll(fs, fd, 'x')
    await fs.datasync(fd)
    fs.ftruncate(fd, 0)
    fs.rename('/d/f', '/d/g')
    await fs.fsyncDir('/d')
    fs.unlink('/d/g')
    // Reads, stats and listings are not counted.
    fs.stat('/d')
    fs.readdir('/d')
    expect(seen).toEqual(['0:open', '1:write', '2:datasync', '3:ftruncate', '4:rename', '5:fsyncDir', '6:unlink'])
    expect(fs.opCount).toBe(7)
    expect(fs.count('write')).toBe(1)
  })

  it('fails exactly the op at the index once, or every op from it when persistent', async () => {
    const once = fresh()
    const fd = once.open('/d/f', 'w')
    once.failAt(2, 'EIO')
    writeAll(once, fd, 'a')
    expect(() => once.write(fd, Buffer.from('b'), 0, 1, null)).toThrow(expect.objectContaining({ code: 'EIO' }))
    writeAll(once, fd, 'c')
    expect(text(once, '/d/f')).toBe('ac')

    const always = fresh()
    const fd2 = always.open('/d/f', 'w')
    always.failAt(1, 'ENOSPC', { persistent: true })
    expect(() => always.write(fd2, Buffer.from('b'), 0, 1, null)).toThrow(expect.objectContaining({ code: 'ENOSPC' }))
    await expect(always.datasync(fd2)).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(() => always.rename('/d/f', '/d/g')).toThrow(expect.objectContaining({ code: 'ENOSPC' }))
    expect(always.readdir('/d')).toEqual(['f'])
    expect(always.opCount).toBe(4)
  })

  it('does a short write, then fails the next op', () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    fs.failAt(1, 'EFBIG', { shortWrite: true })
    const b = Buffer.from('0123456789')
    expect(fs.write(fd, b, 0, 10, null)).toBe(5)
    expect(() => fs.write(fd, b, 5, 5, null)).toThrow(expect.objectContaining({ code: 'EFBIG' }))
    expect(text(fs, '/d/f')).toBe('01234')
    // Not persistent: the disk works again afterwards.
    expect(fs.write(fd, b, 5, 5, null)).toBe(5)
    expect(text(fs, '/d/f')).toBe('0123456789')
  })

  it('leaves the data unsynced when a datasync fails', async () => {
    const fs = fresh()
    const fd = fs.open('/d/f', 'w')
    await fs.fsyncDir('/d')
    writeAll(fs, fd, 'data')
    fs.failAt(fs.opCount, 'EIO')
    await expect(fs.datasync(fd)).rejects.toMatchObject({ code: 'EIO' })
    expect(text(fs.crash('drop-unsynced'), '/d/f')).toBe('')
  })

  it('fails a create without leaving a file', () => {
    const fs = fresh()
    fs.failAt(0, 'ENOSPC')
    expect(() => fs.open('/d/f', 'wx')).toThrow(expect.objectContaining({ code: 'ENOSPC' }))
    expect(fs.readdir('/d')).toEqual([])
  })
})

describe('MemFs links, modes and identity', () => {
  it('link adds a name for the same file, refuses an existing name (EEXIST), and is atomic for one winner', () => {
    const fs = fresh()
    fs.putFile('/d/a', Buffer.from('A'))
    fs.putFile('/d/b', Buffer.from('B'))
    fs.link('/d/a', '/d/lock')
    expect(() => fs.link('/d/b', '/d/lock')).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    expect(text(fs, '/d/lock')).toBe('A')
    expect(fs.stat('/d/lock')?.ino).toBe(fs.stat('/d/a')?.ino)
    // One file under two names: a write through one shows through the other; unlinking one keeps the other.
    const fd = fs.open('/d/a', 'a')
    writeAll(fs, fd, '+')
    fs.close(fd)
    expect(text(fs, '/d/lock')).toBe('A+')
    fs.unlink('/d/a')
    expect(text(fs, '/d/lock')).toBe('A+')
    expect(() => fs.link('/d/missing', '/d/x')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(() => fs.link('/d', '/d/x')).toThrow(expect.objectContaining({ code: 'EPERM' }))
    expect(() => fs.link('/d/b', '/nodir/x')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })

  it('a link is a directory operation: durable only after fsyncDir; crash keeps the names on one inode', async () => {
    const fs = fresh()
    fs.putFile('/d/a', Buffer.from('A'))
    fs.link('/d/a', '/d/b')
    expect(fs.crash('forget-dir-ops').readdir('/d')).toEqual(['a'])
    await fs.fsyncDir('/d')
    const img = fs.crash('forget-dir-ops')
    expect(img.readdir('/d')).toEqual(['a', 'b'])
    expect(img.stat('/d/a')?.ino).toBe(img.stat('/d/b')?.ino)
    const fd = img.open('/d/a', 'a')
    img.write(fd, Buffer.from('!'), 0, 1, null)
    img.close(fd)
    expect(text(img, '/d/b')).toBe('A!')
  })

  it('link and chmod are counted ops and can fail by injection', () => {
    const fs = fresh()
    fs.putFile('/d/a', Buffer.from('A'))
    fs.failAt(fs.opCount, 'ENOSPC')
    expect(() => fs.link('/d/a', '/d/b')).toThrow(expect.objectContaining({ code: 'ENOSPC' }))
    expect(fs.readdir('/d')).toEqual(['a'])
    fs.failAt(fs.opCount, 'EIO')
    expect(() => fs.chmod('/d/a', 0o644)).toThrow(expect.objectContaining({ code: 'EIO' }))
    expect(fs.stat('/d/a')?.mode).toBe(0o600)
    expect(fs.log.map((r) => r.op)).toEqual(['link', 'chmod'])
    expect(fs.count('link')).toBe(1)
  })

  it('records modes: files 0600 and directories 0700 by default, as given otherwise, kept by crash()', () => {
    const fs = new MemFs()
    fs.mkdir('/a/b')
    fs.mkdir('/c', 0o755)
    expect(fs.stat('/a')?.mode).toBe(0o700)
    expect(fs.stat('/a/b')?.mode).toBe(0o700)
    expect(fs.stat('/c')?.mode).toBe(0o755)
    fs.close(fs.open('/a/f', 'wx'))
    fs.close(fs.open('/a/g', 'w', 0o640))
    expect(fs.stat('/a/f')?.mode).toBe(0o600)
    expect(fs.stat('/a/g')?.mode).toBe(0o640)
    // An existing file keeps its mode whatever open is given.
    fs.close(fs.open('/a/g', 'w', 0o600))
    expect(fs.stat('/a/g')?.mode).toBe(0o640)
    fs.chmod('/a/f', 0o604)
    expect(fs.fstat(fs.open('/a/f', 'r')).mode).toBe(0o604)
    fs.putFile('/a/p', Buffer.from('x'), 0o644)
    fs.syncAll()
    const img = fs.crash('forget-dir-ops')
    expect([img.stat('/a/f')?.mode, img.stat('/a/p')?.mode, img.stat('/c')?.mode]).toEqual([0o604, 0o644, 0o755])
  })

  it('gives every file its own inode number (never reused, not even across crash images) and one dev', () => {
    const fs = fresh()
    fs.putFile('/d/a', Buffer.from(''))
    fs.unlink('/d/a')
    fs.putFile('/d/a', Buffer.from(''))
    const first = fs.stat('/d/a')
    const img = fs.crash('keep-all')
    img.putFile('/d/b', Buffer.from(''))
    expect(img.stat('/d/a')?.ino).toBe(first?.ino)
    const inos = new Set([first?.ino, img.stat('/d/b')?.ino, fs.stat('/d')?.ino])
    expect(inos.size).toBe(3)
    expect(first?.dev).toBe(img.stat('/d/b')?.dev)
  })

  it('wx on an existing directory is EEXIST (existence is checked first, as O_EXCL does)', () => {
    const fs = fresh()
    expect(() => fs.open('/d', 'wx')).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    expect(() => fs.open('/d', 'r')).toThrow(expect.objectContaining({ code: 'EISDIR' }))
  })

  it('lstat is stat (no symbolic links); realpath resolves and checks existence; no scope (a private Fs)', () => {
    const fs = fresh()
    fs.putFile('/d/a', Buffer.from('A'))
    expect(fs.lstat('/d/a')).toEqual(fs.stat('/d/a'))
    expect(fs.lstat('/d/none')).toBeUndefined()
    expect(fs.realpath('d/./a')).toBe('/d/a')
    expect(() => fs.realpath('/d/none')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect((fs as Fs).scope).toBeUndefined()
  })
})

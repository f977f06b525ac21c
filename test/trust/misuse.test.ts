// Regression: misuse must never lose data silently or escape as a raw error. Unknown option
// keys and values are refused with the closest valid name; wrong types say what they got; OS
// errors come back as KV_IO with the cause; errors of another copy of kvstore are recognised.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isStoreError, Store, StoreError } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'

async function failure(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string }> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    if (err instanceof StoreError) return { code: err.code, message: err.message }
    return { code: `not a StoreError: ${String(err)}`, message: '' }
  }
  return { code: 'resolved', message: '' }
}

const open: Store<unknown>[] = []
afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
})
async function memory(): Promise<Store<unknown>> {
  const s = await Store.open<unknown>({})
  open.push(s)
  return s
}

describe('unknown options are refused, naming the closest valid one', () => {
  it('Store.open({ directory }) does not silently open in memory', async () => {
    const f = await failure(Store.open({ directory: tmpDir() } as never))
    expect(f.code).toBe('KV_INVALID_ARGUMENT')
    expect(f.message).toContain('"directory"')
    expect(f.message).toContain('"dir"')
  })

  it('set(k, v, { tll }) is refused and nothing is written', async () => {
    const s = await memory()
    const f = await failure(s.set('k', 1, { tll: 5 } as never))
    expect(f).toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
    expect(f.message).toContain('"ttl"')
    expect(await s.has('k')).toBe(false)
  })

  it('snapshot format and compress values are checked', async () => {
    const s = await memory()
    const dir = tmpDir()
    const xml = await failure(s.snapshot(join(dir, 'a.snap'), { format: 'xml' } as never))
    expect(xml.code).toBe('KV_INVALID_ARGUMENT')
    expect(xml.message).toContain("'binary'")
    const zip = await failure(s.snapshot(join(dir, 'b.snap'), { compress: 'zip' } as never))
    expect(zip.code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.snapshot(join(dir, 'c.snap'), { fromat: 'json' } as never))).message).toContain('"format"')
  })

  it('sync, recovery and snapshotFormat values suggest the right spelling', async () => {
    const f = await failure(Store.open({ dir: tmpDir(), sync: 'allways' } as never))
    expect(f.code).toBe('KV_INVALID_ARGUMENT')
    expect(f.message).toContain("did you mean 'always'")
    expect((await failure(Store.open({ dir: tmpDir(), recovery: 'salvaging' } as never))).code).toBe('KV_INVALID_ARGUMENT')
  })

  it('scan, watch, batch op, transaction and atomic options are checked', async () => {
    const s = await memory()
    expect((await failure(async () => s.scan({ prefx: 'a' } as never).next())).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(async () => s.scan({ reverse: 'yes' } as never).next())).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(() => s.watch({ keys: 'a' } as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.batch([{ type: 'set', key: 'a', value: 1, tll: 3 } as never]))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.transaction(() => 1, { retry: 3 } as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(() => s.atomic().set('a', 1, { keepTtl: true } as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect(await s.count()).toBe(0)
  })
})

describe('every error is a StoreError', () => {
  it('a dir under a regular file gives KV_IO with the OS error as cause', async () => {
    const base = tmpDir()
    writeFileSync(join(base, 'afile'), 'x')
    let caught: unknown
    try {
      await Store.open({ dir: join(base, 'afile', 'sub') })
    } catch (err) {
      caught = err
    }
    expect(isStoreError(caught, 'KV_IO')).toBe(true)
    expect(((caught as StoreError).cause as { code?: string }).code).toBe('ENOTDIR')
  })

  it('hset(k, null), transaction("x"), transaction(fn, null) and update(k, 1) are coded', async () => {
    const s = await memory()
    expect((await failure(s.hset('h', null as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.hset('h', ['a'] as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.hdel('h', 1 as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.transaction('x' as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.transaction(() => 1, null as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.update('k', 1 as never))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(Store.open(null as never))).code).toBe('KV_INVALID_ARGUMENT')
  })

  it('messages show the type of a wrong value', async () => {
    const s = await memory()
    expect((await failure(s.set('k', 1, { ttl: '100' } as never))).message).toContain('got the string "100"')
    expect((await failure(s.expire('k', 1.5))).message).toContain('got the number 1.5')
    expect((await failure(s.incr('k', null as never))).message).toContain('got null')
    expect((await failure(Store.open({ maxKeyBytes: [] } as never))).message).toContain('got an array')
  })
})

describe('errors from another copy of kvstore', () => {
  it('are recognised by instanceof and isStoreError', async () => {
    // A second instance of the module, as a CJS build beside the ESM one would be.
    const copy = '../../src/errors.js?copy=2'
    const other = (await import(/* @vite-ignore */ copy)) as typeof import('../../src/errors.js')
    expect(other.StoreError).not.toBe(StoreError)
    const foreign = new other.StoreError('KV_LOCKED', 'held elsewhere')
    expect(foreign instanceof StoreError).toBe(true)
    expect(isStoreError(foreign, 'KV_LOCKED')).toBe(true)
    expect(other.isStoreError(new StoreError('KV_IO', 'x'), 'KV_IO')).toBe(true)
    expect(new Error('plain') instanceof StoreError).toBe(false)
    expect(isStoreError({ code: 'KV_IO' })).toBe(false)
  })
})

describe('nothing the API accepts is refused by replay', () => {
  it('a ttl that would put the expiry past the safe-integer range is refused', async () => {
    const s = await memory()
    await s.set('k', 1)
    expect((await failure(s.set('k', 2, { ttl: Number.MAX_SAFE_INTEGER }))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.expire('k', Number.MAX_SAFE_INTEGER))).code).toBe('KV_INVALID_ARGUMENT')
    expect((await failure(s.transaction((tx) => tx.set('k', 3, { ttl: Number.MAX_SAFE_INTEGER })))).code).toBe('KV_INVALID_ARGUMENT')
    expect(await s.get('k')).toBe(1)
    expect(await s.ttl('k')).toBe(-1)
  })

  it('hash fields longer than maxKeyBytes are refused; empty fields round-trip through reopen', async () => {
    const dir = tmpDir()
    const s = await Store.open<unknown>({ dir, maxKeyBytes: 16 })
    expect((await failure(s.hset('h', { ['f'.repeat(17)]: 1 }))).code).toBe('KV_INVALID_ARGUMENT')
    expect(await s.hset('h', { '': 1, ['g'.repeat(16)]: 2 })).toBe(2)
    await s.compact()
    await s.hset('h', { x: 3 })
    await s.close()
    const again = await Store.open<unknown>({ dir, maxKeyBytes: 16 })
    expect(await again.hgetall('h')).toEqual(new Map<string, unknown>([['', 1], ['g'.repeat(16), 2], ['x', 3]]))
    await again.close()
  })
})

describe('directories that cannot be made', () => {
  // Node's recursive mkdirSync spins forever when mkdir fails with ENOENT under a parent that
  // exists (/proc): Store.open never settled. Run in a child so a hang fails the test.
  it('a store directory under /proc is refused with KV_IO at once, never a hang', () => {
    const script = `
      const { Store } = await import(${JSON.stringify(new URL('../../src/store.ts', import.meta.url).href)})
      for (const dir of ['/proc/kvstore-x', '/proc/kvstore-x/y/z']) {
        try { await Store.open({ dir }); console.log('opened ' + dir) } catch (e) { console.log(e.code + ' ' + e.message) }
      }`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 })
    expect(r.signal, 'Store.open hung').toBeNull()
    expect(r.stdout.trim().split('\n')).toEqual(['KV_IO cannot create directory /proc/kvstore-x', 'KV_IO cannot create directory /proc/kvstore-x/y/z'])
  })
})

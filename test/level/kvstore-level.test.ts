// KvstoreLevel beyond abstract-level's suite: data survives reopen, sublevels and encodings
// work over it, keys keep byte order, and bad arguments are StoreErrors.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import { KvstoreLevel } from '../../src/level/index.js'
import { Store } from '../../src/store.js'

let dir: string
afterEach(() => rmSync(dir, { recursive: true, force: true }))
const scratch = (): string => (dir = mkdtempSync(join(tmpdir(), 'kvstore-level-')))

describe('KvstoreLevel', () => {
  it('keeps data in a kvstore directory across close and reopen', async () => {
    const db = new KvstoreLevel<string, { n: number }>(scratch(), { valueEncoding: 'json' })
    await db.put('a', { n: 1 })
    await db.sublevel('users').put('alice', '{"n":2}')
    await db.close()
    await db.open()
    expect(await db.get('a')).toEqual({ n: 1 })
    expect(await db.sublevel<string, string>('users', {}).get('alice')).toBe('{"n":2}')
    await db.close()
    await using store = await Store.open({ dir })
    expect(await store.keys()).toEqual(['l:!users!alice', 'l:a'])
  })

  it('orders binary keys by bytes, as Level does', async () => {
    const db = new KvstoreLevel<Uint8Array, string>({ keyEncoding: 'view' })
    scratch()
    const keys = [[0xff], [0x00], [0x7f, 0x01], [], [0x80]].map((b) => new Uint8Array(b))
    for (const k of keys) await db.put(k, 'v')
    const seen = (await db.keys().all()).map((k) => [...k])
    expect(seen).toEqual([[], [0x00], [0x7f, 0x01], [0x80], [0xff]])
    await db.close()
  })

  it('declares what it supports', () => {
    const mem = new KvstoreLevel()
    const disk = new KvstoreLevel(scratch())
    expect(mem.supports).toMatchObject({ permanence: false, seek: true, has: true, implicitSnapshots: false, explicitSnapshots: false })
    expect(disk.supports).toMatchObject({ permanence: true, createIfMissing: true, errorIfExists: true })
    return Promise.all([mem.close(), disk.close()])
  })

  it('rejects a bad location or store option with KV_INVALID_ARGUMENT', () => {
    scratch()
    expect(() => new KvstoreLevel('')).toThrow(StoreError)
    expect(() => new KvstoreLevel(42 as never)).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    expect(() => new KvstoreLevel({ store: { dir: '/x' } as never })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
  })
})

// Atomic operations: what mutation testing found unpinned by atomic.test.ts — the size
// of a commit counts every set and delete (and only adds up), and the error messages
// say what went wrong.
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'

async function errorOf(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p
  } catch (err) {
    if (err instanceof StoreError) return err
    throw err
  }
  throw new Error('resolved')
}

function syncErrorOf(fn: () => unknown): StoreError {
  try {
    fn()
  } catch (err) {
    if (err instanceof StoreError) return err
    throw err
  }
  throw new Error('returned')
}

const key = (i: number): string => `${String(i).padStart(3, '0')}${'k'.repeat(97)}` // 100 chars

describe('atomic commit size', () => {
  it('counts deletes: many deletes of long keys exceed maxBatchBytes, a few do not', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    for (let i = 0; i < 20; i++) await s.set(key(i), 'v')
    const big = s.atomic()
    for (let i = 0; i < 20; i++) big.delete(key(i))
    expect((await errorOf(big.commit())).code).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(20)
    // Two deletes of 100-char keys stay well inside 1000 bytes.
    expect(await s.atomic().delete(key(0)).delete(key(1)).commit()).toMatchObject({ ok: true })
    expect(await s.count()).toBe(18)
  })

  it('counts the key of a set, not only its value', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    const op = s.atomic()
    for (let i = 0; i < 10; i++) op.set(key(i), 'v')
    expect((await errorOf(op.commit())).code).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(0)
    expect(await s.atomic().set(key(0), 'v').commit()).toMatchObject({ ok: true })
  })

  it('adds sets and deletes together', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    // Each call alone fits; together (5 sets + 5 deletes of 100-char keys) they do not.
    const op = s.atomic()
    for (let i = 0; i < 5; i++) op.set(key(i), 'v')
    for (let i = 5; i < 10; i++) op.delete(key(i))
    expect((await errorOf(op.commit())).code).toBe('KV_BATCH_TOO_LARGE')
  })
})

describe('atomic error messages', () => {
  it('says why a check version is refused', async () => {
    const s = await Store.open<string>()
    const err = syncErrorOf(() => s.atomic().check('k', 0))
    expect(err.code).toBe('KV_INVALID_ARGUMENT')
    expect(err.message).toMatch(/check version must be a positive integer or null/)
  })

  it('says that the operation was already committed', async () => {
    const s = await Store.open<string>()
    const op = s.atomic().set('k', 'v')
    await op.commit()
    const err = await errorOf(op.commit())
    expect(err.code).toBe('KV_INVALID_ARGUMENT')
    expect(err.message).toMatch(/already committed/)
  })
})

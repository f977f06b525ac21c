// RwLock: what mutation testing found unpinned by rwlock.test.ts — which results count
// as thenables (the lock is held until they settle) and which do not (released before
// read/write returns).
import { describe, expect, it } from 'vitest'
import { RwLock } from '../../src/rwlock.js'

/** A function object with a `then` method: a thenable, though typeof is 'function'. */
function thenableFunction(): { value: (() => void) & { then: (ok: (v: number) => void) => void }; settle: () => void } {
  let resolve: ((v: number) => void) | undefined
  const fn = Object.assign(() => undefined, {
    then(ok: (v: number) => void): void {
      resolve = ok
    },
  })
  return { value: fn, settle: () => resolve?.(7) }
}

describe('RwLock: results of fn', () => {
  for (const mode of ['read', 'write'] as const) {
    it(`${mode}: a null result resolves to null and releases at once`, async () => {
      const lock = new RwLock()
      const p = lock[mode](() => null)
      expect(lock.idle).toBe(true)
      expect(await p).toBeNull()
    })

    it(`${mode}: a plain object (no then) is a value, released before ${mode} returns`, async () => {
      const lock = new RwLock()
      const obj = { then: 1, a: 1 }
      const p = lock[mode](() => obj)
      expect(lock.idle).toBe(true)
      expect(lock.readers).toBe(0)
      expect(lock.writing).toBe(false)
      expect(await p).toBe(obj)
    })

    it(`${mode}: a function with a then method is a thenable: the lock is held until it settles`, async () => {
      const lock = new RwLock()
      const t = thenableFunction()
      const p = lock[mode](() => t.value as unknown as PromiseLike<number>)
      expect(lock.idle).toBe(false)
      if (mode === 'write') expect(lock.writing).toBe(true)
      else expect(lock.readers).toBe(1)
      // Let the adoption of the thenable run; it has not settled yet.
      await new Promise((r) => setImmediate(r))
      expect(lock.idle).toBe(false)
      let next = false
      const after = lock.write(() => {
        next = true
      })
      await new Promise((r) => setImmediate(r))
      expect(next).toBe(false)
      t.settle()
      expect(await p).toBe(7)
      await after
      expect(next).toBe(true)
      expect(lock.idle).toBe(true)
    })
  }
})

describe('RwLock: idle', () => {
  for (const holder of ['read', 'write'] as const) {
    it(`is false while a ${holder} holds the lock, and a write then waits for it`, async () => {
      const lock = new RwLock()
      expect(lock.idle).toBe(true)
      const release = await (holder === 'read' ? lock.acquireRead() : lock.acquireWrite())
      expect(lock.idle).toBe(false)
      let ran = false
      const w = lock.write(() => {
        ran = true
      })
      expect(ran).toBe(false)
      release()
      await w
      expect(ran).toBe(true)
      expect(lock.idle).toBe(true)
    })
  }
})

// AbortSignal on scan, watch, transaction, snapshot, load and compact, on every backend:
// KV_ABORTED with the reason as cause, and nothing left behind (no writes, no feed, no file).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import { backends } from './backends.js'
import { codeOf, tempDir } from './harness.js'

const aborted = (): AbortSignal => AbortSignal.abort(new Error('stop'))

describe.each(backends)('abort: $name', (backend) => {
  it('ends a scan mid-way with KV_ABORTED and the reason as cause', async () => {
    const s = await backend.open()
    await s.batch(['a', 'b', 'c'].map((key) => ({ type: 'set', key, value: key })))
    const ac = new AbortController()
    const seen: string[] = []
    let error: unknown
    try {
      for await (const [k] of s.scan({ signal: ac.signal })) {
        seen.push(k)
        ac.abort('enough')
      }
    } catch (err) {
      error = err
    }
    expect(seen).toEqual(['a'])
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'KV_ABORTED', cause: 'enough' })
    expect(await codeOf(async () => { for await (const _ of s.scan({ signal: aborted() })) void _ })).toBe('KV_ABORTED')
  })

  it('ends a watch feed, waiting or not, and detaches it', async (ctx) => {
    if (!backend.capabilities.watch) return ctx.skip()
    const s = await backend.open()
    const ac = new AbortController()
    const feed = s.watch({ prefix: 'k', signal: ac.signal })
    const waiting = feed.next()
    ac.abort()
    expect(await codeOf(() => waiting)).toBe('KV_ABORTED')
    await s.set('k1', 1)
    expect(feed.pending).toBe(0)
    expect(await codeOf(() => feed.next())).toBe('KV_ABORTED')
  })

  it('discards a transaction aborted while it runs', async (ctx) => {
    if (!backend.capabilities.transactions) return ctx.skip()
    const s = await backend.open()
    const ac = new AbortController()
    const r = s.transaction(async (tx) => {
      tx.set('t', 1)
      ac.abort()
    }, { signal: ac.signal })
    expect(await codeOf(() => r)).toBe('KV_ABORTED')
    expect(await s.has('t')).toBe(false)
    expect(await codeOf(() => s.transaction(() => 1, { signal: aborted() }))).toBe('KV_ABORTED')
  })

  it('ends a scan inside a transaction when its own signal aborts', async (ctx) => {
    if (!backend.capabilities.transactions) return ctx.skip()
    const s = await backend.open()
    await s.batch(['a', 'b'].map((key) => ({ type: 'set', key, value: key })))
    const r = s.transaction(async (tx) => {
      for await (const _ of tx.scan({ signal: aborted() })) void _
    })
    expect(await codeOf(() => r)).toBe('KV_ABORTED')
  })

  it('does not start a snapshot, load or compact whose signal is aborted', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const dir = tempDir()
    const path = join(dir, 'snap.kvs')
    expect(await codeOf(() => s.snapshot(path, { signal: aborted() }))).toBe('KV_ABORTED')
    expect(existsSync(path)).toBe(false)
    expect(await codeOf(() => s.load(path, { signal: aborted() }))).toBe('KV_ABORTED')
    expect(await codeOf(() => s.compact({ signal: aborted() }))).toBe('KV_ABORTED')
    expect(await s.get('a')).toBe(1)
  })

  it('rejects a signal that is not an AbortSignal with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    expect(await codeOf(() => s.scan({ signal: {} as never }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.compact({ signal: 'x' as never }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.namespace('n:').watch({ signal: 1 as never }))).toBe('KV_INVALID_ARGUMENT')
  })
})

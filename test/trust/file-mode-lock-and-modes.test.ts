// Regression: a snapshot-file store is exclusive like a directory store, and the `mode`
// option sets the permission bits of everything kvstore creates.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'
import { codeOf } from '../helpers/codes.js'

const modeOf = (path: string): number => statSync(path).mode & 0o777

describe('file mode is exclusive', () => {
  it('a second open of the same file gets KV_LOCKED until the first closes', async () => {
    const file = join(tmpDir(), 'data.json')
    const a = await Store.open<string>({ file })
    await a.set('k', 'v')
    expect(await codeOf(Store.open({ file }))).toBe('KV_LOCKED')
    await a.close()
    const b = await Store.open<string>({ file })
    expect(await b.get('k')).toBe('v')
    await b.close()
  })
})

describe('the mode option', () => {
  it('sets files and directories it creates, and refuses bad values', async () => {
    const base = tmpDir()
    const dir = join(base, 'db')
    const s = await Store.open<string>({ dir, mode: 0o640 })
    await s.set('k', 'v')
    await s.compact()
    await s.snapshot(join(base, 'copy.kvs'))
    await s.close()
    expect(modeOf(dir)).toBe(0o750)
    const { readdirSync } = await import('node:fs')
    const data = readdirSync(dir).filter((f) => /^(wal-|snap-)/.test(f))
    expect(data.length).toBeGreaterThan(1)
    for (const f of data) expect(modeOf(join(dir, f))).toBe(0o640)
    expect(modeOf(join(base, 'copy.kvs'))).toBe(0o640)
    expect(await codeOf(Store.open({ dir: join(base, 'x'), mode: 0o1777 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: join(base, 'y'), mode: '600' } as never))).toBe('KV_INVALID_ARGUMENT')
  })

  it('defaults to 0700 directories and 0600 files', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<string>({ dir })
    await s.set('k', 'v')
    await s.compact()
    await s.close()
    expect(modeOf(dir)).toBe(0o700)
    const { readdirSync } = await import('node:fs')
    for (const f of readdirSync(dir).filter((n) => /^(wal-|snap-)/.test(n))) expect(modeOf(join(dir, f))).toBe(0o600)
  })
})

// Directory and file mode on the real file system: reopen, recovery policy, lock,
// compaction, snapshot fallback, load.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'
import { codeOf } from '../helpers/codes.js'

function walFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /^wal-\d+\.log$/.test(f)).sort()
}

async function fill(dir: string, n: number, opts: Parameters<typeof Store.open>[0] = {}): Promise<void> {
  const s = await Store.open<string>({ dir, ...opts })
  for (let i = 0; i < n; i++) await s.set(`k${String(i).padStart(3, '0')}`, `v${i}`)
  await s.close()
}

describe('directory mode', () => {
  it('reopens with everything written, in order', async () => {
    const dir = tmpDir()
    await fill(dir, 50)
    const s = await Store.open<string>({ dir })
    expect(await s.count()).toBe(50)
    expect(await s.get('k007')).toBe('v7')
    expect(s.stats().recovery).toMatchObject({ records: 50, truncatedTailBytes: 0, corruption: undefined })
    await s.close()
  })

  it('creates missing parent directories and fails clearly on a file path', async () => {
    const base = tmpDir()
    const s = await Store.open({ dir: join(base, 'a', 'b') })
    await s.close()
    writeFileSync(join(base, 'file'), 'x')
    expect(await codeOf(Store.open({ dir: join(base, 'file') }))).toBe('KV_IO')
  })

  it('cuts a torn tail, keeps a copy, reports it, and accepts appends', async () => {
    const dir = tmpDir()
    await fill(dir, 10)
    const wal = join(dir, walFiles(dir)[0] as string)
    const size = statSync(wal).size
    truncateSync(wal, size - 5)
    const s = await Store.open<string>({ dir })
    expect(await s.count()).toBe(9)
    const rec = s.stats().recovery
    expect(rec?.truncatedTailBytes).toBeGreaterThan(0)
    expect(rec?.brokenFiles.length).toBe(1)
    expect(existsSync(join(dir, rec?.brokenFiles[0] as string))).toBe(true)
    for (let i = 0; i < 10; i++) await s.set(`new${i}`, 'x')
    await s.close()
    const again = await Store.open<string>({ dir })
    expect(await again.count()).toBe(19)
    expect(again.stats().recovery?.truncatedTailBytes).toBe(0)
    await again.close()
  })

  it('refuses mid-file corruption with KV_CORRUPT naming file and offset, changing nothing', async () => {
    const dir = tmpDir()
    await fill(dir, 20)
    const wal = join(dir, walFiles(dir)[0] as string)
    const bytes = readFileSync(wal)
    bytes[200] = (bytes[200] as number) ^ 0xff
    writeFileSync(wal, bytes)
    const err = await Store.open({ dir }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_CORRUPT')
    expect((err as StoreError).message).toContain(walFiles(dir)[0])
    expect((err as StoreError).message).toMatch(/offset \d+/)
    expect((err as StoreError).message).toMatch(/last good seq \d+/)
    expect(readFileSync(wal).equals(bytes)).toBe(true)
    // The failed open released the lock.
    expect(await codeOf(Store.open({ dir }).then((s) => s.close()))).toBe('KV_CORRUPT')
  })

  it('point-in-time recovery keeps what came before the damage; salvage keeps every good record', async () => {
    for (const mode of ['point-in-time', 'salvage'] as const) {
      const dir = tmpDir()
      await fill(dir, 20)
      const wal = join(dir, walFiles(dir)[0] as string)
      const bytes = readFileSync(wal)
      // Damage the payload of a record in the middle (records are 8-byte aligned, ~64 bytes each).
      bytes[32 + 64 * 5 + 30] = (bytes[32 + 64 * 5 + 30] as number) ^ 0x01
      writeFileSync(wal, bytes)
      const s = await Store.open<string>({ dir, recovery: mode })
      const n = await s.count()
      const rec = s.stats().recovery
      expect(rec?.corruption).toBeDefined()
      if (mode === 'point-in-time') {
        expect(n).toBeLessThan(20)
        expect(await s.has('k019')).toBe(false)
      } else {
        expect(n).toBe(19)
        expect(await s.get('k019')).toBe('v19')
      }
      await s.set('after', 'x')
      await s.close()
      // Recovery is idempotent and the repaired store opens strictly afterwards.
      const again = await Store.open<string>({ dir, recovery: mode })
      expect(await again.count()).toBe(n + 1)
      await again.close()
    }
  })

  it('compaction writes a snapshot, drops covered segments, and reopens to the same state', async () => {
    const dir = tmpDir()
    const s = await Store.open<string>({ dir })
    for (let i = 0; i < 100; i++) await s.set(`k${i}`, `v${i}`)
    await s.delete('k5')
    const r = await s.compact()
    expect(r.entries).toBe(99)
    expect(r.seq).toBe(101)
    await s.set('post', 'compaction')
    await s.close()
    expect(readdirSync(dir).filter((f) => f.startsWith('snap-'))).toEqual(['snap-0000000000000101.kvs'])
    expect(walFiles(dir)).toEqual(['wal-0000000002.log'])
    const again = await Store.open<string>({ dir })
    expect(await again.count()).toBe(100)
    expect(again.stats().recovery).toMatchObject({ snapshotSeq: 101, records: 1 })
    await again.close()
  })

  it('compacts automatically past compactThresholdBytes while writes continue', async () => {
    const dir = tmpDir()
    const s = await Store.open<string>({ dir, compactThresholdBytes: 4096, sync: 'never' })
    for (let i = 0; i < 500; i++) await s.set(`k${i}`, 'x'.repeat(50))
    await s.close()
    expect(s.stats().compactions).toBeGreaterThan(0)
    const again = await Store.open<string>({ dir })
    expect(await again.count()).toBe(500)
    await again.close()
  })

  it('falls back to an older snapshot when the newest is damaged and the WAL still covers it', async () => {
    const dir = tmpDir()
    const s = await Store.open<string>({ dir })
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, `v${i}`)
    // A snapshot file in the directory that compaction did not follow up (as after a
    // crash between its rename and the deletion of covered segments).
    await s.snapshot(join(dir, 'snap-0000000000000020.kvs'))
    await s.set('k20', 'v20')
    await s.close()
    const snap = join(dir, 'snap-0000000000000020.kvs')
    const bytes = readFileSync(snap)
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 0xff
    writeFileSync(snap, bytes)
    const again = await Store.open<string>({ dir })
    expect(await again.count()).toBe(21)
    expect(again.stats().recovery?.skippedSnapshots).toEqual(['snap-0000000000000020.kvs'])
    await again.close()
  })

  it('never opens with less: a damaged snapshot whose WAL is gone fails with KV_CORRUPT', async () => {
    const dir = tmpDir()
    const s = await Store.open<string>({ dir })
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, `v${i}`)
    const { path } = await s.compact()
    await s.close()
    const bytes = readFileSync(path)
    bytes[30] = (bytes[30] as number) ^ 0xff
    writeFileSync(path, bytes)
    expect(await codeOf(Store.open({ dir }))).toBe('KV_CORRUPT')
  })

  it('removes temp files left by an interrupted snapshot', async () => {
    const dir = tmpDir()
    await fill(dir, 3)
    writeFileSync(join(dir, 'snap-0000000000000003.kvs.tmp-abc123'), 'partial')
    const s = await Store.open({ dir })
    expect(s.stats().recovery?.removedTemps).toEqual(['snap-0000000000000003.kvs.tmp-abc123'])
    expect(readdirSync(dir).some((f) => f.includes('.tmp-'))).toBe(false)
    await s.close()
  })

  it('load replaces the contents durably and keeps versions monotonic', async () => {
    const dir = tmpDir()
    const src = join(tmpDir(), 'seed.json')
    writeFileSync(src, '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"user:1":"Alice","counter":"42"}}')
    const s = await Store.open<string>({ dir })
    await s.set('old', 'x')
    const before = s.stats().seq
    await s.load(src)
    expect(await s.keys()).toEqual(['counter', 'user:1'])
    expect((await s.getEntry('user:1'))?.version).toBeGreaterThan(before)
    await s.set('after', 'load')
    await s.close()
    const again = await Store.open<string>({ dir })
    expect(await again.keys()).toEqual(['after', 'counter', 'user:1'])
    expect(await again.incr('counter')).toBe(43)
    await again.close()
  })

  it('a failed load leaves the store unchanged', async () => {
    const dir = tmpDir()
    const bad = join(tmpDir(), 'bad.json')
    writeFileSync(bad, '{"version":1,"data":{"a":')
    const s = await Store.open<string>({ dir })
    await s.set('keep', 'me')
    expect(await codeOf(s.load(bad))).toBe('KV_CORRUPT')
    expect(await codeOf(s.load(join(dir, 'missing.kvs')))).toBe('KV_IO')
    expect(await s.keys()).toEqual(['keep'])
    await s.close()
  })
})

describe('file mode (seed 004)', () => {
  it('loads the seed JSON, snapshots on demand and on close', async () => {
    const file = join(tmpDir(), 'data.json')
    writeFileSync(file, '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"user:1":"Alice","counter":"42"}}')
    const s = await Store.open<string>({ file })
    expect(await s.get('user:1')).toBe('Alice')
    await s.set('user:2', 'Bob')
    const r = await s.snapshot()
    expect(r.path).toBe(file)
    expect(r.format).toBe('json')
    await s.delete('user:1')
    await s.close()
    const again = await Store.open<string>({ file })
    expect(await again.keys()).toEqual(['counter', 'user:2'])
    await again.close()
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 2 })
  })

  it('uses the binary format for other extensions and starts empty when the file is missing', async () => {
    const file = join(tmpDir(), 'data.kvs')
    const s = await Store.open<number>({ file })
    expect(await s.count()).toBe(0)
    await s.set('n', 1)
    await s.close()
    expect(readFileSync(file).readUInt32LE(0)).toBe(0x4b56db)
    const again = await Store.open<number>({ file })
    expect(await again.get('n')).toBe(1)
    await again.close()
  })
})

const HOLDER = fileURLToPath(new URL('../helpers/lock-holder.ts', import.meta.url))

function startHolder(dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout?.once('data', () => resolve(child))
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)))
  })
}

describe('single writer per directory', () => {
  it('a second open in the same process fails fast with KV_LOCKED', async () => {
    const dir = tmpDir()
    const s = await Store.open({ dir })
    expect(await codeOf(Store.open({ dir }))).toBe('KV_LOCKED')
    await s.close()
    const again = await Store.open({ dir })
    await again.close()
  })

  it('another process holding the directory makes open fail with KV_LOCKED; its kill -9 frees it', async () => {
    const dir = tmpDir()
    const holder = await startHolder(dir)
    try {
      expect(await codeOf(Store.open({ dir }))).toBe('KV_LOCKED')
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.once('exit', r))
    }
    const s = await Store.open<string>({ dir })
    expect(await s.get('held')).toBe('yes')
    await s.close()
  }, 30_000)

  it('two processes racing to open: exactly one wins', async () => {
    const dir = tmpDir()
    const race = fileURLToPath(new URL('../helpers/lock-race.ts', import.meta.url))
    const run = (): Promise<string> =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', race, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        c.stdout?.on('data', (d: Buffer) => (out += d.toString()))
        c.on('exit', () => resolve(out.trim()))
      })
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all([run(), run()])
      expect(results.sort()).toEqual(['KV_LOCKED', 'opened'])
    }
  }, 60_000)
})

import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KvHash, KvList } from '../../src/collections.js'
import { isStoreError } from '../../src/errors.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import type { SnapshotEntry, SnapshotReadResult } from '../../src/snapshot/format.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { bytesFs, canonEntries } from '../helpers/values.js'

let dir = ''
let n = 0
beforeAll(() => {
  dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-json-'))
})
afterAll(() => {
  nfs.rmSync(dir, { recursive: true, force: true })
})

async function load(text: string | Uint8Array): Promise<{ meta: SnapshotReadResult; entries: SnapshotEntry[] }> {
  const entries: SnapshotEntry[] = []
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text
  const meta = await jsonSnapshot.read(bytesFs(bytes), 'snap.json', (e) => entries.push(e))
  return { meta, entries }
}

async function expectCorrupt(text: string | Uint8Array): Promise<string> {
  let visited = 0
  try {
    await jsonSnapshot.read(bytesFs(typeof text === 'string' ? Buffer.from(text) : text), 'snap.json', () => visited++)
  } catch (err) {
    expect(visited).toBe(0)
    if (!isStoreError(err, 'KV_CORRUPT')) throw err
    expect(err.message).toContain('snap.json')
    return err.message
  }
  throw new Error(`read succeeded: ${String(text).slice(0, 200)}`)
}

async function write(entries: SnapshotEntry[], meta = { seq: 3, timestamp: 1705314600000, count: entries.length }, compress?: 'gzip' | 'brotli'): Promise<string> {
  const p = join(dir, `s${n++}.json`)
  await writeSnapshotFile(nodeFs, p, jsonSnapshot, meta, entries, compress === undefined ? {} : { compress })
  return p
}

const plain = (key: string, value: unknown): SnapshotEntry => ({ key, value, expiresAt: 0, version: 0 })

const typed: SnapshotEntry[] = [
  { key: ' ', value: '', expiresAt: 0, version: 0 },
  plain('__proto__', 'p'),
  plain('bool', false),
  plain('bytes', new Uint8Array([0, 255, 7])),
  plain('hash', new KvHash([['2', 'b'], ['1', new Uint8Array([1])], ['__proto__', { j: 1 }]])),
  { key: 'json', value: Object.freeze([1, { a: null }]), expiresAt: 99, version: 7 },
  plain('list', new KvList(['a', -0, true, null, Object.freeze({ x: 'y' })])),
  plain('neg0', -0),
  plain('null', null),
  plain('num', 0.1),
  { key: 'str', value: '42', expiresAt: 1_705_314_600_000, version: 12 },
  plain('\u{1F600}', 'line\nbreak\u2028"quote"\\'),
]

describe('JSON snapshot v1 (seed)', () => {
  it('loads the seed example exactly', async () => {
    const { meta, entries } = await load('{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"user:1":"Alice","counter":"42"}}')
    expect(meta).toEqual({ seq: 0, timestamp: Date.UTC(2024, 0, 15, 10, 30), count: 2, version: 1 })
    expect(entries).toEqual([plain('user:1', 'Alice'), plain('counter', '42')])
  })

  it('loads a pretty-printed seed file with a BOM and a __proto__ key', async () => {
    const text = '\ufeff' + JSON.stringify({ version: 1, timestamp: '2024-01-15T10:30:00Z', data: JSON.parse('{"__proto__":"x","a":"b"}') }, null, 2)
    const { entries } = await load(text)
    expect(entries).toEqual([plain('__proto__', 'x'), plain('a', 'b')])
  })

  it('rejects broken JSON, a missing data map and an unknown version, naming the byte offset', async () => {
    expect(await expectCorrupt('{"version":1,"data":{"a":"b"}')).toMatch(/byte offset \d+/)
    await expectCorrupt('{"version":1}')
    expect(await expectCorrupt('{"version":3,"data":{}}')).toMatch(/unsupported version 3/)
    await expectCorrupt('{"version":1,"timestamp":"yesterday","data":{}}')
    await expectCorrupt('')
    await expectCorrupt('[]')
  })
})

describe('JSON snapshot v2', () => {
  it('writes one entry per line, bare values when plain, and the whole file is JSON', async () => {
    const text = nfs.readFileSync(await write([plain('counter', '42'), { key: 'user:1', value: 'Alice', expiresAt: 5, version: 2 }]), 'utf8')
    expect(text).toBe(
      '{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":3,"count":2,"data":{\n' +
        '"counter":"42",\n' +
        '"user:1":{"value":"Alice","expiresAt":5,"version":2}\n' +
        '}}\n',
    )
    expect(JSON.parse(text).data.counter).toBe('42')
    expect(nfs.readFileSync(await write([]), 'utf8')).toBe('{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":3,"count":0,"data":{\n}}\n')
  })

  it('round-trips every value type, expiry and version, in file order', async () => {
    for (const compress of [undefined, 'gzip', 'brotli'] as const) {
      const p = await write(typed, { seq: 3, timestamp: 1705314600123, count: typed.length }, compress)
      const entries: SnapshotEntry[] = []
      const meta = await jsonSnapshot.read(nodeFs, p, (e) => entries.push(e))
      expect(meta).toEqual({ seq: 3, timestamp: 1705314600123, count: typed.length, version: 2 })
      expect(canonEntries(entries)).toEqual(canonEntries(typed))
    }
  })

  it('decodes JSON values deep-frozen and bytes as plain Uint8Array', async () => {
    const { entries } = await load(nfs.readFileSync(await write(typed)))
    const json = entries.find((e) => e.key === 'json')?.value as unknown[]
    expect(Object.isFrozen(json)).toBe(true)
    expect(Object.isFrozen(json[1])).toBe(true)
    expect(Object.getPrototypeOf(entries.find((e) => e.key === 'bytes')?.value)).toBe(Uint8Array.prototype)
  })

  it('still loads a v2 file a human has reformatted', async () => {
    const text = nfs.readFileSync(await write(typed), 'utf8')
    // Blank lines and indentation break the line layout; JSON.stringify(…, null, 2) would also lose -0.
    const { entries } = await load(text.replace(/,\n/g, ',\n\n    ').replace('"data":{', '"data":\n  {'))
    const byKey = (es: SnapshotEntry[]): SnapshotEntry[] => [...es].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    expect(canonEntries(byKey(entries))).toEqual(canonEntries(byKey(typed)))
  })

  it('streams many entries and long lines across chunk boundaries', async () => {
    const many: SnapshotEntry[] = []
    for (let i = 0; i < 20_000; i++) many.push({ key: `k${i}`, value: i % 4000 === 3 ? 'é'.repeat(300_000) : i, expiresAt: 0, version: i })
    const p = await write(many)
    const entries: SnapshotEntry[] = []
    await jsonSnapshot.read(nodeFs, p, (e) => entries.push(e))
    expect(canonEntries(entries)).toEqual(canonEntries(many))
  })

  it('rejects every truncation short of the final newline as corrupt', async () => {
    const good = nfs.readFileSync(await write(typed.slice(0, 6)))
    for (let len = 0; len < good.length - 1; len++) await expectCorrupt(good.subarray(0, len))
    expect((await load(good.subarray(0, good.length - 1))).entries.length).toBe(6)
  })

  it('rejects structural damage, bad wrappers and a wrong count as corrupt', async () => {
    const head = '{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":1,"count":1,"data":{\n'
    const bad = [
      '"a":{"type":"nope","value":1}',
      '"a":{"type":"bytes","value":"***"}',
      '"a":{"value":"x","extra":1}',
      '"a":{"type":"list"}',
      '"a":[1,2]',
      '"a":{"value":[1]}',
      '"a":{"type":"hash","value":[["f"]]}',
      '"a":{"type":"list","value":[[1]]}',
      '"a":{"value":"x","expiresAt":-1}',
      '"a";"x"',
      '"a":"x",',
    ]
    for (const line of bad) await expectCorrupt(`${head}${line}\n}}\n`)
    expect(await expectCorrupt(`${head}"a":"x",\n"b":"y"\n}}\n`)).toMatch(/count|1 entries/)
    await expectCorrupt(`${head}"a":"x"\n}}\ngarbage`)
    expect(await expectCorrupt(`${head}"a":"x"\n"b":"y"\n}}\n`)).toMatch(/byte offset/)
  })

  it('keeps a key with escapes and a __proto__ hash field intact', async () => {
    const entries = [plain('a"b\\c', 1), plain('z', new KvHash([['__proto__', 'v']]))]
    const { entries: got } = await load(nfs.readFileSync(await write(entries)))
    expect(canonEntries(got)).toEqual(canonEntries(entries))
  })

  it('refuses to write when the entries do not match meta.count', async () => {
    await expect(write([plain('a', 1)], { seq: 0, timestamp: 0, count: 3 })).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
  })
})

// The JSON snapshot reader's exact answers: every refusal's message, offset and line (line
// layout and whole-file), the line layout's edge cases (CRLF, BOM, spaces, escaped keys,
// blank lines after the end), the offset of the first invalid UTF-8 byte for each kind of
// sequence, base64 sizes with padding, and what the writer puts on each line.

import { describe, expect, it } from 'vitest'
import { KvHash, KvList } from '../../src/collections.js'
import { isStoreError } from '../../src/errors.js'
import type { SnapshotEntry, SnapshotReadOptions } from '../../src/snapshot/format.js'
import { jsonSnapshot, maxJsonLineBytes } from '../../src/snapshot/json.js'
import { bytesFs } from '../helpers/values.js'
import { MemFs } from '../helpers/mem-fs.js'

const P = 'j.json'
const HEAD = '{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":1,"data":{\n'

async function read(text: string | Buffer, opts?: SnapshotReadOptions): Promise<{ entries: SnapshotEntry[]; meta: unknown }> {
  const entries: SnapshotEntry[] = []
  const bytes = typeof text === 'string' ? Buffer.from(text) : text
  const meta = await jsonSnapshot.read(bytesFs(bytes), P, (e) => entries.push({ ...e }), opts)
  return { entries, meta }
}

/** The KV_CORRUPT message reading `text` gives, without its `<path>: damaged JSON snapshot at ` prefix. */
async function refusal(text: string | Buffer, opts?: SnapshotReadOptions): Promise<string> {
  try {
    await read(text, opts)
  } catch (err) {
    if (!isStoreError(err, 'KV_CORRUPT')) throw err
    const prefix = `${P}: damaged JSON snapshot at `
    expect(err.message.startsWith(prefix)).toBe(true)
    return err.message.slice(prefix.length)
  }
  throw new Error('accepted')
}

/** A line-layout file: HEAD, the lines joined with ",\n", the end. */
const lines = (...ls: string[]): string => `${HEAD}${ls.join(',\n')}\n}}\n`
/** Byte offset of line `n` (1-based) of `text`. */
const lineAt = (text: string, n: number): number => {
  let off = 0
  for (let i = 1; i < n; i++) off = text.indexOf('\n', off) + 1
  return Buffer.byteLength(text.slice(0, off))
}

describe('header refusals', () => {
  const head = (fields: string): string => `{${fields},"data":{\n"a":1\n}}\n`
  it.each([
    ['"version":3', 'unsupported version 3'],
    ['"version":"2"', 'unsupported version "2"'],
    ['"version":2,"seq":-1', 'bad seq -1 (not a non-negative integer)'],
    ['"version":2,"seq":1.5', 'bad seq 1.5 (not a non-negative integer)'],
    ['"version":2,"count":-1', 'bad count -1'],
    ['"version":2,"count":1.5', 'bad count 1.5'],
    ['"version":2,"count":"1"', 'bad count "1"'],
    ['"version":2,"timestamp":"nope"', 'bad timestamp "nope"'],
    ['"version":2,"timestamp":true', 'bad timestamp true'],
    ['"version":2,"timestamp":null', 'bad timestamp null'],
    ['"version":2,"timestamp":1e300', 'bad timestamp 1e+300'],
    ['"version":2,"timestamp":1.5', 'bad timestamp 1.5'],
    ['"version":2,"count":2', 'header says 2 entries but the file holds 1'],
  ])('%s: %s, at line 1', async (fields, why) => {
    expect(await refusal(head(fields))).toBe(`byte offset 0 (line 1): ${why}`)
  })

  it('takes what the header gives, with defaults for what it leaves out', async () => {
    expect((await read(head('"version":2'))).meta).toEqual({ seq: 0, timestamp: 0, count: 1, version: 2 })
    expect((await read(head('"version":2,"seq":9,"timestamp":-5,"count":1'))).meta).toEqual({ seq: 9, timestamp: -5, count: 1, version: 2 })
    expect((await read(head('"version":2,"seq":-0,"timestamp":-0'))).meta).toEqual({ seq: 0, timestamp: 0, count: 1, version: 2 })
    expect(Object.is(((await read(head('"version":2,"timestamp":-0'))).meta as { timestamp: number }).timestamp, 0)).toBe(true)
    expect((await read(head('"version":2,"timestamp":"2024-01-15T10:30:00.000Z"'))).meta).toMatchObject({ timestamp: 1_705_314_600_000 })
  })

  it('a header line that is not ours is read whole; whole-file errors then have no line', async () => {
    expect((await read(`{"version":1,"data":{\n"a":"1"\n}}`)).entries.map((e) => e.key)).toEqual(['a'])
    expect(await refusal(' {"version":2,"data":{}} x')).toMatch(/^byte offset 25: invalid JSON \(/)
    expect(await refusal('')).toBe('byte offset 0: invalid JSON (Unexpected end of JSON input)')
    expect(await refusal('{"version":2}\n')).toBe('byte offset 0: "data" is missing or not an object')
    expect(await refusal('{"version":2,"data":[]}')).toBe('byte offset 0: "data" is missing or not an object')
    expect(await refusal('{"version":2,"data":null}')).toBe('byte offset 0: "data" is missing or not an object')
    expect(await refusal('{"version":2,"data":"x"}')).toBe('byte offset 0: "data" is missing or not an object')
    expect(await refusal('[1]')).toBe('byte offset 0: the top level is not an object')
    expect(await refusal('null')).toBe('byte offset 0: the top level is not an object')
    expect(await refusal('"x"')).toBe('byte offset 0: the top level is not an object')
    expect(await refusal('{"version":1,"count":3,"data":{"a":"1"}}')).toBe('byte offset 0: header says 3 entries but the file holds 1')
    expect(await refusal('{"version":4,"data":{}}')).toBe('byte offset 0: unsupported version 4')
  })

  it('names the byte offset of a whole-file syntax error, counting UTF-8 bytes', async () => {
    // "Expected double-quoted property name in JSON at position 27": character 27 is byte 28.
    expect(await refusal('{"version":1,"data":{"é":1,}}')).toMatch(/^byte offset 28: invalid JSON \(Expected double-quoted property name/)
  })
})

describe('line layout', () => {
  it.each([
    ['x:1', 'an entry line must start with a quoted key'],
    ['"abc', 'unterminated key'],
    ['"a\\"', 'unterminated key'],
    ['"a"x1', 'not a "key":value line (expected ":" after the key)'],
  ])('%s: %s (at the line, from the line layout)', async (line, why) => {
    const text = `${HEAD}${line}\n}}\n`
    expect(await refusal(text)).toBe(`byte offset ${lineAt(text, 2)}: ${why}`)
  })

  it('names a missing comma, a comma before the end, text after the end and a missing end', async () => {
    const noComma = `${HEAD}"a":1\n"b":2\n}}\n`
    expect(await refusal(noComma)).toBe(`byte offset ${lineAt(noComma, 3)}: an entry line without a trailing ","`)
    const extraComma = `${HEAD}"a":1,\n}}\n`
    expect(await refusal(extraComma)).toBe(`byte offset ${lineAt(extraComma, 3)}: an entry line ends with "," but no entry follows`)
    const after = `${HEAD}"a":1\n}}\n\n  \nx\n`
    expect(await refusal(after)).toBe(`byte offset ${lineAt(after, 6)}: text after the closing }}`)
    const cut = `${HEAD}"a":1,\n"b":2`
    expect(await refusal(cut)).toBe(`byte offset ${Buffer.byteLength(cut)}: the closing }} is missing (truncated file)`)
    const cutAtNewline = `${HEAD}"a":1,\n`
    expect(await refusal(cutAtNewline)).toBe(`byte offset ${Buffer.byteLength(cutAtNewline)}: the closing }} is missing (truncated file)`)
  })

  it('a read failure while retrying as whole-file JSON stays KV_IO, not the layout complaint', async () => {
    const text = Buffer.from(`${HEAD}"a":1\n"b":2\n}}\n`)
    const base = bytesFs(text)
    let opens = 0
    let failing = false
    const fs = {
      ...base,
      open: (p: string, f: Parameters<typeof base.open>[1]) => {
        // readHead, the line pass, then the whole-file pass.
        failing = ++opens === 3
        return base.open(p, f)
      },
      read: (fd: number, buf: Uint8Array, off: number, len: number, pos: number) => {
        if (failing) throw Object.assign(new Error('EIO'), { code: 'EIO' })
        return base.read(fd, buf, off, len, pos)
      },
    }
    const err = await jsonSnapshot.read(fs, P, () => {}).catch((e: unknown) => e)
    expect(opens).toBe(3)
    expect(err).toMatchObject({ code: 'KV_IO', message: `cannot read ${P} at byte offset 0` })
  })

  it('an empty data object, blank lines and spaces after the end, CRLF, a BOM and spaces around the colon are fine', async () => {
    expect((await read(`${HEAD}}}\n`)).entries).toEqual([])
    expect((await read(`${HEAD}}}`)).entries).toEqual([])
    expect((await read(`${HEAD}"a":1\n}}\n\n \t\r\n`)).entries).toHaveLength(1)
    const crlf = `${HEAD.replace('\n', '\r\n')}"a":1,\r\n"b":2 \r\n}}\r\n`
    expect((await read(crlf)).entries.map((e) => [e.key, e.value])).toEqual([
      ['a', 1],
      ['b', 2],
    ])
    expect((await read(`\ufeff${lines('"a":1')}`)).entries).toHaveLength(1)
    expect((await read(lines('"a" \t: 1', '"b":\t2'))).entries.map((e) => e.value)).toEqual([1, 2])
  })

  it('reads escaped keys: quotes, backslashes before the closing quote, unicode escapes', async () => {
    const keys = (await read(lines('"a\\"b":1', '"c\\\\":2', '"d\\\\\\"e":3', '"\\u00e9":4', '"plain":5'))).entries.map((e) => e.key)
    expect(keys).toEqual(['a"b', 'c\\', 'd\\"e', 'é', 'plain'])
  })

  it('counts the entries when the header has no count, and checks it when it has one', async () => {
    expect((await read(lines('"a":1', '"b":2'))).meta).toEqual({ seq: 1, timestamp: 1_705_314_600_000, count: 2, version: 2 })
    const counted = HEAD.replace('"seq":1,', '"seq":1,"count":3,')
    expect(await refusal(`${counted}"a":1\n}}\n`)).toBe('byte offset 0 (line 1): header says 3 entries but the file holds 1')
  })

  it('refuses a line over maxJsonLineBytes before reading all of it, naming line and limits', async () => {
    const opts = { maxKeyBytes: 4, maxValueBytes: 4 }
    const max = maxJsonLineBytes(opts)
    expect(max).toBe(6 * 8 + 64 * 1024)
    const ok = lines(`"k":"${'v'.repeat(max - 6)}"`)
    expect(await refusal(ok, opts)).toBe(`byte offset ${lineAt(ok, 2)} (line 2): key "k": value longer than 4 UTF-8 bytes`)
    const long = lines(`"k":"${'v'.repeat(max - 5)}"`)
    expect(await refusal(long, opts)).toBe(`byte offset ${lineAt(long, 2)} (line 2): line longer than ${max} bytes (the limit for maxKeyBytes 4, maxValueBytes 4)`)
  })
})

describe('entry refusals (line 2 of a line-layout file)', () => {
  const opts = { maxKeyBytes: 8, maxValueBytes: 8 }
  it.each([
    ['"":1', 'key "": empty key'],
    ['"123456789":1', 'key "123456789": key longer than 8 UTF-8 bytes'],
    ['"\\ud800":1', 'key "\\ud800": key has a lone surrogate'],
    ['"a":[1]', 'key "a": an array must be wrapped as {"type":"json","value":[…]}'],
    ['"a":{"value":1,"x":2}', 'key "a": unknown field "x"'],
    ['"a":{"version":1}', 'key "a": wrapper without "value"'],
    ['"a":{"value":1,"expiresAt":-1}', 'key "a": bad expiresAt -1 (not a non-negative integer)'],
    ['"a":{"value":1,"expiresAt":"1"}', 'key "a": bad expiresAt "1" (not a non-negative integer)'],
    ['"a":{"value":1,"version":1.5}', 'key "a": bad version 1.5 (not a non-negative integer)'],
    ['"a":{"value":{"b":1}}', 'key "a": a wrapper without "type" must hold a string, number, boolean or null'],
    ['"a":{"value":[1]}', 'key "a": a wrapper without "type" must hold a string, number, boolean or null'],
    ['"a":{"type":"list","value":1}', 'key "a": list value is not an array'],
    ['"a":{"type":"hash","value":{"f":1}}', 'key "a": hash value is not an array of pairs'],
    ['"a":{"type":"hash","value":[["f"]]}', 'key "a": hash pair is not [field, value]'],
    ['"a":{"type":"hash","value":[["f",1,2]]}', 'key "a": hash pair is not [field, value]'],
    ['"a":{"type":"hash","value":[[1,1]]}', 'key "a": hash pair is not [field, value]'],
    ['"a":{"type":"hash","value":["f"]}', 'key "a": hash pair is not [field, value]'],
    ['"a":{"type":"hash","value":[["123456789",1]]}', 'key "a": hash field longer than 8 UTF-8 bytes'],
    ['"a":{"type":"hash","value":[["\\udc00",1]]}', 'key "a": hash field has a lone surrogate'],
    ['"a":{"type":"list","value":[[1]]}', 'key "a": bad element'],
    ['"a":{"type":"list","value":[{"type":"json"}]}', 'key "a": an element wrapper is {"type","value"}'],
    ['"a":{"type":"list","value":[{"value":1,"x":1}]}', 'key "a": an element wrapper is {"type","value"}'],
    ['"a":{"type":"list","value":[{"type":"json","value":1,"x":1}]}', 'key "a": an element wrapper is {"type","value"}'],
    ['"a":{"type":"list","value":[{"type":"list","value":[]}]}', 'key "a": unknown type "list"'],
    ['"a":{"type":"set","value":[]}', 'key "a": unknown type "set"'],
    ['"a":{"type":"bytes","value":"abc"}', 'key "a": bytes value is not base64'],
    ['"a":{"type":"bytes","value":"ab!="}', 'key "a": bytes value is not base64'],
    ['"a":{"type":"bytes","value":"a==="}', 'key "a": bytes value is not base64'],
    ['"a":{"type":"bytes","value":1}', 'key "a": bytes value is not base64'],
    ['"a":{"type":"bytes","value":"AAAAAAAAAAAA"}', 'key "a": bytes value of 9 bytes exceeds maxValueBytes 8'],
    ['"a":"123456789"', 'key "a": value longer than 8 UTF-8 bytes'],
    ['"a":"ééééé"', 'key "a": value longer than 8 UTF-8 bytes'],
    ['"a":"\\ud800"', 'key "a": value has a lone surrogate'],
    ['"a":1e400', 'key "a": non-finite number Infinity'],
    ['"a":-1e400', 'key "a": non-finite number -Infinity'],
    ['"a":{"type":"list","value":[1e400]}', 'key "a": non-finite number Infinity'],
  ])('%s: %s', async (line, why) => {
    const text = lines(line)
    expect(await refusal(text, opts)).toBe(`byte offset ${lineAt(text, 2)} (line 2): ${why}`)
  })

  it('accepts the bounds: 8-byte keys, values and fields, 8 bytes of base64 with each padding', async () => {
    const got = await read(
      lines(
        '"12345678":"12345678"',
        '"b1":{"type":"bytes","value":"AAAAAAAAAAA="}',
        '"b2":{"type":"bytes","value":"AAAAAAAAAA=="}',
        '"b3":{"type":"bytes","value":""}',
        '"h":{"type":"hash","value":[["12345678",1],["",{"type":"bytes","value":"AQ=="}]]}',
        '"ééé":"éééé"',
      ),
      opts,
    )
    const byKey = new Map(got.entries.map((e) => [e.key, e.value]))
    expect(byKey.get('12345678')).toBe('12345678')
    expect(Array.from(byKey.get('b1') as Uint8Array)).toEqual(new Array(8).fill(0))
    expect(Array.from(byKey.get('b2') as Uint8Array)).toEqual(new Array(7).fill(0))
    expect(Array.from(byKey.get('b3') as Uint8Array)).toEqual([])
    const h = byKey.get('h') as KvHash
    expect([...h].map(([f, v]) => [f, v instanceof Uint8Array ? Array.from(v) : v])).toEqual([
      ['12345678', 1],
      ['', [1]],
    ])
    expect(byKey.get('ééé')).toBe('éééé')
    // "==" takes 2 bytes off: 7 bytes fit a limit of 7.
    expect((await read(lines('"b":{"type":"bytes","value":"AAAAAAAAAA=="}'), { maxKeyBytes: 8, maxValueBytes: 7 })).entries).toHaveLength(1)
    // 9 bytes only with one '=' less: "AAAAAAAAAAAA" is 9, so the padding really is subtracted.
    expect(await refusal(lines('"b":{"type":"bytes","value":"AAAAAAAAAAAA"}'), opts)).toMatch(/9 bytes exceeds maxValueBytes 8$/)
  })

  it('decodes each wrapper: -0 meta as 0, json data frozen, lists of typed elements', async () => {
    const got = await read(
      lines(
        '"a":{"value":"s","expiresAt":-0,"version":-0}',
        '"j":{"type":"json","value":{"x":[1,{"y":2}]},"version":3}',
        '"l":{"type":"list","value":["a",1,null,true,{"type":"json","value":[1]},{"type":"bytes","value":"AQI="}],"expiresAt":99}',
        '"n":null',
        '"t":{"value":false}',
      ),
    )
    const [a, j, l, n, t] = got.entries
    expect(Object.is(a?.expiresAt, 0) && Object.is(a?.version, 0)).toBe(true)
    expect(j).toEqual({ key: 'j', value: { x: [1, { y: 2 }] }, expiresAt: 0, version: 3 })
    expect(Object.isFrozen(j?.value)).toBe(true)
    expect(Object.isFrozen((j?.value as { x: unknown[] }).x[1])).toBe(true)
    const items = [...(l?.value as KvList)]
    expect(items.slice(0, 5)).toEqual(['a', 1, null, true, [1]])
    expect(Array.from(items[5] as Uint8Array)).toEqual([1, 2])
    expect(l?.expiresAt).toBe(99)
    expect(n).toEqual({ key: 'n', value: null, expiresAt: 0, version: 0 })
    expect(t).toEqual({ key: 't', value: false, expiresAt: 0, version: 0 })
  })

  it('version 1 keeps non-string values as the matching type, frozen', async () => {
    const { entries } = await read('{"version":1,"data":{"s":"x","n":2,"o":{"a":[1]},"z":null}}')
    expect(entries.map((e) => [e.key, e.value, e.version, e.expiresAt])).toEqual([
      ['s', 'x', 0, 0],
      ['n', 2, 0, 0],
      ['o', { a: [1] }, 0, 0],
      ['z', null, 0, 0],
    ])
    expect(Object.isFrozen(entries[2]?.value)).toBe(true)
    expect(await refusal('{"version":1,"data":{"s":"\\ud800"}}')).toBe('byte offset 0: key "s": value has a lone surrogate')
  })
})

describe('invalid UTF-8: the offset of the first bad byte', () => {
  const prefix = Buffer.from(`${HEAD}"k":"x`)
  const file = (seq: number[]): Buffer => Buffer.concat([prefix, Buffer.from(seq), Buffer.from('"\n}}\n')])

  it.each([
    // [bytes, index of the first bad byte within them]
    [[0x80], 0],
    [[0xc1, 0xbf], 0],
    [[0xc2, 0x80, 0xff], 2],
    [[0xdf, 0xbf, 0xff], 2],
    [[0xc2, 0x7f], 0],
    [[0xc2, 0xc0], 0],
    [[0xe0, 0x9f, 0x80], 0],
    [[0xe0, 0xa0, 0x80, 0xff], 3],
    [[0xe1, 0x80, 0x80, 0xff], 3],
    [[0xe1, 0x80, 0x7f], 0],
    [[0xe1, 0x80, 0xc0], 0],
    [[0xe1, 0x7f, 0x80], 0],
    [[0xed, 0x9f, 0xbf, 0xff], 3],
    [[0xed, 0xa0, 0x80], 0],
    [[0xef, 0xbf, 0xbf, 0xff], 3],
    [[0xf0, 0x8f, 0xbf, 0xbf], 0],
    [[0xf0, 0x90, 0x80, 0x80, 0xff], 4],
    [[0xf1, 0x80, 0x80, 0x80, 0xff], 4],
    [[0xf1, 0x80, 0x80, 0x7f], 0],
    [[0xf4, 0x8f, 0xbf, 0xbf, 0xff], 4],
    [[0xf4, 0x90, 0x80, 0x80], 0],
    [[0xf5, 0x80, 0x80, 0x80], 0],
    [[0xff], 0],
    [[0x41, 0xe1, 0x80], 1],
  ])('%j: bad at %i', async (seq, bad) => {
    expect(await refusal(file(seq))).toBe(`byte offset ${prefix.length + bad} (line 2): not valid UTF-8`)
  })

  it('counts lines up to the bad byte, and finds one in the unterminated last line', async () => {
    const text = Buffer.concat([Buffer.from(`${HEAD}"a":1,\n"b":2,\n"c":"`), Buffer.from([0xff]), Buffer.from('"\n}}\n')])
    expect(await refusal(text)).toBe(`byte offset ${text.indexOf(0xff)} (line 4): not valid UTF-8`)
    const last = Buffer.concat([Buffer.from(`${HEAD}"a":1\n}}`), Buffer.from([0xff])])
    expect(await refusal(last)).toBe(`byte offset ${last.length - 1} (line 3): not valid UTF-8`)
    const whole = Buffer.concat([Buffer.from('{"version":1,\n"data":{"a":"'), Buffer.from([0xc0]), Buffer.from('"}}')])
    expect(await refusal(whole)).toBe(`byte offset ${whole.indexOf(0xc0)} (line 2): not valid UTF-8`)
  })
})

describe('writer', () => {
  async function written(entries: SnapshotEntry[], meta = { seq: 4, timestamp: 1_705_314_600_000 }): Promise<string> {
    const fs = new MemFs()
    const fd = fs.open('/w', 'w')
    await jsonSnapshot.write(fs, fd, { ...meta, count: entries.length }, entries)
    fs.close(fd)
    return fs.readFile('/w').toString()
  }
  const e = (key: string, value: unknown, expiresAt = 0, version = 0): SnapshotEntry => ({ key, value, expiresAt, version })

  it('writes bare scalars, wrappers only where needed, -0 kept, one entry per line', async () => {
    const list = new KvList(['a', 1, { x: 1 }, new Uint8Array([1, 2])])
    const hash = new KvHash()
    hash.set('f', 'v')
    hash.set('g', null)
    const text = await written([
      e('a', 'x'),
      e('b', -0),
      e('c', true, 0, 2),
      e('d', null, 5),
      e('e', { o: [1] }, 0, -0),
      e('f', new Uint8Array([255, 0])),
      e('g', list, 7, 8),
      e('h', hash),
      e('i', 1.5, -0, 3),
    ])
    expect(text).toBe(
      '{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":4,"count":9,"data":{\n' +
        '"a":"x",\n' +
        '"b":-0,\n' +
        '"c":{"value":true,"version":2},\n' +
        '"d":{"value":null,"expiresAt":5},\n' +
        '"e":{"type":"json","value":{"o":[1]}},\n' +
        '"f":{"type":"bytes","value":"/wA="},\n' +
        '"g":{"type":"list","value":["a",1,{"type":"json","value":{"x":1}},{"type":"bytes","value":"AQI="}],"expiresAt":7,"version":8},\n' +
        '"h":{"type":"hash","value":[["f","v"],["g",null]]},\n' +
        '"i":{"value":1.5,"version":3}\n' +
        '}}\n',
    )
    expect(await written([])).toBe('{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":4,"count":0,"data":{\n}}\n')
  })

  it('refuses what it cannot encode, with codes and messages', async () => {
    const refuse = async (v: unknown): Promise<unknown> => written([e('k', v)]).catch((err: unknown) => err)
    expect(await refuse(Number.NaN)).toMatchObject({ code: 'KV_INVALID_VALUE', message: 'cannot encode NaN' })
    expect(await refuse(Number.POSITIVE_INFINITY)).toMatchObject({ code: 'KV_INVALID_VALUE', message: 'cannot encode Infinity' })
    expect(await refuse(10n)).toMatchObject({ code: 'KV_INVALID_VALUE', message: 'cannot encode a bigint' })
    expect(await refuse(new KvList([new KvList()]))).toMatchObject({ code: 'KV_INVALID_VALUE', message: 'a collection cannot hold another collection' })
    const big = { key: 'k', value: 'x'.repeat(200_000), expiresAt: 0, version: 0 }
    const fs = new MemFs()
    const fd = fs.open('/w', 'w')
    const err = await jsonSnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: 1 }, [big], { maxKeyBytes: 1, maxValueBytes: 1 }).catch((x: unknown) => x)
    const max = maxJsonLineBytes({ maxKeyBytes: 1, maxValueBytes: 1 })
    expect(err).toMatchObject({ code: 'KV_VALUE_TOO_LARGE', message: `the JSON line of key "k" would be 200006 bytes, over the ${max} a reader accepts: use the binary format` })
    const count = await jsonSnapshot.write(fs, fs.open('/c', 'w'), { seq: 1, timestamp: 0, count: 2 }, [e('a', 1)]).catch((x: unknown) => x)
    expect(count).toMatchObject({ code: 'KV_INVALID_ARGUMENT', message: 'snapshot meta.count is 2 but 1 entries were given' })
  })

  it('a line of exactly maxJsonLineBytes is written and read back', async () => {
    const limits = { maxKeyBytes: 1, maxValueBytes: 1 }
    const max = maxJsonLineBytes(limits)
    // "k":"xxx…" is 6 bytes plus the value.
    const fit = { key: 'k', value: 'x'.repeat(max - 6), expiresAt: 0, version: 0 }
    const fs = new MemFs()
    const fd = fs.open('/w', 'w')
    await jsonSnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: 1 }, [fit], limits)
    const over = { ...fit, value: 'x'.repeat(max - 5) }
    await expect(jsonSnapshot.write(fs, fs.open('/o', 'w'), { seq: 1, timestamp: 0, count: 1 }, [over], limits)).rejects.toMatchObject({ code: 'KV_VALUE_TOO_LARGE' })
  })

  it('pauses every pauseEvery entries (1024 by default)', async () => {
    const es = Array.from({ length: 2049 }, (_, i) => e(`k${String(i).padStart(5, '0')}`, i))
    for (const [every, want] of [
      [undefined, 2],
      [5, 409],
    ] as const) {
      let pauses = 0
      const pause = async (): Promise<void> => {
        pauses++
      }
      const fs = new MemFs()
      await jsonSnapshot.write(fs, fs.open('/p', 'w'), { seq: 1, timestamp: 0, count: es.length }, es, every === undefined ? { pause } : { pause, pauseEvery: every })
      expect(pauses).toBe(want)
      const back = await jsonSnapshot.read(fs, '/p', () => {})
      expect(back.count).toBe(es.length)
    }
  })
})

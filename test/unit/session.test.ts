import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSession, quote, Store, tokenize, type Reply } from '../../src/index.js'
import { numRuns } from '../helpers/runs.js'

async function session() {
  const store = await Store.open()
  return { store, s: createSession(store) }
}

/** Run lines and return compact replies: strings, numbers, null, arrays, or 'ERR…' text. */
function compact(r: Reply | null): unknown {
  if (r === null) return null
  switch (r.type) {
    case 'status':
    case 'bulk':
    case 'integer':
      return r.value
    case 'array':
      return r.value === null ? null : r.value.map(compact)
    case 'error':
      return `${r.code} ${r.message}`
  }
}

async function runAll(lines: string[]): Promise<unknown[]> {
  const { s } = await session()
  const out: unknown[] = []
  for (const l of lines) out.push(compact(await s.run(l)))
  return out
}

describe('tokenize', () => {
  it('splits on whitespace and honours quotes and escapes like redis-cli', () => {
    expect(tokenize('SET a "hello world"')).toEqual(['SET', 'a', 'hello world'])
    expect(tokenize(`SET 'it''s' x`.replace("''", "\\'"))).toEqual(['SET', "it's", 'x'])
    expect(tokenize('ECHO "a\\nb\\t\\"c\\" \\x41"')).toEqual(['ECHO', 'a\nb\t"c" A'])
    expect(tokenize("ECHO 'a\\nb'")).toEqual(['ECHO', 'a\\nb'])
    expect(tokenize('  GET   k  ')).toEqual(['GET', 'k'])
    expect(tokenize('SET k ""')).toEqual(['SET', 'k', ''])
    expect(tokenize('')).toEqual([])
  })

  it('rejects unbalanced quotes', () => {
    expect(() => tokenize('SET a "oops')).toThrow(/unbalanced/)
    expect(() => tokenize("SET a 'oops")).toThrow(/unbalanced/)
    expect(() => tokenize('SET a "x"y')).toThrow(/closing quote/)
  })

  it('round-trips any words through quote', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 6 }), (words) => {
        expect(tokenize(words.map(quote).join(' '))).toEqual(words)
      }),
      { numRuns: numRuns(1000) },
    )
  })
})

describe('commands', () => {
  it('runs the seed session', async () => {
    expect(await runAll(['SET user:1 Alice', 'GET user:1', 'SET user:2 Bob', 'KEYS user:*', 'DELETE user:1', 'GET user:1'])).toEqual([
      'OK',
      'Alice',
      'OK',
      ['user:1', 'user:2'],
      'OK',
      null,
    ])
  })

  it('is case-insensitive in command names and checks arity like Redis', async () => {
    expect(await runAll(['set a 1', 'Get a', 'GET', 'GET a b', 'NOPE x'])).toEqual([
      'OK',
      '1',
      "ERR wrong number of arguments for 'get' command",
      "ERR wrong number of arguments for 'get' command",
      "ERR unknown command 'NOPE', with args beginning with: 'x' ",
    ])
  })

  it('SET options: EX/PX/NX/XX/GET/KEEPTTL and syntax errors', async () => {
    expect(
      await runAll([
        'SET a 1 NX',
        'SET a 2 NX',
        'SET b 1 XX',
        'SET a 3 GET',
        'SET a 4 EX 100',
        'TTL a',
        'SET a 5 KEEPTTL',
        'PTTL a',
        'SET a 6',
        'TTL a',
        'SET a 7 EX 0',
        'SET a 7 EX x',
        'SET a 7 BOGUS',
        'SET a 7 NX XX',
      ]),
    ).toEqual([
      'OK',
      null,
      null,
      '1',
      'OK',
      100,
      'OK',
      expect.any(Number),
      'OK',
      -1,
      "ERR invalid expire time in 'set' command",
      'ERR value is not an integer or out of range',
      'ERR syntax error',
      'ERR syntax error',
    ])
  })

  it('DEL counts deleted keys and EXISTS counts repeats', async () => {
    expect(await runAll(['MSET a 1 b 2', 'EXISTS a a b c', 'DEL a a c', 'DEL b', 'EXISTS a b', 'MSET a'])).toEqual([
      'OK',
      3,
      1,
      1,
      0,
      "ERR wrong number of arguments for 'mset' command",
    ])
  })

  it('integers, wrong types and MGET', async () => {
    expect(
      await runAll(['SET n 41', 'INCR n', 'GET n', 'INCRBY n 10', 'DECRBY n 2', 'DECR n', 'SET s abc', 'INCR s', 'RPUSH l x', 'INCR l', 'GET l', 'MGET n l missing', 'INCRBY n 1.5']),
    ).toEqual([
      'OK',
      42,
      '42',
      52,
      50,
      49,
      'OK',
      'ERR value is not an integer or out of range',
      1,
      'WRONGTYPE Operation against a key holding the wrong kind of value',
      'WRONGTYPE Operation against a key holding the wrong kind of value',
      ['49', null, null],
      'ERR value is not an integer or out of range',
    ])
  })

  it('lists follow Redis index rules', async () => {
    expect(
      await runAll(['LPUSH l a b c', 'RPUSH l d', 'LRANGE l 0 -1', 'LRANGE l -2 10', 'LRANGE l 3 1', 'LLEN l', 'LINDEX l -1', 'LPOP l', 'RPOP l 2', 'LSET l 0 z', 'LRANGE l 0 -1', 'LSET l 5 z', 'LTRIM l 1 0', 'EXISTS l', 'LPOP l', 'LPOP l 2', 'TYPE l']),
    ).toEqual([3, 4, ['c', 'b', 'a', 'd'], ['a', 'd'], [], 4, 'd', 'c', ['d', 'a'], 'OK', ['z'], 'ERR index out of range', 'OK', 0, null, null, 'none'])
  })

  it('hashes', async () => {
    expect(await runAll(['HSET h f 1 g 2', 'HSET h f 3', 'HGET h f', 'HGETALL h', 'HLEN h', 'HEXISTS h g', 'HDEL h f g x', 'TYPE h', 'HSET h f'])).toEqual([
      2,
      0,
      '3',
      ['f', '3', 'g', '2'],
      2,
      1,
      2,
      'none',
      "ERR wrong number of arguments for 'hset' command",
    ])
  })

  it('expiry commands', async () => {
    expect(await runAll(['SET k v', 'EXPIRE k 100', 'TTL k', 'PERSIST k', 'TTL k', 'PEXPIRE k 5000', 'PTTL k', 'TTL missing', 'EXPIRE k -1', 'EXISTS k', 'EXPIRE missing 10'])).toEqual([
      'OK',
      1,
      100,
      1,
      -1,
      1,
      expect.any(Number),
      -2,
      1,
      0,
      0,
    ])
  })

  it('TYPE, DBSIZE, FLUSHDB, RANGE, PING, ECHO, HELP, INFO', async () => {
    const out = await runAll(['SET a 1', 'SET b 2', 'SET c 3', 'TYPE a', 'DBSIZE', 'RANGE PREFIX b', 'RANGE GT a LIMIT 1', 'RANGE REV LIMIT 2', 'RANGE BOGUS', 'PING', 'ECHO hi', 'HELP GET', 'FLUSHDB', 'DBSIZE', 'INFO'])
    expect(out.slice(0, 14)).toEqual(['OK', 'OK', 'OK', 'string', 3, ['b', '2'], ['b', '2'], ['c', '3', 'b', '2'], 'ERR syntax error', 'PONG', 'hi', 'GET key\n  Value of key, or (nil).', 'OK', 0])
    expect(out[14]).toMatch(/^# Keyspace\nkeys:0\n/)
  })

  it('MULTI/EXEC queues, runs in order, and reports runtime errors per command', async () => {
    expect(await runAll(['MULTI', 'SET a 1', 'INCR a', 'RPUSH a x', 'GET a', 'EXEC', 'EXEC'])).toEqual([
      'OK',
      'QUEUED',
      'QUEUED',
      'QUEUED',
      'QUEUED',
      ['OK', 2, 'WRONGTYPE Operation against a key holding the wrong kind of value', '2'],
      'ERR EXEC without MULTI',
    ])
  })

  it('EXEC aborts after a queuing error, and DISCARD drops the queue', async () => {
    expect(await runAll(['MULTI', 'SET a 1', 'GET', 'EXEC', 'GET a', 'MULTI', 'SET a 1', 'DISCARD', 'GET a', 'DISCARD', 'MULTI', 'MULTI'])).toEqual([
      'OK',
      'QUEUED',
      "ERR wrong number of arguments for 'get' command",
      'EXECABORT Transaction discarded because of previous errors.',
      null,
      'OK',
      'QUEUED',
      'OK',
      null,
      'ERR DISCARD without MULTI',
      'OK',
      'ERR MULTI calls can not be nested',
    ])
  })

  it('WATCH aborts EXEC when another session changes a watched key', async () => {
    const { store, s } = await session()
    const other = createSession(store)
    await s.run('SET k 1')
    expect(compact(await s.run('WATCH k'))).toBe('OK')
    await other.run('SET k 2')
    await s.run('MULTI')
    await s.run('SET k 3')
    expect(compact(await s.run('EXEC'))).toBeNull()
    expect(await store.get('k')).toBe('2')
    // Unchanged watched keys let EXEC through; watching a list works too.
    await s.run('RPUSH l a')
    await s.run('WATCH k l')
    await s.run('MULTI')
    await s.run('SET k 4')
    expect(compact(await s.run('EXEC'))).toEqual(['OK'])
    expect(compact(await s.run('WATCH missing'))).toBe('OK')
    await other.run('SET missing now')
    await s.run('MULTI')
    expect(compact(await s.run('EXEC'))).toBeNull()
  })

  it('EXEC runs without another session interleaving', async () => {
    const { store, s } = await session()
    const other = createSession(store)
    await s.run('MULTI')
    for (let i = 0; i < 50; i++) await s.run('INCR n')
    await s.run('GET n')
    const [exec, racer] = await Promise.all([s.run('EXEC'), other.run('SET n 1000')])
    const replies = compact(exec) as unknown[]
    expect(replies[50]).toBe('50')
    expect(compact(racer)).toBe('OK')
    expect(await store.get('n')).toBe('1000')
  })

  it('reports unbalanced quotes as an error reply and ignores empty lines', async () => {
    const { s } = await session()
    expect(compact(await s.run('SET a "x'))).toBe('ERR unbalanced quotes in request')
    expect(await s.run('   ')).toBeNull()
    expect(compact(await s.run('QUIT'))).toBe('Goodbye!')
    expect(s.exited).toBe(true)
  })
})

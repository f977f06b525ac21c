// Replies of the command language where it used to differ from redis-server 7.0, each found
// by test/server/differential.test.ts; the expected texts are redis-server's.
import { describe, expect, it } from 'vitest'
import { createSession, type Reply } from '../../src/commands/index.js'
import { Store } from '../../src/store.js'

function text(r: Reply | null): unknown {
  if (r === null) return null
  if (r.type === 'error') return `${r.code} ${r.message}`
  if (r.type === 'array') return r.value === null ? null : r.value.map(text)
  return r.value
}

async function replies(...lines: string[]): Promise<unknown[]> {
  const s = createSession(await Store.open())
  const out: unknown[] = []
  for (const l of lines) out.push(text(await s.run(l)))
  return out
}

const NOT_INT = 'ERR value is not an integer or out of range'
const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'

describe('command language parity with redis-server', () => {
  it('reads integer arguments as Redis does: no leading zeros, no -0 or +1, any int64 as a list index', async () => {
    expect(await replies('INCRBY a 01', 'INCRBY a -0', 'INCRBY a +1', 'INCRBY a 5')).toEqual([NOT_INT, NOT_INT, NOT_INT, 5])
    expect(await replies('RPUSH l x y', 'LRANGE l 0 99999999999999999', 'LRANGE l -9223372036854775808 0', 'LRANGE l 0 9223372036854775808')).toEqual([2, ['x', 'y'], ['x'], NOT_INT])
  })

  it('refuses to count from a stored -0, as Redis does (0 and -1 are integers)', async () => {
    expect(await replies('SET z -0', 'INCR z', 'SET o 0', 'INCR o', 'SET m -1', 'DECR m', 'SET p 00', 'INCR p')).toEqual(['OK', NOT_INT, 'OK', 1, 'OK', -2, 'OK', NOT_INT])
  })

  it('answers LPOP/RPOP counts and arity with Redis texts', async () => {
    expect(await replies('RPUSH l x', 'LPOP l x', 'RPOP l -1', 'LPOP l 1 2')).toEqual([
      1, 'ERR value is out of range, must be positive', 'ERR value is out of range, must be positive', "ERR wrong number of arguments for 'lpop' command",
    ])
  })

  it('looks the LINDEX key up before reading the index', async () => {
    expect(await replies('LINDEX missing x', 'SET s v', 'LINDEX s x', 'RPUSH l a', 'LINDEX l x')).toEqual([null, 'OK', WRONGTYPE, 1, NOT_INT])
  })

  it('reads every SET option before the expire time, and lets EX or PX repeat', async () => {
    expect(await replies('SET a v PX x BOGUS', 'SET a v EX 100 EX 200', 'TTL a', 'SET a v EX 1 PX 1', 'SET a v PX GET PX x')).toEqual(['ERR syntax error', 'OK', 200, 'ERR syntax error', NOT_INT])
  })

  it('refuses PING with two words', async () => {
    expect(await replies('PING a b', 'PING a')).toEqual(["ERR wrong number of arguments for 'ping' command", 'a'])
  })

  it('words an unknown command as Redis does: a space after each argument, 128 characters, C strings', async () => {
    const long = 'x'.repeat(200)
    expect(await replies('NOPE', 'NOPE a b', `NOPE ${long} b`, 'NOPE "a\\x00b"')).toEqual([
      "ERR unknown command 'NOPE', with args beginning with: ",
      "ERR unknown command 'NOPE', with args beginning with: 'a' 'b' ",
      `ERR unknown command 'NOPE', with args beginning with: '${'x'.repeat(128)}' `,
      "ERR unknown command 'NOPE', with args beginning with: 'a' ",
    ])
  })

  it('queues UNWATCH inside MULTI', async () => {
    expect(await replies('MULTI', 'UNWATCH', 'SET a 1', 'EXEC')).toEqual(['OK', 'QUEUED', 'QUEUED', ['OK', 'OK']])
  })

  it('turns EXEC with arguments into EXECABORT, ending the transaction, inside MULTI or not', async () => {
    const abort = "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
    expect(await replies('EXEC x', 'MULTI', 'SET a 1', 'EXEC x', 'EXEC', 'GET a')).toEqual([abort, 'OK', 'QUEUED', abort, 'ERR EXEC without MULTI', null])
  })

  it('aborts EXEC when another session created and deleted a watched key (absent both times)', async () => {
    const store = await Store.open()
    const a = createSession(store)
    const b = createSession(store)
    expect(text(await a.run('WATCH k'))).toBe('OK')
    await b.run('SET k 1')
    await b.run('DEL k')
    await a.run('MULTI')
    await a.run('SET k 2')
    expect(text(await a.run('EXEC'))).toBe(null)
    // The watch ended with EXEC: the same dance no longer aborts.
    await b.run('SET k 1')
    await b.run('DEL k')
    await a.run('MULTI')
    expect(text(await a.run('EXEC'))).toEqual([])
  })

  it('makes a command\'s store calls when it is run even while its key is watched (a pipeline reads its own writes)', async () => {
    const store = await Store.open()
    const a = createSession(store)
    const b = createSession(store)
    await b.run('MSET k 1 j 2')
    await a.run('WATCH k')
    // Issued back to back without waiting, as the server does for a pipeline.
    const del = b.execute(['DEL', 'k'])
    const size = b.execute(['DBSIZE'])
    expect([text(await del), text(await size)]).toEqual([1, 1])
    await a.run('MULTI')
    expect(text(await a.run('EXEC'))).toBe(null)
  })

  it('does not mark a watcher dirty for a write that changed nothing, or after UNWATCH', async () => {
    const store = await Store.open()
    const a = createSession(store)
    const b = createSession(store)
    await a.run('WATCH k j')
    await b.run('SET k 1 XX')
    await b.run('DEL k')
    await a.run('MULTI')
    expect(text(await a.run('EXEC'))).toEqual([])
    await a.run('WATCH k')
    await a.run('UNWATCH')
    await b.run('SET k 1')
    await a.run('MULTI')
    expect(text(await a.run('EXEC'))).toEqual([])
  })
})

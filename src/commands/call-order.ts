// Which commands apply at the call. Their handlers in table.ts make every store call
// synchronously when they run, before their first await, and the store applies calls in
// call order. So a client's next such command may be issued without waiting for this one's
// reply: effects and replies come out exactly as if each had waited, and writes issued
// back to back share one WAL write. test/unit/call-order.test.ts runs every handler named
// here against a recording store and fails when one makes a store call after an await.

const AT_CALL: ReadonlySet<string> = new Set([
  'PING', 'ECHO', 'GET', 'DEL', 'DELETE', 'EXISTS', 'KEYS', 'MGET', 'MSET',
  'INCR', 'DECR', 'INCRBY', 'DECRBY', 'EXPIRE', 'PEXPIRE', 'TTL', 'PTTL', 'PERSIST',
  'LPUSH', 'RPUSH', 'LRANGE', 'LLEN', 'LTRIM',
  'HSET', 'HGET', 'HDEL', 'HGETALL', 'HLEN', 'HEXISTS', 'TYPE', 'DBSIZE', 'FLUSHDB',
])

/**
 * True when the command in `args` (name first, any case) makes all its store calls when it is
 * run, so the next command may start before it settles. `SET … GET` (read, then write) and
 * `LPOP`/`RPOP` with a count (check, then pop) wait; so do MULTI/EXEC/WATCH and every command
 * not listed.
 */
export function appliesAtCall(args: readonly string[]): boolean {
  const name = (args[0] ?? '').toUpperCase()
  if (name === 'SET') return !args.slice(3).some((a) => a.toUpperCase() === 'GET')
  if (name === 'LPOP' || name === 'RPOP') return args.length <= 2
  return AT_CALL.has(name)
}

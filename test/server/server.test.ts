import { connect, type Socket } from 'node:net'
import { Redis, type RedisOptions } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type KvServer, type ServerOptions } from '../../src/server/index.js'
import type { StoreOptions } from '../../src/options.js'
import { Store } from '../../src/store.js'
import { MemFs } from '../helpers/mem-fs.js'

const DIR = '/db'
const cleanups: (() => Promise<unknown>)[] = []

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined)
})

async function serve(storeOptions: StoreOptions = {}, serverOptions: ServerOptions = {}): Promise<{ store: Store<unknown>; server: KvServer; port: number }> {
  const store = await Store.open<unknown>({ expirySweepIntervalMs: 0, ...storeOptions })
  cleanups.push(() => store.close())
  const server = createServer(store, serverOptions)
  cleanups.push(() => server.close())
  const { port } = await server.listen(0)
  return { store, server, port }
}

function client(port: number, options: RedisOptions = {}): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 0, retryStrategy: () => null, ...options })
  r.on('error', () => undefined)
  cleanups.push(async () => r.disconnect())
  return r
}

/** A raw connection: send bytes, read what arrives. */
class Raw {
  readonly socket: Socket
  #data = ''
  #closed = false
  #waiters: (() => void)[] = []

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.setEncoding('latin1')
    this.socket.on('data', (d: string) => {
      this.#data += d
      this.#wake()
    })
    this.socket.on('error', () => undefined)
    this.socket.on('close', () => {
      this.#closed = true
      this.#wake()
    })
    cleanups.push(async () => this.socket.destroy())
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  get closed(): boolean {
    return this.#closed
  }

  send(text: string | Buffer): void {
    this.socket.write(text)
  }

  /** Resolves with everything received once it contains `marker` (or the connection closed). */
  async until(marker: string, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    while (!this.#data.includes(marker) && !this.#closed) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(marker)}; got ${shown(this.#data)}`)
      await new Promise<void>((r) => {
        this.#waiters.push(r)
        setTimeout(r, 50)
      })
    }
    return this.#data
  }

  /** Resolves once the server closed the connection. */
  async closedSoon(timeoutMs = 5000): Promise<string> {
    await this.until('\u0000never', timeoutMs).catch(() => undefined)
    if (!this.#closed) throw new Error(`connection still open; got ${shown(this.#data)}`)
    return this.#data
  }

  get received(): string {
    return this.#data
  }
}

/** What a connection received, shortened for a message. */
function shown(data: string): string {
  return data.length > 200 ? `${JSON.stringify(data.slice(0, 100))}…(${data.length} chars)` : JSON.stringify(data)
}

function cmd(...words: string[]): string {
  return `*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`
}

describe('RESP server through ioredis', () => {
  it('runs every supported command with Redis replies', async () => {
    const { port } = await serve()
    const r = client(port)
    expect(await r.ping()).toBe('PONG')
    expect(await r.echo('héllo')).toBe('héllo')
    expect(await r.set('s', 'v1')).toBe('OK')
    expect(await r.set('s', 'v2', 'NX')).toBeNull()
    expect(await r.set('s', 'v3', 'XX', 'GET')).toBe('v1')
    expect(await r.get('s')).toBe('v3')
    expect(await r.get('missing')).toBeNull()
    expect(await r.mset('a', '1', 'b', '2')).toBe('OK')
    expect(await r.mget('a', 'b', 'missing')).toEqual(['1', '2', null])
    expect(await r.exists('a', 'b', 'missing', 'a')).toBe(3)
    expect(await r.incr('n')).toBe(1)
    expect(await r.incrby('n', 41)).toBe(42)
    expect(await r.decr('n')).toBe(41)
    expect(await r.decrby('n', 40)).toBe(1)
    await expect(r.incr('s')).rejects.toThrow('ERR value is not an integer or out of range')
    expect(await r.expire('a', 100)).toBe(1)
    expect(await r.ttl('a')).toBe(100)
    expect(await r.pexpire('b', 100_000)).toBe(1)
    expect(await r.pttl('b')).toBeGreaterThan(99_000)
    expect(await r.persist('b')).toBe(1)
    expect(await r.ttl('b')).toBe(-1)
    expect(await r.ttl('missing')).toBe(-2)
    expect(await r.rpush('l', 'x', 'y', 'z')).toBe(3)
    expect(await r.lpush('l', 'w')).toBe(4)
    expect(await r.lrange('l', 0, -1)).toEqual(['w', 'x', 'y', 'z'])
    expect(await r.llen('l')).toBe(4)
    expect(await r.lindex('l', -1)).toBe('z')
    expect(await r.lset('l', 0, 'W')).toBe('OK')
    expect(await r.lpop('l')).toBe('W')
    expect(await r.rpop('l', 2)).toEqual(['z', 'y'])
    expect(await r.ltrim('l', 0, 0)).toBe('OK')
    expect(await r.lrange('l', 0, -1)).toEqual(['x'])
    await expect(r.lpush('s', 'x')).rejects.toThrow('WRONGTYPE Operation against a key holding the wrong kind of value')
    expect(await r.hset('h', 'f1', 'a', 'f2', 'b')).toBe(2)
    expect(await r.hget('h', 'f1')).toBe('a')
    expect(await r.hgetall('h')).toEqual({ f1: 'a', f2: 'b' })
    expect(await r.hlen('h')).toBe(2)
    expect(await r.hexists('h', 'f2')).toBe(1)
    expect(await r.hdel('h', 'f2', 'nope')).toBe(1)
    expect(await r.type('h')).toBe('hash')
    expect(await r.type('l')).toBe('list')
    expect(await r.type('s')).toBe('string')
    expect(await r.type('missing')).toBe('none')
    expect(await r.keys('*')).toEqual(['a', 'b', 'h', 'l', 'n', 's'])
    expect(await r.dbsize()).toBe(6)
    expect(await r.del('a', 'b', 'missing')).toBe(2)
    expect(await r.select(0)).toBe('OK')
    await expect(r.select(1)).rejects.toThrow('ERR DB index is out of range')
    expect(await r.client('SETNAME', 'worker-1')).toBe('OK')
    expect(await r.client('GETNAME')).toBe('worker-1')
    expect(typeof (await r.client('ID'))).toBe('number')
    expect(await r.command('COUNT')).toBeGreaterThan(50)
    const info = await r.info()
    expect(info).toContain('redis_version:')
    expect(info).toContain('\r\nkeys:4\r\n')
    expect(await r.info('clients')).toMatch(/^# Clients\r\nconnected_clients:1\r\n/)
    expect(await r.flushdb()).toBe('OK')
    expect(await r.dbsize()).toBe(0)
    await expect(r.call('NOSUCH', 'x')).rejects.toThrow("ERR unknown command 'NOSUCH', with args beginning with: 'x'")
  })

  it('answers OOM, as Redis does, when a write would exceed maxMemoryBytes under noeviction', async () => {
    const { port } = await serve({ maxMemoryBytes: 64 * 1024, evictionPolicy: 'noeviction' })
    const r = client(port)
    expect(await r.set('small', 'x')).toBe('OK')
    await expect(r.set('big', 'y'.repeat(100_000))).rejects.toThrow("OOM command not allowed when used memory > 'maxmemory'.")
    expect(await r.get('small')).toBe('x')
    expect(await r.exists('big')).toBe(0)
  })

  it('answers a pipeline in order, and concurrent INCRs from many clients lose nothing', async () => {
    const { port } = await serve()
    const r = client(port)
    const p = r.pipeline()
    for (let i = 0; i < 1000; i++) p.set(`k${i}`, String(i)).incr('counter').get(`k${i}`)
    const results = (await p.exec()) ?? []
    for (let i = 0; i < 1000; i++) {
      expect(results[i * 3]).toEqual([null, 'OK'])
      expect(results[i * 3 + 1]).toEqual([null, i + 1])
      expect(results[i * 3 + 2]).toEqual([null, String(i)])
    }
    const clients = Array.from({ length: 10 }, () => client(port))
    const replies = await Promise.all(clients.flatMap((c) => Array.from({ length: 50 }, () => c.incr('shared'))))
    expect(replies.sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
  })

  it('runs MULTI/EXEC per connection, and WATCH aborts EXEC when another client changed the key', async () => {
    const { port } = await serve()
    const a = client(port)
    const b = client(port)
    expect(await a.multi().set('x', '1').incr('x').get('x').exec()).toEqual([
      [null, 'OK'],
      [null, 2],
      [null, '2'],
    ])
    await a.watch('x')
    await b.set('x', 'changed')
    expect(await a.multi().set('x', 'mine').exec()).toBeNull()
    expect(await a.get('x')).toBe('changed')
    await a.watch('x')
    expect(await a.multi().set('x', 'mine').exec()).toEqual([[null, 'OK']])
    expect(await b.get('x')).toBe('mine')
  })
})

describe('RESP server protocol', () => {
  it('speaks RESP3 after HELLO 3: maps and the null type', async () => {
    const { port } = await serve()
    const c = new Raw(port)
    c.send(cmd('HSET', 'h', 'f', 'v'))
    await c.until(':1\r\n')
    c.send(cmd('HELLO', '3'))
    const hello = await c.until('modules')
    expect(hello).toContain('%7\r\n$6\r\nserver\r\n$7\r\nkvstore\r\n')
    expect(hello).toContain('$5\r\nproto\r\n:3\r\n')
    c.send(cmd('HGETALL', 'h') + cmd('GET', 'missing') + cmd('ECHO', 'end'))
    const rest = (await c.until('$3\r\nend\r\n')).slice(hello.length)
    expect(rest).toBe('%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n$3\r\nend\r\n')
    c.send(cmd('HELLO', '4'))
    expect(await c.until('NOPROTO')).toContain('-NOPROTO unsupported protocol version\r\n')
    // Inside EXEC too, and a refused nested MULTI does not lose track of what was queued.
    const before = c.received.length
    c.send(cmd('MULTI') + cmd('HGETALL', 'h') + cmd('MULTI') + cmd('GET', 'missing') + cmd('HGETALL', 'h') + cmd('EXEC'))
    const exec = (await c.until('*3\r\n%1')).slice(before)
    expect(await c.until('_\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n', 2000).then(() => c.received.slice(before))).toBe(
      '+OK\r\n+QUEUED\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n',
    )
    expect(exec).toContain('*3\r\n%1')
  })

  it('sends back bytes that are not UTF-8 for ECHO (redis-cli --pipe waits for them) and refuses them as data', async () => {
    const { port } = await serve()
    const c = new Raw(port)
    const raw = Buffer.from([0xfe, 0xff, 0x00, 0x80])
    c.send(Buffer.concat([Buffer.from('*2\r\n$4\r\nECHO\r\n$4\r\n'), raw, Buffer.from('\r\n')]))
    expect(await c.until('\r\n', 2000).then(async () => c.until(raw.toString('latin1')))).toBe(`$4\r\n${raw.toString('latin1')}\r\n`)
    c.send(Buffer.concat([Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n'), raw, Buffer.from('\r\n')]))
    expect(await c.until('UTF-8')).toContain('-ERR kvstore keys and values are text')
    // Refused inside MULTI, it fails the transaction as an unknown command would.
    const before = c.received.length
    c.send(Buffer.concat([Buffer.from(cmd('MULTI') + cmd('SET', 'a', '1') + '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n'), raw, Buffer.from(`\r\n${cmd('EXEC')}`)]))
    const tail = (await c.until('EXECABORT')).slice(before)
    expect(tail).toMatch(/^\+OK\r\n\+QUEUED\r\n-ERR kvstore keys and values are text[^\r]*\r\n-EXECABORT Transaction discarded because of previous errors\.\r\n$/)
  })

  it('with requirepass runs nothing before AUTH, and compares the password', async () => {
    const { port } = await serve({}, { requirepass: 's3cret' })
    const c = new Raw(port)
    c.send(cmd('SET', 'a', '1') + cmd('AUTH', 'wrong') + cmd('AUTH', 'nobody', 's3cret') + cmd('HELLO', '3'))
    const before = await c.until('HELLO must be called')
    expect(before).toMatch(/^-NOAUTH Authentication required\.\r\n-WRONGPASS invalid username-password pair or user is disabled\.\r\n-WRONGPASS [^\r]*\r\n-NOAUTH HELLO must be called/)
    await expect(client(port).get('a')).rejects.toThrow('NOAUTH')
    const ok = client(port, { password: 's3cret' })
    expect(await ok.set('a', '1')).toBe('OK')
    const h = new Raw(port)
    h.send(cmd('HELLO', '2', 'AUTH', 'default', 's3cret') + cmd('GET', 'a'))
    expect(await h.until('$1\r\n1\r\n')).toContain('*14\r\n')
  })

  it('closes a client over the unauthenticated request limits before reading more', async () => {
    const { port, server } = await serve({}, { requirepass: 'pw' })
    const c = new Raw(port)
    c.send(`*2\r\n$4\r\nAUTH\r\n$100000\r\n`)
    expect(await c.closedSoon()).toBe('-ERR Protocol error: unauthenticated bulk length\r\n')
    expect(server.stats().protocolErrors).toBe(1)
  })
})

describe('RESP server durability', () => {
  it('with durableReplies, a write is on disk (datasynced) before its reply is sent', async () => {
    for (const durable of [true, false]) {
      const fs = new MemFs()
      const { port } = await serve({ dir: DIR, fs, sync: 'never' }, { durableReplies: durable })
      const c = new Raw(port)
      c.send(cmd('SET', 'k', 'v'))
      await c.until('+OK\r\n')
      const after = await Store.open<string>({ dir: DIR, fs: fs.crash('drop-unsynced'), expirySweepIntervalMs: 0 })
      // Without the barrier the reply came first: a power loss at that moment loses the write.
      expect(await after.get('k')).toBe(durable ? 'v' : undefined)
      await after.close()
      for (const fn of cleanups.splice(0).reverse()) await fn()
    }
  })

  it('a pipeline of writes costs one datasync, and defaults follow the store: always → durable', async () => {
    const fs = new MemFs()
    const { port, server, store } = await serve({ dir: DIR, fs, sync: 'never' }, { durableReplies: true })
    expect(server.stats().durableReplies).toBe(true)
    const c = new Raw(port)
    c.send(cmd('SET', 'warm', 'up'))
    await c.until('+OK\r\n')
    let datasyncs = 0
    fs.onOp = (_i, op) => {
      if (op === 'datasync') datasyncs++
    }
    c.send(Array.from({ length: 200 }, (_, i) => cmd('SET', `k${i}`, 'v')).join(''))
    await c.until('+OK\r\n'.repeat(201))
    expect(datasyncs).toBeLessThanOrEqual(2)
    expect(await store.count()).toBe(201)
    const always = await Store.open<unknown>({ dir: '/other', fs: new MemFs(), sync: 'always' })
    cleanups.push(() => always.close())
    expect(createServer(always).stats().durableReplies).toBe(true)
    expect(createServer(await Store.open()).stats().durableReplies).toBe(false)
  })

  it('a read waits for the durability of the writes before it: no client sees a value a power loss takes back', async () => {
    const fs = new MemFs()
    let release!: () => void
    let held = false
    const { port } = await serve({ dir: DIR, fs, sync: 'never' }, { durableReplies: true })
    fs.syncGate = async () => {
      if (!held) return
      await new Promise<void>((r) => (release = r))
    }
    held = true
    const writer = new Raw(port)
    const reader = new Raw(port)
    writer.send(cmd('SET', 'k', 'new'))
    await new Promise((r) => setTimeout(r, 50))
    reader.send(cmd('GET', 'k'))
    await new Promise((r) => setTimeout(r, 200))
    expect(writer.received).toBe('')
    expect(reader.received).toBe('')
    held = false
    release()
    expect(await writer.until('+OK\r\n')).toBe('+OK\r\n')
    expect(await reader.until('new\r\n')).toBe('$3\r\nnew\r\n')
  })
})

describe('RESP server limits and lifecycle', () => {
  it('refuses connections over maxClients with a RESP error, and keeps serving the others', async () => {
    const { port, server } = await serve({}, { maxClients: 2 })
    const a = client(port)
    const b = client(port)
    expect(await a.ping()).toBe('PONG')
    expect(await b.ping()).toBe('PONG')
    const c = new Raw(port)
    expect(await c.closedSoon()).toBe('-ERR max number of clients reached\r\n')
    expect(await a.ping()).toBe('PONG')
    expect(server.stats()).toMatchObject({ connections: 2, rejectedConnections: 1 })
  })

  it('closes a client whose unsent replies exceed maxOutputBufferBytes, and stops reading a slow reader', async () => {
    const { port, server, store } = await serve({}, { maxOutputBufferBytes: 1024 * 1024 })
    await store.set('big', 'x'.repeat(200_000))
    const slow = new Raw(port)
    slow.socket.pause()
    // Far more replies than the limit: the server must stop reading, or close the client.
    slow.send(cmd('GET', 'big').repeat(200))
    const other = client(port)
    await new Promise((r) => setTimeout(r, 300))
    expect(await other.ping()).toBe('PONG')
    const big = new Raw(port)
    big.send(cmd('LRANGE', 'nothing', '0', '-1'))
    await big.until('*0\r\n')
    expect(process.memoryUsage().rss).toBeLessThan(2 * 1024 ** 3)
    // The slow reader was paused, not dropped: once it reads, every reply arrives.
    expect(server.stats().outputLimitCloses).toBe(0)
    slow.socket.resume()
    const all = await slow.until(`$200000\r\n${'x'.repeat(200_000)}\r\n`.repeat(200), 20_000)
    expect(all.length).toBe(200 * (200_000 + 11))
    expect(slow.closed).toBe(false)
    // Replies larger than the limit plus what the kernel's socket buffers take close the client at once.
    await store.set('huge', 'y'.repeat(32 * 1024 * 1024))
    const h = new Raw(port)
    h.socket.pause()
    h.send(cmd('GET', 'huge') + cmd('GET', 'huge'))
    await new Promise((r) => setTimeout(r, 300))
    h.socket.resume()
    await h.closedSoon()
    expect(server.stats().outputLimitCloses).toBeGreaterThanOrEqual(1)
  })

  it('closes idle connections after idleTimeoutMs with an error line', async () => {
    const { port, server } = await serve({}, { idleTimeoutMs: 150 })
    const c = new Raw(port)
    c.send(cmd('PING'))
    await c.until('+PONG\r\n')
    expect(await c.closedSoon(3000)).toBe('+PONG\r\n-ERR idle for more than 150 ms; closing\r\n')
    expect(server.stats().idleCloses).toBe(1)
  })

  it('close(): no new connections, the request running finishes and is answered, then connections close', async () => {
    const fs = new MemFs()
    let release!: () => void
    let hold = false
    const { port, server } = await serve({ dir: DIR, fs, sync: 'never' }, { durableReplies: true })
    fs.syncGate = async () => {
      if (hold) await new Promise<void>((r) => (release = r))
    }
    const c = new Raw(port)
    c.send(cmd('PING'))
    await c.until('+PONG\r\n')
    hold = true
    c.send(cmd('SET', 'k', 'v'))
    await new Promise((r) => setTimeout(r, 50))
    const closing = server.close()
    const late = new Raw(port)
    await late.closedSoon()
    expect(late.received).toBe('')
    hold = false
    release()
    await closing
    expect(c.received).toBe('+PONG\r\n+OK\r\n')
    await c.closedSoon()
    await server.closed
  })

  it('SHUTDOWN tells the owner, closes the server and replies nothing', async () => {
    const { port, server } = await serve()
    let told = 0
    server.onShutdown(() => told++)
    const c = new Raw(port)
    c.send(cmd('SET', 'a', '1') + cmd('SHUTDOWN', 'NOSAVE'))
    await server.closed
    expect(told).toBe(1)
    expect(await c.closedSoon()).toBe('+OK\r\n')
  })

  it('refuses bad options with KV_INVALID_ARGUMENT, and a port in use with KV_IO', async () => {
    const store = await Store.open()
    cleanups.push(() => store.close())
    expect(() => createServer(store, { maxClient: 3 } as ServerOptions)).toThrow(/unknown server option key "maxClient" \(did you mean "maxClients"\?\)/)
    expect(() => createServer(store, { maxBulkBytes: -1 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    expect(() => createServer(store, { maxBulkBytes: 100, maxQueryBufferBytes: 10 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    const { port } = await serve()
    const second = createServer(store)
    cleanups.push(() => second.close())
    await expect(second.listen(port)).rejects.toMatchObject({ code: 'KV_IO' })
  })
})

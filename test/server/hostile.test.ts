// Hostile clients against a real `kvstore serve` process: random bytes, truncated frames, huge
// declared lengths and 10,000 idle connections. The server must stay up, keep its memory
// bounded, and keep serving a well-behaved client throughout.
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rng } from '../../bench/lib/data.js'
import { startKvstoreServer, type KvstoreServer } from '../helpers/kvstore-server.js'
import { plain, RespClient } from '../helpers/resp-client.js'

let server: KvstoreServer
let control: RespClient

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', reject)
  })
}

/** Send `bytes`, then wait for the server to close the connection or `ms` to pass; always destroy. */
async function sendAndDrop(port: number, bytes: Buffer, ms: number): Promise<string> {
  const s = await open(port)
  s.on('error', () => undefined)
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (d: string) => (got += d))
  s.write(bytes)
  await new Promise<void>((r) => {
    s.on('close', () => r())
    setTimeout(r, ms)
  })
  s.destroy()
  return got
}

async function call(args: string[]): Promise<unknown> {
  return plain((await control.call(args)).value)
}

async function healthy(tag: string): Promise<void> {
  const key = `ctl:${tag}`
  expect(await call(['SET', key, tag])).toBe('OK')
  expect(await call(['GET', key])).toBe(tag)
  expect(server.running).toBe(true)
}

beforeAll(async () => {
  server = await startKvstoreServer({ sync: 'never', args: ['--maxclients', '10000'] })
  control = await RespClient.connect(server.port)
}, 60_000)

afterAll(async () => {
  await control?.close()
  if (server?.running) {
    expect(await server.stop()).toBe(0)
  }
}, 60_000)

describe('kvstore serve under hostile clients', () => {
  it('random bytes, garbage after valid frames and truncated frames: the server stays up and serves others', async () => {
    const rnd = rng(0x5eed)
    const valid = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n')
    for (let round = 0; round < 30; round++) {
      const batch: Promise<string>[] = []
      for (let i = 0; i < 10; i++) {
        const len = 1 + Math.floor(rnd() * 2000)
        const noise = Buffer.alloc(len)
        for (let j = 0; j < len; j++) noise[j] = Math.floor(rnd() * 256)
        const kind = Math.floor(rnd() * 3)
        const bytes =
          kind === 0 ? noise : kind === 1 ? Buffer.concat([valid, noise]) : valid.subarray(0, Math.floor(rnd() * valid.length))
        batch.push(sendAndDrop(server.port, bytes, 30))
      }
      await Promise.all(batch)
      await healthy(`fuzz${round}`)
    }
  }, 120_000)

  it('huge declared lengths cost only the bytes sent, and over-limit ones are refused at once', async () => {
    const before = rssBytes(server.pid as number)
    const refused = await sendAndDrop(server.port, Buffer.from('*1\r\n$536870912000\r\n'), 2000)
    expect(refused).toBe('-ERR Protocol error: invalid bulk length\r\n')
    expect(await sendAndDrop(server.port, Buffer.from('*2147483648\r\n'), 2000)).toBe('-ERR Protocol error: invalid multibulk length\r\n')
    expect(await sendAndDrop(server.port, Buffer.from('*1\r\n*1\r\n*1\r\n*1\r\n'), 2000)).toBe("-ERR Protocol error: expected '$', got '*'\r\n")
    // 200 clients each announce a 60 MB value (under the 64 MiB limit) and send 1 KiB of it.
    const sockets: Socket[] = []
    for (let i = 0; i < 200; i++) {
      const s = await open(server.port)
      s.on('error', () => undefined)
      s.write(Buffer.concat([Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60000000\r\n'), Buffer.alloc(1024, 'a')]))
      sockets.push(s)
    }
    await new Promise((r) => setTimeout(r, 500))
    await healthy('huge')
    const during = rssBytes(server.pid as number)
    console.log(`200 announced 60 MB bulks: server RSS ${(before / 2 ** 20).toFixed(0)} MiB -> ${(during / 2 ** 20).toFixed(0)} MiB`)
    for (const s of sockets) s.destroy()
    // 200 × 60 MB would be 12 GB; what arrived is 200 KiB.
    expect(during - before).toBeLessThan(200 * 1024 * 1024)
  }, 60_000)

  it('10,000 idle connections: memory stays bounded, the next one is refused with an error, others are served', async () => {
    const before = rssBytes(server.pid as number)
    const idle: Socket[] = []
    try {
      // The control connection is one of the 10,000 allowed.
      while (idle.length < 9_999) {
        const wave = await Promise.all(Array.from({ length: Math.min(500, 9_999 - idle.length) }, () => open(server.port)))
        for (const s of wave) s.on('error', () => undefined)
        idle.push(...wave)
      }
      await new Promise((r) => setTimeout(r, 500))
      await healthy('idle')
      const one = await sendAndDrop(server.port, Buffer.from('*1\r\n$4\r\nPING\r\n'), 3000)
      expect(one).toBe('-ERR max number of clients reached\r\n')
      const during = rssBytes(server.pid as number)
      console.log(`10,000 connections: server RSS ${(before / 2 ** 20).toFixed(0)} MiB -> ${(during / 2 ** 20).toFixed(0)} MiB`)
      expect(during - before).toBeLessThan(400 * 1024 * 1024)
      const info = (await call(['INFO', 'clients'])) as string
      expect(info).toContain('connected_clients:10000\r\n')
    } finally {
      for (const s of idle) s.destroy()
    }
    // Closed connections are forgotten: new clients get in again.
    const deadline = Date.now() + 10_000
    for (;;) {
      const info = (await call(['INFO', 'clients'])) as string
      if (info.includes('connected_clients:1\r\n')) break
      if (Date.now() > deadline) throw new Error(`connections not released: ${info}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const late = await RespClient.connect(server.port)
    expect(plain((await late.call(['PING'])).value)).toBe('PONG')
    await late.close()
  }, 120_000)
})

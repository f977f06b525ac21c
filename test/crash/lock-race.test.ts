// Many processes racing to take over a stale (garbage or dead) LOCK, with the takeover
// window widened by sleeps (see lock-race-child.ts): exactly one may win each round.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { tmpDir } from '../helpers/tmp.js'

const CHILD = fileURLToPath(new URL('./lock-race-child.ts', import.meta.url))
const OPENERS = 20
const PAUSE_MS = 20

interface Opener {
  readonly child: ChildProcess
  next(): Promise<string>
}

function startOpener(): Opener {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(PAUSE_MS)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines: string[] = []
  const waiting: ((line: string) => void)[] = []
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const w = waiting.shift()
    if (w !== undefined) w(line)
    else lines.push(line)
  })
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w(`exited ${code}`)
  })
  return {
    child,
    next: () => {
      const line = lines.shift()
      return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiting.push(resolve))
    },
  }
}

const openers: Opener[] = []
afterAll(async () => {
  for (const o of openers) o.child.stdin?.end()
  await Promise.all(openers.map((o) => (o.child.exitCode !== null ? undefined : new Promise((r) => o.child.once('exit', r)))))
})

describe('stale lock takeover race', () => {
  it(`${OPENERS} processes taking over one stale LOCK: exactly one holds it, every round`, async () => {
    for (let i = 0; i < OPENERS; i++) openers.push(startOpener())
    expect(await Promise.all(openers.map((o) => o.next()))).toEqual(Array(OPENERS).fill('ready'))
    const dead = JSON.stringify({ pid: 2 ** 22 + 1, start: '1', host: hostname() }) // above Linux's pid_max: never alive
    // The stale LOCK of each round, and a breaker left by an opener that died mid-takeover.
    const rounds: { lock: string; breaker?: string }[] = [
      { lock: '' },
      { lock: 'garbage' },
      { lock: '{"pid":' },
      { lock: JSON.stringify({ pid: 1.5, start: '', host: hostname() }) },
      { lock: dead },
      { lock: dead, breaker: dead },
      { lock: 'garbage', breaker: '' },
      { lock: '' },
      { lock: dead },
    ]
    const problems: string[] = []
    for (const [round, { lock: text, breaker }] of rounds.entries()) {
      const dir = tmpDir()
      const lock = join(dir, 'LOCK')
      // Old, so no implementation can excuse them as being written right now.
      const past = new Date(Date.now() - 60_000)
      writeFileSync(lock, text)
      utimesSync(lock, past, past)
      if (breaker !== undefined) {
        writeFileSync(join(dir, 'LOCK.breaking'), breaker)
        utimesSync(join(dir, 'LOCK.breaking'), past, past)
      }
      for (const o of openers) o.child.stdin?.write(`go ${dir}\n`)
      const results = await Promise.all(openers.map((o) => o.next()))
      const winners = results.filter((r) => r.startsWith('opened '))
      const others = results.filter((r) => !r.startsWith('opened '))
      if (winners.length !== 1) problems.push(`round ${round} (${JSON.stringify(text)}): ${winners.length} holders`)
      if (others.some((r) => r !== 'KV_LOCKED')) problems.push(`round ${round}: ${others.filter((r) => r !== 'KV_LOCKED').join(', ')}`)
      if (winners.length === 1) {
        // The one that thinks it holds the lock is the one LOCK names.
        const owner = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }
        if (`opened ${owner.pid}` !== winners[0]) problems.push(`round ${round}: LOCK names ${owner.pid}, ${winners[0]} holds`)
      }
      for (const o of openers) o.child.stdin?.write('release\n')
      expect(await Promise.all(openers.map((o) => o.next()))).toEqual(Array(OPENERS).fill('released'))
    }
    expect(problems).toEqual([])
  }, 240_000)
})

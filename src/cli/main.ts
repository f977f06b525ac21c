#!/usr/bin/env node
// The `kvstore` command: opens a store and runs commands interactively, from a pipe,
// or once. Uses only the public API, like any program would.
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { createSession, type Reply } from '../commands/index.js'
import { StoreError, type ProgressEvent } from '../index.js'
import { parseCliArgs, USAGE, UsageError } from './args.js'
import { runCopy } from './copy.js'
import { formatReply, replyToJson } from './format.js'
import { describeLocation, openLocation, type OpenStore } from './locations.js'
import { runRepl } from './repl.js'
import { runServe } from './serve.js'

const EXIT_OK = 0
const EXIT_COMMAND_FAILED = 1
const EXIT_USAGE = 2
const EXIT_OPEN_FAILED = 3

function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'kvstore-db' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // Try the next location (dist/ when built, src/cli/ when run from source).
    }
  }
  return 'unknown'
}

function progressReporter(): ((e: ProgressEvent) => void) | undefined {
  if (!process.stderr.isTTY) return undefined
  let last = 0
  return (e) => {
    const now = Date.now()
    if (now - last < 100) return
    last = now
    const total = e.total === undefined ? '' : `/${e.total}`
    process.stderr.write(`\r\x1b[K${e.phase}: ${e.done}${total}`)
  }
}

async function main(argv: string[]): Promise<number> {
  // `kvstore copy …` is a program of its own; any other first word is a store option or a command.
  if (argv[0] === 'copy') return runCopy(argv.slice(1))
  if (argv[0] === 'serve') return runServe(argv.slice(1))
  let args
  try {
    args = parseCliArgs(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      // One line for the mistake and one for where the usage is, not the whole help.
      process.stderr.write(`kvstore: ${err.message.split('\n')[0]}\n(kvstore --help shows the usage)\n`)
      return EXIT_USAGE
    }
    throw err
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT_OK
  }
  if (args.version) {
    process.stdout.write(`kvstore ${version()}\n`)
    return EXIT_OK
  }

  const progress = progressReporter()
  const location = args.location
  if (args.defaulted) process.stderr.write(`kvstore: using store directory ${describeLocation(location)}\n`)
  let store: OpenStore
  try {
    store = await openLocation(location, { sync: args.sync, readOnly: args.readOnly, onProgress: progress })
  } catch (err) {
    const why = err instanceof StoreError ? `${err.message} (${err.code})` : String(err)
    process.stderr.write(`${progress ? '\r\x1b[K' : ''}kvstore: cannot open ${describeLocation(location)}: ${why}\n`)
    return EXIT_OPEN_FAILED
  }
  if (progress !== undefined) process.stderr.write('\r\x1b[K')

  const session = createSession(store)
  const print = (reply: Reply): void => {
    process.stdout.write(`${args.json ? JSON.stringify(replyToJson(reply)) : formatReply(reply)}\n`)
  }
  let failed = false
  try {
    if (args.command !== undefined || args.words.length > 0) {
      const reply = args.command !== undefined ? await session.run(args.command) : await session.execute(args.words)
      if (reply !== null) {
        print(reply)
        failed = reply.type === 'error'
      }
    } else if (process.stdin.isTTY) {
      await runRepl(session, args.json, replyToJson)
    } else {
      const rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity })
      for await (const line of rl) {
        const reply = await session.run(line)
        if (reply === null) continue
        print(reply)
        if (reply.type === 'error') failed = true
        if (session.exited) break
      }
      rl.close()
    }
  } finally {
    try {
      await store.close()
    } catch (err) {
      process.stderr.write(`kvstore: closing failed: ${String(err)}\n`)
      failed = true
    }
  }
  return failed ? EXIT_COMMAND_FAILED : EXIT_OK
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`kvstore: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 70
  },
)

// `kvstore copy <from> <to>`: every key of one store into another, through the snapshot
// format every backend reads and writes: `from.snapshot(tmp)`, then `to.load(tmp)`.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { StoreError, type ProgressEvent } from '../index.js'
import { LocationError, locationExists, openLocation, parseLocation, sameLocation, type Location, type OpenStore } from './locations.js'

const EXIT_OK = 0
const EXIT_FAILED = 1
const EXIT_USAGE = 2
const EXIT_OPEN_FAILED = 3

export const COPY_USAGE = `Usage: kvstore copy <from> <to> [--force]

Copies every key of <from> into <to>: values, lists, hashes and expiries
(versions are not kept). <from> is written to a temporary snapshot file, <to>
loads it, and the file is removed. Loading REPLACES the contents of <to>: a <to>
that holds any key is refused unless --force is given, and with --force every
key <to> held before is gone.

<from> and <to> are each one of:
  <path>          a store directory (<to> is created if missing)
  file:<path>     a snapshot-file store (.json files are JSON, others binary)
  etcd://host:port[,host:port...][/namespace]
                  an etcd v3 cluster over http (port defaults to 2379),
                  optionally one namespace (key prefix) in it

Options:
  --force         replace the contents of a non-empty <to>
  -h, --help      show this help

On a terminal the progress is shown on stderr. When done it prints one line:
  copied N keys from <from> to <to> in T ms

Exit status: 0 copied; 1 the copy failed, or was refused (then <to> is
unchanged); 2 usage error; 3 a store could not be opened.`

/** One line, whatever the message held. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}

function why(err: unknown): string {
  if (err instanceof StoreError) return oneLine(`${err.message} (${err.code})`)
  return oneLine(err instanceof Error ? err.message : String(err))
}

/** The progress line on stderr, on a terminal only; every method is a no-op otherwise. */
class Progress {
  readonly #on = process.stderr.isTTY === true
  #phase = ''
  #last = 0
  #shown = false

  /** Start a phase ("reading a…"): shown at once. */
  phase(text: string): void {
    this.#phase = text
    this.#write(text)
  }

  /** A store's progress event within the current phase, at most every 100 ms. */
  event = (e: ProgressEvent): void => {
    const now = Date.now()
    if (now - this.#last < 100) return
    this.#last = now
    this.#write(`${this.#phase} ${e.done}${e.total === undefined ? '' : `/${e.total}`} keys`)
  }

  /** Remove the line. */
  clear(): void {
    if (this.#shown) process.stderr.write('\r\x1b[K')
    this.#shown = false
  }

  #write(text: string): void {
    if (!this.#on) return
    process.stderr.write(`\r\x1b[K${text}`)
    this.#shown = true
  }
}

class CopyFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

async function open(loc: Location, spec: string, progress: Progress): Promise<OpenStore> {
  progress.phase(`opening ${spec}…`)
  try {
    return await openLocation(loc, { onProgress: progress.event })
  } catch (err) {
    throw new CopyFailure(`cannot open ${spec}: ${why(err)}`, EXIT_OPEN_FAILED)
  }
}

/** `kvstore copy` with its arguments (after the word `copy`); resolves to the exit status. */
export async function runCopy(argv: readonly string[]): Promise<number> {
  const usage = (message: string): number => {
    process.stderr.write(`kvstore copy: ${oneLine(message)} (kvstore copy --help shows the usage)\n`)
    return EXIT_USAGE
  }
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    return usage((err as Error).message)
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${COPY_USAGE}\n`)
    return EXIT_OK
  }
  const [fromSpec, toSpec, ...extra] = parsed.positionals
  if (fromSpec === undefined || toSpec === undefined) return usage('needs <from> and <to>')
  if (extra.length > 0) return usage(`takes two stores, <from> and <to>; got also '${extra.join(' ')}'`)
  let from: Location
  let to: Location
  try {
    from = parseLocation(fromSpec)
    to = parseLocation(toSpec)
  } catch (err) {
    if (err instanceof LocationError) return usage(err.message)
    throw err
  }
  if (sameLocation(from, to)) return usage(`<from> and <to> are the same store (${fromSpec})`)

  const started = performance.now()
  const progress = new Progress()
  let source: OpenStore | undefined
  let target: OpenStore | undefined
  let tmp: string | undefined
  let failure: CopyFailure | undefined
  let copied = 0
  try {
    // A missing source would be created empty by opening it: refuse instead.
    if (!locationExists(from)) throw new CopyFailure(`cannot open ${fromSpec}: no ${from.kind === 'file' ? 'file' : 'store directory'} there`, EXIT_OPEN_FAILED)
    source = await open(from, fromSpec, progress)
    target = await open(to, toSpec, progress)
    if (parsed.values.force !== true) {
      const held = await target.count()
      if (held > 0) {
        throw new CopyFailure(`${toSpec} is not empty (${held} keys); copying replaces its contents: give --force to do that`, EXIT_FAILED)
      }
    }
    tmp = await mkdtemp(join(tmpdir(), 'kvstore-copy-'))
    const file = join(tmp, 'copy.kvs')
    progress.phase(`reading ${fromSpec}…`)
    const written = await source.snapshot(file)
    progress.phase(`writing ${written.entries} keys to ${toSpec}…`)
    copied = (await target.load(file)).entries
  } catch (err) {
    failure = err instanceof CopyFailure ? err : new CopyFailure(`copy failed: ${why(err)}`, EXIT_FAILED)
  } finally {
    for (const [store, spec] of [[source, fromSpec], [target, toSpec]] as const) {
      if (store === undefined) continue
      try {
        await store.close()
      } catch (err) {
        failure ??= new CopyFailure(`closing ${spec} failed: ${why(err)}`, EXIT_FAILED)
      }
    }
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
    progress.clear()
  }
  if (failure !== undefined) {
    process.stderr.write(`kvstore copy: ${oneLine(failure.message)}\n`)
    return failure.exitCode
  }
  const ms = Math.round(performance.now() - started)
  process.stdout.write(`copied ${copied} keys from ${fromSpec} to ${toSpec} in ${ms} ms\n`)
  return EXIT_OK
}

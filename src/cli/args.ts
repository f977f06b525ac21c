import { parseArgs } from 'node:util'
import type { SyncPolicy } from '../options.js'

/** Parsed command line. */
export interface CliArgs {
  dir: string | undefined
  file: string | undefined
  sync: SyncPolicy | undefined
  json: boolean
  /** One-shot commands: from `-c` lines and from trailing words. */
  command: string | undefined
  words: string[]
  help: boolean
  version: boolean
}

/** Thrown for usage errors (exit status 2). */
export class UsageError extends Error {}

export const USAGE = `Usage: kvstore [--dir <path> | --file <path>] [options] [command words...]

Opens a kvstore and reads commands (type HELP for the list). With no path it opens
the directory in $KVSTORE_DIR, or ./.kvstore-data.

Options:
  --dir <path>      persistent store directory (WAL + snapshots); also -dir
  --file <path>     snapshot-file mode (seed 004): load on start, SNAPSHOT writes it,
                    written again on exit; .json files are JSON, others binary; also -file
  --sync <policy>   always (default) | interval | never  (directory mode)
  --json            print one JSON value per reply
  -c <command>      run one command line and exit
  -h, --help        show this help
  -v, --version     print the version

Interactive when stdin is a terminal (history, tab completion). Otherwise reads one
command per line and prints one reply per command, with no prompts.

Exit status: 0 ok; 1 a command replied with an error (scripts and one-shot);
2 usage error; 3 the store could not be opened (locked, corrupt, I/O error).`

/** Parse argv (without node and script). The seed's `-file`/`-dir` spellings are accepted. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const normalised = argv.map((a) => (a === '-file' ? '--file' : a === '-dir' ? '--dir' : a === '-sync' ? '--sync' : a === '-json' ? '--json' : a))
  let parsed
  try {
    parsed = parseArgs({
      args: normalised,
      allowPositionals: true,
      strict: true,
      options: {
        dir: { type: 'string' },
        file: { type: 'string' },
        sync: { type: 'string' },
        json: { type: 'boolean', default: false },
        c: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const v = parsed.values
  if (v.dir !== undefined && v.file !== undefined) throw new UsageError('give --dir or --file, not both')
  if (v.sync !== undefined && !['always', 'interval', 'never'].includes(v.sync)) {
    throw new UsageError(`--sync must be always, interval or never (got ${v.sync})`)
  }
  if (v.c !== undefined && parsed.positionals.length > 0) throw new UsageError('give -c or command words, not both')
  return {
    dir: v.dir,
    file: v.file,
    sync: v.sync as SyncPolicy | undefined,
    json: v.json === true,
    command: v.c,
    words: parsed.positionals,
    help: v.help === true,
    version: v.version === true,
  }
}

import { readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { commands, type Reply, type Session } from '../commands/index.js'
import { formatReply } from './format.js'

const HISTORY_SIZE = 1000

function historyPath(): string {
  return process.env.KVSTORE_HISTORY ?? join(homedir(), '.kvstore_history')
}

function loadHistory(path: string): string[] {
  try {
    // File: oldest first. readline wants most recent first.
    return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-HISTORY_SIZE).reverse()
  } catch {
    return []
  }
}

function saveHistory(path: string, history: readonly string[]): void {
  try {
    writeFileSync(path, `${[...history].slice(0, HISTORY_SIZE).reverse().join('\n')}\n`)
  } catch {
    // History is a convenience: an unwritable home directory must not fail the session.
  }
}

/** Complete the command name (first word), case-insensitively, in the case typed. */
export function completeCommand(line: string): [string[], string] {
  if (/\s/.test(line)) return [[], line]
  const upper = line.toUpperCase()
  const lower = line !== '' && line === line.toLowerCase()
  const hits = [...commands.keys()].filter((n) => n.startsWith(upper)).map((n) => (lower ? n.toLowerCase() : n))
  return [hits, line]
}

/**
 * Interactive prompt on a terminal: `> `, one reply per command, history across runs,
 * tab completion of command names. Ends on EXIT/QUIT, Ctrl-D or Ctrl-C; the caller
 * closes the store. Resolves with whether any command replied with an error.
 */
export async function runRepl(session: Session, json: boolean, toJson: (r: Reply) => unknown): Promise<void> {
  const path = historyPath()
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: '> ',
    terminal: true,
    history: loadHistory(path),
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: completeCommand,
  })
  let interrupted = false
  rl.on('SIGINT', () => {
    interrupted = true
    rl.close()
  })
  rl.prompt()
  try {
    for await (const line of rl) {
      const reply = await session.run(line)
      if (reply !== null) process.stdout.write(`${json ? JSON.stringify(toJson(reply)) : formatReply(reply)}\n`)
      if (session.exited) break
      rl.prompt()
    }
  } finally {
    const history = (rl as unknown as { history?: string[] }).history ?? []
    rl.close()
    saveHistory(path, history)
  }
  // Ctrl-D / Ctrl-C leave as politely as EXIT does.
  if (!session.exited) process.stdout.write(interrupted ? '\nGoodbye!\n' : 'Goodbye!\n')
}

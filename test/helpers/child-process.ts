// What the helpers that start services (redis-server.ts, kvstore-server.ts) share: children
// and temporary directories that must not outlive this process, and finding binaries.
import { spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, rmSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const liveChildren = new Set<ChildProcess>()
const liveDirs = new Set<string>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
    for (const d of liveDirs) {
      try {
        rmSync(d, { recursive: true, force: true })
      } catch {
        // best effort
      }
    }
  })
}

/** SIGKILL `child` when this process exits, unless it has exited by then. */
export function trackChild(child: ChildProcess): void {
  hookExit()
  liveChildren.add(child)
  const forget = () => liveChildren.delete(child)
  child.once('exit', forget)
  child.once('error', forget)
}

/** Remove `dir` when this process exits, unless {@link untrackDir} was called. */
export function trackDir(dir: string): void {
  hookExit()
  liveDirs.add(dir)
}

export function untrackDir(dir: string): void {
  liveDirs.delete(dir)
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The path of executable `name` on PATH or in /usr/bin, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin']) {
    if (dir !== '' && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

let deathPrefix: string[] | undefined

/**
 * `setpriv --pdeathsig KILL --` where it works: the kernel then kills the child when this
 * process dies, even by SIGKILL, which the exit hook cannot cover. Empty elsewhere.
 */
export function parentDeathPrefix(): string[] {
  if (deathPrefix === undefined) {
    const setpriv = findExecutable('setpriv')
    const ok = setpriv !== undefined && spawnSync(setpriv, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0
    deathPrefix = ok ? [setpriv, '--pdeathsig', 'KILL', '--'] : []
  }
  return deathPrefix
}

// Shared by the kill -9 harnesses: run a child script that prints `ready`, then one
// number per acknowledged write; SIGKILL it `killAfterMs` after `ready`.
import { spawn } from 'node:child_process'

/** Resolves with the acknowledged numbers; rejects if the child exits on its own. */
export function runUntilKilled(script: string, args: string[], killAfterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const acked: number[] = []
    let buf = ''
    let stderr = ''
    let timer: NodeJS.Timeout | undefined
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line === 'ready') timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
        else acked.push(Number(line))
      }
    })
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`${script} exited on its own (code ${code}): ${stderr}`))
      else resolve(acked)
    })
  })
}

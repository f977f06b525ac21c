// The machine a run happened on, for the results file and the README.
import { cpus, totalmem } from 'node:os'

/** CPU model, cores, memory, Node version, platform and date of this run. */
export interface MachineInfo {
  cpu: string
  cores: number
  totalMemGiB: number
  node: string
  platform: string
  date: string
}

/** Describe this machine and the moment of the run. */
export function machine(): MachineInfo {
  const c = cpus()
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    totalMemGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  }
}

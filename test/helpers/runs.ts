/** fast-check run count: `FC_NUM_RUNS` when set, else `fallback`. */
export function numRuns(fallback: number): number {
  const env = Number(process.env.FC_NUM_RUNS)
  return Number.isSafeInteger(env) && env > 0 ? env : fallback
}

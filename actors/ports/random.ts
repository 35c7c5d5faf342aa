/** Seeded randomness. Machines never call Math.random: they get one of these. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, exclusiveMax). exclusiveMax must be a positive safe integer. */
  int(exclusiveMax: number): number;
  /** An independent generator derived from this one's seed and the label; stable across runs. */
  fork(label: string): Random;
}

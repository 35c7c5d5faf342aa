/**
 * Takes turns between the systems of a benchmark in their latency runs: every system first warms up,
 * then each measures one block of commits while the others wait, round after round, so all of them
 * are measured over the same stretch of time. On this shared 2-CPU machine the speed of the same
 * code drifted by 10-25% between runs minutes apart, which decided a comparison made one system
 * after the other. After the latency runs the systems go on one at a time, in order (throughput and
 * failover runs must not overlap).
 */
export class LatencyTurns {
  /** Systems still measuring, in turn order. */
  private readonly measuring: number[];
  private readonly warmed = new Set<number>();
  private readonly finished = new Set<number>();
  /** Position in `measuring` of the system whose turn it is. */
  private next = 0;
  private waiting: Array<() => void> = [];

  constructor(private readonly systems: number) {
    this.measuring = Array.from({ length: systems }, (_, index) => index);
  }

  /** Runs `count` commits of system `index` in `blocks` blocks, each in its turn; `block` measures one. */
  async measure(index: number, count: number, blocks: number, block: (commits: number) => Promise<void>): Promise<void> {
    this.warmed.add(index);
    this.wake();
    await this.until(() => this.measuring.every((system) => this.warmed.has(system) || this.finished.has(system)));
    try {
      for (let done = 0, round = 0; done < count; round++) {
        const commits = Math.min(count - done, Math.ceil(count / blocks));
        await this.until(() => this.measuring[this.next % this.measuring.length] === index);
        await block(commits);
        done += commits;
        this.next = (this.measuring.indexOf(index) + 1) % this.measuring.length;
        this.wake();
      }
    } finally {
      this.leave(index);
    }
  }

  /** Waits until every system before `index` has finished (its `finish` was called). */
  async after(index: number): Promise<void> {
    await this.until(() => Array.from({ length: index }, (_, system) => system).every((system) => this.finished.has(system)));
  }

  /** System `index` is done, or failed: nothing waits for it any more. */
  finish(index: number): void {
    this.finished.add(index);
    this.leave(index);
  }

  private leave(index: number): void {
    const at = this.measuring.indexOf(index);
    if (at >= 0) {
      this.measuring.splice(at, 1);
      // Whoever was next stays next.
      if (at < this.next) this.next--;
      this.next = this.measuring.length === 0 ? 0 : this.next % this.measuring.length;
    }
    this.wake();
  }

  private wake(): void {
    for (const resume of this.waiting.splice(0)) resume();
  }

  private async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resume) => this.waiting.push(resume));
  }
}

/**
 * diffusers' step-index bookkeeping for the schedulers that keep one (`_step_index`, `_begin_index`): the first
 * step() finds its place from the timestep (or from set_begin_index, for img2img), later steps just count.
 */
export class StepIndex {
  private begin: number | null = null;
  private current: number | null = null;

  /**
   * @param timesteps the schedule the timesteps are looked up in
   * @param missingIsLast DPM-Solver, UniPC and DEIS fall back to the last index for an unknown timestep; LCM and
   *   the flow scheduler raise
   */
  constructor(
    private readonly timesteps: readonly number[],
    private readonly missingIsLast: boolean,
  ) {}

  setBegin(index: number): void {
    this.begin = index;
  }

  /** index_for_timestep: a repeated timestep resolves to its second occurrence, so img2img never skips a step. */
  indexFor(t: number): number {
    let first = -1;
    for (let i = 0; i < this.timesteps.length; i++) {
      if (this.timesteps[i] !== t) continue;
      if (first >= 0) return i;
      first = i;
    }
    if (first >= 0) return first;
    if (this.missingIsLast) return this.timesteps.length - 1;
    throw new Error(`timestep ${t} is not in the schedule`);
  }

  /** The index of the step being taken (initialising it on the first call); call advance() after the step. */
  stepIndex(t: number): number {
    if (this.current === null) {
      this.current = this.begin ?? this.indexFor(t);
      // A repeated first timestep (Karras sigmas on a schedule with a huge sigma_max, e.g. squaredcos_cap_v2 or zero
      // SNR, round several steps to 999) makes diffusers start at the second step, so a full run steps past the end
      // and diffusers 0.30.3 fails at the last step (IndexError; UniPC: AssertionError). Refuse before any work.
      if (this.begin === null && this.current > 0 && this.timesteps[0] === t) throw repeatedStart(t);
    }
    if (this.current >= this.timesteps.length) throw repeatedStart(t);
    return this.current;
  }

  advance(): void {
    if (this.current === null) throw new Error('advance() before stepIndex()');
    this.current++;
  }

  /** The index add_noise / scale_noise uses: by timestep without a begin index, else the current or begin index. */
  noiseIndex(t: number): number {
    if (this.begin === null) return this.indexFor(t);
    return this.current ?? this.begin;
  }

  /** The current index, or null before the first step. */
  get index(): number | null {
    return this.current;
  }
}

function repeatedStart(t: number): Error {
  return new Error(
    `this schedule repeats its first timestep (${t}), so diffusers 0.30.3 starts it at the second step and runs past ` +
      'its end (it fails there too): use the default schedule with this model',
  );
}

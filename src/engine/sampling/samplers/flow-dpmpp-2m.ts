/**
 * DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095) on the shifted rectified-flow sigmas, as Stability's SD3.5
 * reference runs it (`sd3_impls.sample_dpmpp_2m`, k-diffusion's sampler): the model's velocity v becomes the
 * denoised estimate x - sigma v, and the multistep update treats sigma as a k-diffusion noise level (t = -log sigma),
 * first order on the first step and onto sigma = 0. Schedule, timesteps and img2img noising are those of
 * FlowMatchEulerDiscreteScheduler (equal to sd3.5's get_sigmas to 1.2e-7).
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import { FlowMatchEulerDiscreteScheduler } from './flow-match-euler.js';
import { OutputHistory } from './multistep-common.js';

export { flowMatchEulerDefaults as flowDpmpp2mDefaults } from './flow-match-euler.js';

export class FlowDpmpp2mScheduler extends FlowMatchEulerDiscreteScheduler {
  /** The denoised estimates of the last two steps (k-diffusion's denoised and old_denoised). */
  private readonly denoised = new OutputHistory(2);

  constructor(config: Partial<SchedulerConfig>, numInferenceSteps: number) {
    super(config, numInferenceSteps);
  }

  override step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.index.stepIndex(t);
    const sigma = this.sigmas[i]!;
    const next = this.sigmas[i + 1]!;
    const current = this.denoised.next(sample.length);
    this.lc.reset().add(1, sample).add(-sigma, modelOutput).into(current);
    this.denoised.commit();
    const old = this.denoised.back(2);

    // x_next = (sigma_next / sigma) x - expm1(-h) D, h = log(sigma / sigma_next), D the (extrapolated) denoised
    const h = Math.log(sigma) - Math.log(next);
    const towardsDenoised = -Math.expm1(-h);
    const lc = this.lc.reset().add(next / sigma, sample);
    if (old === null || next === 0) {
      lc.add(towardsDenoised, current);
    } else {
      const r = (Math.log(this.sigmas[i - 1]!) - Math.log(sigma)) / h;
      lc.add(towardsDenoised * (1 + 1 / (2 * r)), current).add(-towardsDenoised / (2 * r), old);
    }
    const out = lc.into(this.outputs.next(sample.length));
    this.index.advance();
    return out;
  }
}

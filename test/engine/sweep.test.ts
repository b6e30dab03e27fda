/**
 * Settings the public fixtures do not cover (samplers and schedules, 1/3/7 steps, non-square sizes, batch 3, long
 * prompts, empty negatives, strengths, noise levels) against diffusers 0.30.3's own pipelines on the tiny models
 * (test/fixtures/models/sweep.cases.json, scripts/fixtures/gen_sweep.py), through the `sdbot generate` path.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { parseRequest, type SamplerName, type ScheduleName } from '../../src/queue/job.js';
import { FIXTURE_MODELS, caseRequest, loadCases, runCase } from '../helpers/fixture-cases.js';

const cases = loadCases('sweep');
const models = [...new Set(cases.map((c) => c.model))];

describe('sweep: uncovered settings reproduce diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    for (const id of models) await engine.loadModel({ id, dir: join(FIXTURE_MODELS, id) });
  });
  afterAll(() => engine.close());

  for (const c of cases) {
    it(c.id, async () => {
      // The case names the engine's sampler and schedule itself (null: the folder's scheduler, which caseRequest picks).
      const sampler = c['engine_sampler'] as SamplerName | null;
      const base = caseRequest({ ...c, sampler: null });
      const request = parseRequest(sampler === null ? base : { ...base, sampler, schedule: c['engine_schedule'] as ScheduleName });
      await runCase(engine, c, request);
    });
  }
});

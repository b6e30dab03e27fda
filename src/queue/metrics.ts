/**
 * prom-client metrics for the two sides of the queue. Each side gets its own Registry (no global state), so a
 * process that is both bot and worker — or a test that starts several — exposes each metric once.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const TIME_BUCKETS = [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export type DepthProbe = () => Promise<Record<string, number>>;

function depthGauge(registry: Registry, probe: { current: DepthProbe | null }): Gauge<'model'> {
  return new Gauge({
    name: 'sdbot_queue_depth',
    help: 'Jobs waiting per model queue (waiting, prioritized and delayed for retry)',
    labelNames: ['model'],
    registers: [registry],
    async collect() {
      if (!probe.current) return;
      this.reset();
      for (const [model, n] of Object.entries(await probe.current())) this.set({ model }, n);
    },
  });
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly probe: { current: DepthProbe | null } = { current: null };
  readonly depth = depthGauge(this.registry, this.probe);
  readonly waitSeconds = new Histogram({
    name: 'sdbot_job_wait_seconds',
    help: 'Time from enqueue to the start of the run that finished the job',
    labelNames: ['model'],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly runSeconds = new Histogram({
    name: 'sdbot_job_run_seconds',
    help: 'Engine run time per job',
    labelNames: ['model', 'outcome'],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly stepsPerSecond = new Gauge({
    name: 'sdbot_steps_per_second',
    help: 'Denoising steps per second of the last job',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: 'sdbot_jobs_total',
    help: 'Jobs finished by this worker, by outcome',
    labelNames: ['model', 'outcome'],
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'sdbot_job_failures_total',
    help: 'Failed runs by reason (bad_request, engine_error, timeout, engine_crash); retried runs count too',
    labelNames: ['model', 'reason'],
    registers: [this.registry],
  });
  readonly busy = new Gauge({ name: 'sdbot_worker_busy', help: '1 while a job runs', registers: [this.registry] });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  setDepthProbe(p: DepthProbe): void {
    this.probe.current = p;
  }
}

export class ClientMetrics {
  readonly registry = new Registry();
  private readonly probe: { current: DepthProbe | null } = { current: null };
  readonly depth = depthGauge(this.registry, this.probe);
  readonly enqueued = new Counter({
    name: 'sdbot_enqueued_total',
    help: 'Jobs enqueued by this process',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'sdbot_enqueue_rejected_total',
    help: 'Enqueues refused, by reason (user_cap, model_not_loaded)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'sdbot_job_end_to_end_seconds',
    help: 'Enqueue to terminal update, for jobs this process enqueued',
    labelNames: ['outcome'],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'sdbot_job_failures_total',
    help: 'Failed jobs seen by this process, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  constructor(defaultMetrics = false) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  setDepthProbe(p: DepthProbe): void {
    this.probe.current = p;
  }
}

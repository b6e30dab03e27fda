/** pino loggers for the queue; every line about a job carries its `jobId` (child loggers). */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level });
}

/** For tests and benchmarks: a logger that writes nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });

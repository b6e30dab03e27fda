/**
 * deploy/: nothing here is run, but the files must stay true to the code: the compose file parses as YAML (with
 * whatever YAML parser this machine already has) and has its services, GPU reservation and volumes; the example
 * env file documents every setting the code reads; the Dockerfiles copy paths that exist.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');

type Yaml = Record<string, unknown>;

/** A JS YAML package if one is installed, else Python's PyYAML, else null. */
async function yamlParser(): Promise<((text: string) => Yaml) | null> {
  for (const name of ['yaml', 'js-yaml']) {
    try {
      const mod = (await import(name)) as { parse?: (t: string) => Yaml; load?: (t: string) => Yaml };
      const parse = mod.parse ?? mod.load;
      if (parse) return parse;
    } catch {
      // not installed: try the next
    }
  }
  const probe = spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' });
  if (probe.status !== 0) return null;
  return (text) => {
    const r = spawnSync('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: text, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as Yaml;
  };
}

const parser = await yamlParser();

describe('deploy files', () => {
  it.skipIf(!parser)(`docker-compose.yml parses and wires Redis, bot and a GPU engine${parser ? '' : ' (skipped: no YAML parser installed)'}`, () => {
    const doc = parser!(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { command?: string[]; volumes?: string[]; environment?: Record<string, string>; deploy?: { resources: { reservations: { devices: { capabilities: string[] }[] } } } }>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(doc.services)).toEqual(expect.arrayContaining(['redis', 'bot', 'engine']));
    expect(doc.services.redis?.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(doc.services.redis?.volumes?.[0]).toMatch(/^redis-data:/);
    expect(doc.services.engine?.deploy?.resources.reservations.devices[0]?.capabilities).toContain('gpu');
    expect(doc.services.engine?.volumes).toContain('models:/models');
    expect(doc.services.bot?.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(Object.keys(doc.volumes)).toEqual(expect.arrayContaining(['models', 'redis-data']));
    const prom = parser!(readFileSync(join(DEPLOY, 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] };
    expect(prom.scrape_configs[0]?.job_name).toBe('sdbot-engine');
  });

  it('the example env file documents every environment variable the code reads', () => {
    const documented = new Set([...readFileSync(join(DEPLOY, 'sdbot.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const used = new Set<string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) used.add(m[1] ?? '');
      }
    };
    walk(join(ROOT, 'src'));
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
  });

  it('the Dockerfiles copy paths that exist', () => {
    for (const file of ['Dockerfile.bot', 'Dockerfile.engine']) {
      const copies = [...readFileSync(join(DEPLOY, file), 'utf8').matchAll(/^COPY\s+(.+)\s+\S+$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
      expect(copies.length).toBeGreaterThan(2);
      for (const p of copies) expect(existsSync(join(ROOT, p)), `${file}: ${p}`).toBe(true);
    }
  });
});

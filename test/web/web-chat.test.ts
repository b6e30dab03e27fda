/**
 * The local web chat in a real browser: chromium → the page → websocket → bot core → real Redis (BullMQ) → a real
 * engine worker on the tiny ONNX model → progress with previews, the grid with its buttons → V1 → a variation;
 * completion hints from the options table, a picture plus mask for inpaint, a control image for ControlNet (checked
 * against the diffusers reference), an admin command.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/queue/logger.js';
import { startWebChat, type WebChat } from '../../src/bot/web/start.js';
import { solidPng } from '../bot/memory-queue.js';
import { FIXTURE_MODELS as MODELS } from '../helpers/fixture-cases.js';
import { startTinyEngineStack, type TinyEngineStack } from '../helpers/tiny-engine-stack.js';
import { findChromium, launchChromium, SKIP_REASON, type TestBrowser } from './browser.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');
const chromiumPath = findChromium();
/** The suite shares a 2-core machine: give the page time. */
const POLL = { timeout: 20_000 };

describe.skipIf(!chromiumPath)(`web chat in chromium${chromiumPath ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  let stack: TinyEngineStack;
  let chat: WebChat;
  let browser: TestBrowser;
  let page: Page;
  const frames: string[] = [];

  beforeAll(async () => {
    stack = await startTinyEngineStack({ models: ['tiny-sd15', 'tiny-sd15-inpaint', 'tiny-sd15-controlnet'] });
    chat = await startWebChat({
      port: 0,
      notice: 'Demo model: tiny-sd15 is a smoke-test model; its pictures are noise.',
      coreOptions: { queue: stack.client, progressIntervalMs: 50, logger: silentLogger, models: stack.catalog },
    });
    browser = await launchChromium(chromiumPath ?? '');
    page = await browser.context.newPage();
    page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
    await page.goto(chat.url);
    await page.locator('#status.online').waitFor({ timeout: 15_000 });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await chat?.stop();
    await stack?.close();
  });

  async function lastBot(kind: string): Promise<ReturnType<Page['locator']>> {
    const loc = page.locator(`.msg.bot[data-kind="${kind}"][data-final="true"]`).last();
    await loc.waitFor({ timeout: 60_000 });
    return loc;
  }

  it('offers completion hints from the options table', async () => {
    await page.locator('#input').click();
    await page.keyboard.type('/ima');
    await expect.poll(() => page.locator('#hints .hint').allTextContents(), POLL).toEqual([expect.stringContaining('/imagine')]);
    await page.keyboard.press('Tab');
    await page.keyboard.type('a cat --sam');
    await expect.poll(() => page.locator('#hints').textContent(), POLL).toContain('--sampler');
    await page.keyboard.press('Tab');
    await page.keyboard.type('dpmpp_2');
    const values = await page.locator('#hints .hint .k').allTextContents();
    expect(values).toEqual(expect.arrayContaining(['dpmpp_2m', 'dpmpp_2m_sde']));
    expect(values.every((v) => v.startsWith('dpmpp_2'))).toBe(true);
    await page.locator('#input').fill('');
    expect(await page.locator('#notice').textContent()).toContain('noise');
  });

  it('/imagine → queue position and progress with previews → the grid with U/V buttons → V1 → a variation', async () => {
    frames.length = 0;
    await page.locator('#input').fill('/imagine a photo of a cat --seed 42 --steps 12 --sampler euler_a');
    await page.keyboard.press('Enter');
    const result = await lastBot('result');
    const events = frames.map((f) => JSON.parse(f) as { type: string; message?: { kind?: string; images: unknown[]; lines: string[] } });
    const kinds = events.filter((e) => e.type === 'message').map((e) => e.message?.kind);
    expect(kinds).toContain('progress');
    expect(events.some((e) => e.message?.kind === 'progress' && e.message.images.length > 0)).toBe(true);
    expect(events.some((e) => e.message?.lines.some((l) => /in line|Starting/.test(l)))).toBe(true);
    expect(await result.textContent()).toContain('seed 42');
    const labels = await result.locator('button').evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label')));
    expect(labels).toEqual(expect.arrayContaining(['U1', 'U2', 'U3', 'U4', 'V1', 'V2', 'V3', 'V4', '🔄', 'Delete']));
    const grid = result.locator('.images img').first();
    await expect.poll(() => grid.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), POLL).toBe(128);

    await result.locator('button[aria-label="V1"]').click();
    await expect.poll(() => page.locator('.msg.bot[data-kind="result"][data-final="true"]').count(), { timeout: 60_000 }).toBe(2);
    const variation = page.locator('.msg.bot[data-kind="result"]').last();
    expect(await variation.textContent()).toContain('img2img');
    // A variation keeps the original's image count, so it is a grid with its own buttons again.
    expect(await variation.locator('button[aria-label="V1"]').count()).toBe(1);
    await expect.poll(() => variation.locator('.images img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), POLL).toBe(128);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-chat.png'), fullPage: false });
  }, 120_000);

  it('a picture and a mask dropped on the input box make an inpaint job', async () => {
    const before = await page.locator('.msg.bot[data-kind="result"]').count();
    await page.locator('#file').setInputFiles([
      { name: 'pic.png', mimeType: 'image/png', buffer: Buffer.from(await solidPng(64, 64, 90)) },
      { name: 'mask.png', mimeType: 'image/png', buffer: Buffer.from(await solidPng(64, 64, 255)) },
    ]);
    await expect.poll(() => page.locator('#pending .chip').allTextContents(), POLL).toEqual([expect.stringContaining('image: pic.png'), expect.stringContaining('mask: mask.png')]);
    await page.locator('#input').fill('a red door --steps 3');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.bot[data-kind="result"][data-final="true"]').count(), { timeout: 60_000 }).toBe(before + 1);
    expect(await page.locator('.msg.bot[data-kind="result"]').last().textContent()).toContain('inpaint');
  }, 90_000);

  it('a picture dropped on a result remixes that result, the dropped one being the inpaint mask', async () => {
    const before = await page.locator('.msg.bot[data-kind="result"][data-final="true"]').count();
    const target = page.locator('.msg.bot[data-kind="result"]').first();
    const mask = Buffer.from(await solidPng(128, 128, 255)).toString('base64');
    const dataTransfer = await page.evaluateHandle((b64) => {
      // Runs in the page: DOM classes the project's Node type library does not declare.
      const dom = globalThis as unknown as { DataTransfer: new () => { items: { add(f: unknown): void } }; File: new (parts: unknown[], name: string, o: object) => unknown };
      const d = new dom.DataTransfer();
      d.items.add(new dom.File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'mask.png', { type: 'image/png' }));
      return d;
    }, mask);
    await target.dispatchEvent('drop', { dataTransfer });
    await expect.poll(() => page.locator('#pending .chip').allTextContents(), POLL).toEqual([expect.stringContaining('remixing'), expect.stringContaining('mask: mask.png')]);
    expect(await page.locator('#input').inputValue()).toBe('a photo of a cat');
    await page.locator('#input').fill('a photo of a dog --steps 3');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.bot[data-kind="result"][data-final="true"]').count(), { timeout: 60_000 }).toBe(before + 1);
    const remix = page.locator('.msg.bot[data-kind="result"]').last();
    expect(await remix.textContent()).toContain('inpaint');
    expect(await remix.locator('.replyref').textContent()).toContain('a photo of a dog');
  }, 90_000);

  it('a picture in the control-image slot steers a ControlNet job: the result is the diffusers reference for that edge map', async () => {
    const before = await page.locator('.msg.bot[data-kind="result"][data-final="true"]').count();
    const inputsBefore = stack.engineInputs.length;
    await page.locator('#control-file').setInputFiles(join(MODELS, 'edges_64.png'));
    await expect.poll(() => page.locator('#pending .chip').allTextContents(), POLL).toEqual([expect.stringContaining('control: edges_64.png')]);
    // The fixture case cn_euler_a (tiny-sd15-controlnet.cases.json); its first image is seed 42's.
    await page.locator('#input').fill('/imagine a photo of a cat --seed 42 --steps 10 --sampler euler_a --cfg 7.5 --count 1 --control none');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.bot[data-kind="result"][data-final="true"]').count(), { timeout: 60_000 }).toBe(before + 1);
    const result = page.locator('.msg.bot[data-kind="result"]').last();
    expect(await result.textContent()).toContain('controlnet');
    const url = await result.locator('.images img').first().getAttribute('src');
    const got = Buffer.from(await (await fetch(new URL(url ?? '', chat.url))).arrayBuffer());
    expect(await worstPixelDiff(got, join(MODELS, 'cn_euler_a_0.png'))).toBeLessThanOrEqual(2);
    // The tiny ControlNet moves pixels little, so check the engine was given exactly that edge map, too.
    const fed = stack.engineInputs.slice(inputsBefore);
    expect(fed).toHaveLength(1);
    expect(await worstPixelDiff(Buffer.from(fed[0]!), join(MODELS, 'edges_64.png'))).toBe(0);
  }, 90_000);

  it('admin commands answer privately; bad flags get a readable error', async () => {
    await page.locator('#input').fill('/sd-admin models');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.bot[data-kind="info"]').last().textContent(), POLL).toContain('tiny-sd15-inpaint');
    expect(await page.locator('.msg.bot[data-kind="info"]').last().textContent()).toContain('only you can see this');
    await page.locator('#input').fill('/imagine a cat --seeed 4');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.bot[data-kind="error"]').last().textContent(), POLL).toContain('Did you mean `--seed`?'.replace(/`/g, ''));
  }, 30_000);
});

/** Largest per-channel difference (0–255) between two pictures of the same size, compared as RGB. */
async function worstPixelDiff(a: Buffer | string, b: Buffer | string): Promise<number> {
  const [x, y] = await Promise.all([a, b].map((p) => sharp(p).removeAlpha().toColourspace('srgb').raw().toBuffer()));
  if (!x || !y || x.length !== y.length) return Infinity;
  let worst = 0;
  for (let k = 0; k < x.length; k++) worst = Math.max(worst, Math.abs((x[k] ?? 0) - (y[k] ?? 0)));
  return worst;
}

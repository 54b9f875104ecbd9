/**
 * The extension in a real JupyterLab and Notebook 7, against energyd on emulated RAPL.
 *
 * The emulated host draws HOST_W = 25 W (package 20 W + dram 5 W): its driver adds
 * HOST_W × the wall-clock time since its last step every 10 ms, so over any interval it has
 * written HOST_W × the interval within one step plus its thread's scheduling delay at each end.
 * Bounds used below, per end of an interval: END_S = 50 ms (the driver's 10 ms step, energyd's
 * 50 ms sampling and a late emulator thread on a busy 2-core machine), plus 1 %:
 *
 * - a cell's energy (energyd over the cell's own interval): HOST_W × duration within
 *   1 % + 2 × END_S × HOST_W: 2.5 J, 11 % of the 1 s cell; the benchmark's mean run (0.3 s,
 *   7.5 J) gets the same 2.5 J, a third of it, because each of its runs is such a short
 *   interval with two ends of its own;
 * - the top bar: it shows the energy since the server started up to the `to` of energyd's
 *   answer (its `data-energy-to`), so between two updates its growth must be HOST_W times the
 *   difference of those times, within 1 % + 2 × END_S × HOST_W;
 * - the power the top bar shows (energyd's mean over at least the last second, from the
 *   stream): HOST_W within 1 % + 2 × END_S / REFRESH_S (11 %: two sample times over one second).
 */
import { expect, Locator, Page, test } from '@playwright/test';

import { fakeStream, openNotebookAt, saveNotebook } from '../helpers';
import { TOKEN } from '../playwright.config';

const HOST_W = 25;
const END_S = 0.05; // per interval end: driver step, energyd sample, late emulator thread
const REFRESH_S = 1.0; // the window of energyd's live watts (at least one second)
const ART = 'artifacts';

/** |joules − HOST_W × seconds| within 1 % plus `endS` of HOST_W at each end. */
function nearHost(joules: number, seconds: number, endS: number = END_S): void {
  expect(Math.abs(joules - HOST_W * seconds)).toBeLessThanOrEqual(
    0.01 * HOST_W * seconds + 2 * HOST_W * endS
  );
}

type Kind = 'lab' | 'notebook7';

function notebookUrl(kind: Kind): string {
  return kind === 'lab'
    ? `/lab/tree/lab.ipynb?token=${TOKEN}&reset`
    : `/notebooks/nb7.ipynb?token=${TOKEN}`;
}

async function numberAttr(l: Locator, name: string): Promise<number> {
  const v = await l.getAttribute(name);
  return v === null || v === '' ? NaN : Number(v);
}

async function openNotebook(page: Page, kind: Kind): Promise<void> {
  await openNotebookAt(page, notebookUrl(kind));
}

async function checkTopBar(page: Page, kind: Kind): Promise<void> {
  const bar = page.locator('#jp-energy-topbar');
  await expect(bar).toHaveAttribute('data-state', 'measured', { timeout: 30_000 });
  await expect(bar).toHaveText(/⚡ \d+(\.\d)? W · \d+(\.\d)? k?J/);
  await expect(bar.locator('.jp-EnergyTopBar-estimated')).toHaveCount(0);
  const w = await numberAttr(bar, 'data-watts');
  // energyd's mean power over at least the last second (see the bounds above).
  nearHost(w * REFRESH_S, REFRESH_S);
  // The energy since the server started, read twice (it is asked every 5 s): its growth is
  // HOST_W times the difference of the answers' ends.
  const first = [await numberAttr(bar, 'data-joules'), await numberAttr(bar, 'data-energy-to')];
  await expect
    .poll(async () => (await numberAttr(bar, 'data-energy-to')) - first[1], { timeout: 15_000 })
    .toBeGreaterThan(4);
  const second = [await numberAttr(bar, 'data-joules'), await numberAttr(bar, 'data-energy-to')];
  nearHost(second[0] - first[0], second[1] - first[1]);
  await bar.screenshot({ path: `${ART}/${kind}-topbar.png` });
}

async function checkPanel(page: Page, kind: Kind): Promise<void> {
  await page.locator('#jp-energy-topbar').click();
  const panel = page.locator('#jp-energy-panel');
  await expect(panel).toBeVisible();
  await expect(panel.locator('.jp-EnergyPanel-sentence')).toHaveText(
    /Your computer used [\d.]+ (k|M)?J since you started the Jupyter server .*— (enough to|about (\d+% of|[\d.]+ times) what it takes to) .+\./
  );
  await expect(panel.locator('.jp-EnergyPanel-quality')).toContainText('Measured');
  await expect(panel.locator('.jp-EnergyPanel-quality')).toContainText('rapl:package-0');
  const canvas = panel.locator('.jp-EnergyPanel-live canvas');
  await expect(canvas).toBeVisible();
  // Drawn: the host series (25 W) leaves coloured pixels on the canvas.
  await expect
    .poll(
      () =>
        canvas.evaluate((c: HTMLCanvasElement) => {
          const ctx = c.getContext('2d')!;
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) {
            if (d[i] > 0) {
              n++;
            }
          }
          return n;
        }),
      { timeout: 15_000 }
    )
    .toBeGreaterThan(500);
  // Unit switch: Wh everywhere, then back to J.
  await panel.locator('.jp-EnergyPanel-unitButton[data-unit="Wh"]').click();
  await expect(panel.locator('.jp-EnergyPanel-sentence')).toContainText(' Wh since');
  await expect(page.locator('#jp-energy-topbar')).toContainText('Wh');
  await panel.screenshot({ path: `${ART}/${kind}-panel-wh.png` });
  await panel.locator('.jp-EnergyPanel-unitButton[data-unit="J"]').click();
  await expect(panel.locator('.jp-EnergyPanel-sentence')).toContainText('J since');
  // Emissions since the server started, estimated with the carbon factor energyd names.
  await expect(panel.locator('.jp-EnergyPanel-carbon')).toHaveText(
    /≈ [\d.]+ (m|k)?g CO₂e \(estimated\) at \d+ g\/kWh \(\w+/
  );
  // The long-term chart from energyd's record (since the server started: 1 s steps here).
  await expect(panel.locator('.jp-EnergyPanel-longNote')).toContainText(/Energy per [\d.]+ s step, host total/);
  await expect(panel.locator('.jp-EnergyPanel-longterm canvas')).toBeVisible();
  // This kernel's attributed share (energyd attributes by CPU time; refreshed every 5 s).
  await expect(panel.locator('.jp-EnergyPanel-kernel')).toHaveText(
    /this kernel \(pid \d+\) used [\d.]+ (m|k)?J, [\d.]+% of the machine’s [\d.]+ (k|M)?J \(estimated by \S+\)/,
    { timeout: 30_000 }
  );
  await page.screenshot({ path: `${ART}/${kind}-panel.png` });
}

async function runCellAndCheckEnergy(page: Page, kind: Kind): Promise<void> {
  const cell = page.locator('.jp-Notebook .jp-Cell').nth(0);
  await cell.locator('.jp-InputArea-editor').click();
  await page.keyboard.press('Control+Enter');
  const line = cell.locator('.jp-EnergyCellLine');
  await expect(line).toBeVisible({ timeout: 60_000 });
  await expect(line).toHaveText(/⚡ [\d.]+ J in [\d.]+ s · [\d.]+ W mean · machine, measured \(rapl:package-0 \+ rapl:dram-0\)/);
  await expect(line).toContainText(/· ≈ [\d.]+ (m|k)?g CO₂e \(estimated\)/);
  // The kernel's attributed part of it: a busy loop in the kernel gets a visible share.
  await expect(line).toContainText(/· kernel [\d.]+ (m|k)?J \(\d+%\), estimated by \S+/);
  const joules = await numberAttr(line, 'data-joules');
  const duration = await numberAttr(line, 'data-duration-s');
  // The loop runs 1.0 s; the kernel's busy→idle interval adds a few ms of message handling.
  expect(duration).toBeGreaterThan(0.99);
  expect(duration).toBeLessThan(2.0);
  expect(joules).toBeGreaterThan(0);
  nearHost(joules, duration);
  await cell.screenshot({ path: `${ART}/${kind}-cell-energy.png` });
}

async function benchmark(page: Page, kind: Kind): Promise<void> {
  const cell = page.locator('.jp-Notebook .jp-Cell').nth(1);
  await cell.locator('.jp-InputPrompt').click();
  await cell.locator('.jp-InputArea-editor').click({ button: 'right' });
  // The statistics are energyd's, from one `runs` query over the five runs with the kernel's scope.
  const runsAnswer = page.waitForResponse(r => r.url().includes('/api/energy/v1/runs'), { timeout: 90_000 });
  await page.locator('.lm-Menu-item', { hasText: 'Benchmark the Selected Cell' }).click();
  const result = page.locator('.jp-EnergyPanel-benchResult');
  await expect(result).toBeVisible({ timeout: 90_000 });
  const response = await runsAnswer;
  const query = new URL(response.url()).searchParams;
  expect(query.get('runs')!.split(',')).toHaveLength(5);
  expect(query.get('scope')).toMatch(/^kernel:kernel:[0-9a-f-]+$/);
  const runs = await response.json();
  expect(runs.stats.host.joules.n).toBe(5);
  expect(await numberAttr(result, 'data-host-mean-j')).toBe(runs.stats.host.joules.mean);
  expect(await numberAttr(result, 'data-host-sd-j')).toBe(runs.stats.host.joules.sd);
  expect(await numberAttr(result, 'data-time-mean-s')).toBe(runs.stats.seconds.mean);
  await expect(result.locator('.jp-EnergyPanel-benchKernel')).toContainText(/kernel energy [\d.]+ (m|k)?J ± [\d.]+ (m|k)?J \(estimated, attributed\), 95 % interval/);
  // Each run as energyd answered it: energy (1 decimal or 2 digits) and mean power.
  const cells = await result.locator('.jp-EnergyPanel-benchRuns tr').evaluateAll(rows =>
    rows.slice(1).map(r => Array.from(r.querySelectorAll('td')).map(td => td.textContent ?? '')));
  cells.forEach((row, i) => {
    const shownJ = Number(row[2].match(/^([\d.]+) J$/)![1]);
    expect(Math.abs(shownJ - runs.runs[i].host.joules)).toBeLessThanOrEqual(0.05 + 1e-9);
    const shownW = Number(row[3].match(/^([\d.]+) W$/)![1]);
    expect(Math.abs(shownW - runs.runs[i].host.watts)).toBeLessThanOrEqual(0.05 + 1e-9);
  });
  await expect(result.locator('.jp-EnergyPanel-benchHead')).toContainText('5 runs after one warm-up');
  await expect(result.locator('.jp-EnergyPanel-benchTime')).toHaveText(/time [\d.]+ (ms|s) ± [\d.]+ (ms|s)/);
  await expect(result.locator('.jp-EnergyPanel-benchEnergy')).toHaveText(/machine energy [\d.]+ J ± [\d.]+ J \(measured/);
  await expect(result.locator('.jp-EnergyPanel-benchRuns tr')).toHaveCount(6); // header + 5 runs
  const meanJ = await numberAttr(result, 'data-host-mean-j');
  const meanS = await numberAttr(result, 'data-time-mean-s');
  expect(meanS).toBeGreaterThan(0.29);
  expect(meanS).toBeLessThan(1.5);
  nearHost(meanJ, meanS);
  await page.locator('.jp-EnergyPanel-benchmark').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${ART}/${kind}-benchmark.png` });
}

async function metadataKept(page: Page, kind: Kind): Promise<void> {
  // Saved with the notebook: the first cell's energy record is in the file.
  const name = kind === 'lab' ? 'lab.ipynb' : 'nb7.ipynb';
  const read = await saveNotebook(page, name);
  await expect
    .poll(async () => (await read())?.cells?.[0]?.metadata?.energy?.host_joules ?? null, { timeout: 15_000 })
    .toBeGreaterThan(0);
  const r = await page.request.get(`/api/contents/${name}?content=1&token=${TOKEN}`);
  expect(r.ok()).toBe(true);
  const record = (await r.json()).content.cells[0].metadata.energy;
  expect(record.version).toBe(1);
  expect(record.measured).toBe(true);
  expect(record.coverage).toEqual(['rapl:package-0', 'rapl:dram-0']);
  nearHost(record.host_joules, record.duration_s);
  expect(record.kernel_joules).toBeGreaterThan(0);
  expect(record.kernel_joules).toBeLessThanOrEqual(record.host_joules);
  expect(record.kernel_share).toBeGreaterThan(0.05);
  expect(record.kernel_method).toBeTruthy();
  // Its mean power is the API's `watts` over the same interval (the front end divides nothing).
  const again = await (await page.request.get(
    `/api/energy/v1/energy?from=${record.from.toFixed(6)}&to=${record.to.toFixed(6)}&token=${TOKEN}`
  )).json();
  expect(record.host_watts).toBe(again.host.watts);
  nearHost(record.host_watts * record.duration_s, record.duration_s);
  // Its emissions: the joules at energyd's carbon intensity (constant here), within 1 %.
  const carbon = await (await page.request.get(`/api/energy/v1/carbon?series=0&token=${TOKEN}`)).json();
  const expected = (record.host_joules / 3.6e6) * carbon.intensity_g_per_kwh;
  expect(Math.abs(record.emissions_g - expected)).toBeLessThanOrEqual(0.01 * expected);
}

for (const kind of ['lab', 'notebook7'] as Kind[]) {
  test(`${kind}: top bar, panel, cell energy and benchmark`, async ({ page }) => {
    await openNotebook(page, kind);
    await checkTopBar(page, kind);
    await checkPanel(page, kind);
    await runCellAndCheckEnergy(page, kind);
    await benchmark(page, kind);
    await metadataKept(page, kind);
  });
}

/**
 * Answers with known figures injected at the server-extension boundary with route(): a long-term
 * series with a gap, a kernel share of exactly 60 %, and an estimated host total (what a machine
 * without sensors gives). The front end must show them as given. Then the per-cell setting.
 */
test('lab: injected long-term, kernel-share and estimated figures; per-cell setting off', async ({ page }) => {
  const t0 = Math.floor(Date.now() / 1000) - 3600;
  await page.route('**/api/energy/v1/longterm**', route =>
    route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({
        t: Array.from({ length: 60 }, (_, i) => t0 + 60 * i),
        step_s: 60,
        channels: { 'rapl:package-0': { joules: Array(60).fill(1200) } },
        host: { joules: Array.from({ length: 60 }, (_, i) => (i === 30 ? null : 1500)) },
        mix: {
          renewable: Array.from({ length: 60 }, (_, i) => (i === 30 ? null : 0.45)),
          fossil: Array.from({ length: 60 }, (_, i) => (i === 30 ? null : 0.35)),
          nuclear: Array.from({ length: 60 }, (_, i) => (i === 30 ? null : 0.2))
        }
      })
    })
  );
  await page.route('**/api/energy/v1/kernels/*/energy**', async route => {
    const answer = await (await route.fetch()).json();
    answer.kernel = { joules: answer.host.joules * 0.6, share: 0.6, method: 'cpu-time share', measured: false };
    answer.kernel_note = null;
    await route.fulfill({ contentType: 'application/json', body: JSON.stringify(answer) });
  });
  await fakeStream(page, now => {
    now.host.measured = false;
  });
  await openNotebook(page, 'lab');
  const bar = page.locator('#jp-energy-topbar');
  await expect(bar).toHaveAttribute('data-state', 'estimated', { timeout: 30_000 });
  await expect(bar.locator('.jp-EnergyTopBar-estimated')).toHaveText('est.');

  const cell = page.locator('.jp-Notebook .jp-Cell').nth(1);
  await cell.locator('.jp-InputArea-editor').click();
  await page.keyboard.press('Control+Enter');
  await expect(cell.locator('.jp-EnergyCellLine')).toContainText(/kernel [\d.]+ (m|k)?J \(60%\), estimated by cpu-time share/, {
    timeout: 60_000
  });

  await bar.click();
  const panel = page.locator('#jp-energy-panel');
  await expect(panel.locator('.jp-EnergyPanel-quality')).toContainText('Estimated');
  await expect(panel.locator('.jp-EnergyPanel-kernel')).toContainText('60.0% of the machine');
  await expect(panel.locator('.jp-EnergyPanel-kernel')).toContainText('estimated by cpu-time share');
  await expect(panel.locator('.jp-EnergyPanel-longNote')).toContainText('per 1 min 00 s step');
  await expect(panel.locator('.jp-EnergyPanel-longterm canvas')).toBeVisible();
  // The generation mix behind it, with its legend (only the groups present).
  await expect(panel.locator('.jp-EnergyPanel-mixLegend')).toHaveText(/generation mix.*renewable.*nuclear.*fossil/);
  await expect(panel.locator('.jp-EnergyPanel-mixLegend')).not.toContainText('storage');
  await panel.locator('.jp-EnergyPanel-longterm').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${ART}/lab-longterm-kernel-share.png` });

  // Setting "Per-cell energy" off: after a reload the saved record stays in the metadata but no
  // line is drawn.
  await page.locator('.jp-Notebook').first().click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+s');
  await expect
    .poll(async () => {
      const r = await page.request.get(`/api/contents/lab.ipynb?content=1&token=${TOKEN}`);
      return r.ok() ? (await r.json()).content?.cells?.[1]?.metadata?.energy?.kernel_share ?? null : null;
    })
    .toBe(0.6);
  const put = await page.request.put(`/lab/api/settings/jupyter-energy:plugin?token=${TOKEN}`, {
    data: { raw: JSON.stringify({ cellEnergy: false }) }
  });
  expect(put.status()).toBe(204);
  await openNotebook(page, 'lab');
  await expect(page.locator('#jp-energy-topbar')).toHaveAttribute('data-state', /measured|estimated/);
  await page.waitForTimeout(1500);
  await expect(page.locator('.jp-EnergyCellLine')).toHaveCount(0);

  // Theming: in JupyterLab Dark the panel and the top bar follow the theme's colours.
  const theme = await page.request.put(
    `/lab/api/settings/@jupyterlab/apputils-extension:themes?token=${TOKEN}`,
    { data: { raw: JSON.stringify({ theme: 'JupyterLab Dark' }) } }
  );
  expect(theme.status()).toBe(204);
  await openNotebook(page, 'lab');
  await page.locator('#jp-energy-topbar').click();
  const luminance = (selector: string): Promise<number> =>
    page.locator(selector).evaluate(e => {
      const m = getComputedStyle(e).backgroundColor.match(/\d+(\.\d+)?/g)!.map(Number);
      return (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255;
    });
  await expect.poll(() => luminance('#jp-energy-panel')).toBeLessThan(0.3);
  expect(await luminance('#jp-energy-topbar')).toBeLessThan(0.3);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${ART}/lab-dark-panel.png` });
});

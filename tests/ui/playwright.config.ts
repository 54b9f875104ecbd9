/**
 * Playwright against a real JupyterLab (which also serves Notebook 7) started by serve.py with the
 * extension and an embedded energyd on the emulated powercap tree (host total 25 W).
 * Browser: Debian's /usr/bin/chromium (no browser download).
 */
import { defineConfig } from '@playwright/test';

export const PORT = Number(process.env.JE_UI_PORT ?? 18899);
export const TOKEN = process.env.JE_UI_TOKEN ?? 'jupyter-energy-ui-test';
const PYTHON = process.env.JE_UI_PYTHON ?? '../../.venv/bin/python';
const WORKDIR = process.env.JE_UI_WORKDIR ?? '/tmp/jupyter-energy-ui';
const JUNIT = process.env.JE_UI_JUNIT;

export default defineConfig({
  testDir: './tests',
  outputDir: './artifacts/results',
  timeout: 120_000,
  expect: { timeout: 20_000 },
  workers: 1,
  retries: 0,
  reporter: [['list'], ...(JUNIT ? [['junit', { outputFile: JUNIT }] as ['junit', { outputFile: string }]] : [])],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    viewport: { width: 1400, height: 900 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  },
  webServer: {
    command: `${PYTHON} serve.py ${PORT} ${TOKEN} ${WORKDIR}`,
    url: `http://127.0.0.1:${PORT}/api`,
    timeout: 90_000,
    reuseExistingServer: false,
    // SIGTERM first so that Jupyter shuts down in order (kernels, then the embedded energyd).
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15_000 },
    stdout: 'pipe',
    stderr: 'pipe'
  }
});

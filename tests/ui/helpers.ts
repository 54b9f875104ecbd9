/** Pieces shared by the UI specs. */
import { expect, Page } from '@playwright/test';

import { TOKEN } from './playwright.config';

/** Opens a notebook page and waits until its kernel is up for good: the status goes idle,
 * unknown (while the page reconnects), then idle. */
export async function openNotebookAt(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.locator('.jp-Notebook .jp-Cell').first()).toBeVisible({ timeout: 60_000 });
  const indicator = page.locator('.jp-Notebook-ExecutionIndicator').first();
  await expect(indicator).toHaveAttribute('data-status', 'idle', { timeout: 60_000 });
  await page.waitForTimeout(2000);
  await expect(indicator).toHaveAttribute('data-status', 'idle', { timeout: 60_000 });
}

/** Saves the notebook in the page (Ctrl+S) and returns a reader of the file's content that
 * gives null while a read races the save (a 400 on an empty file), for expect.poll. */
export async function saveNotebook(page: Page, name: string): Promise<() => Promise<any>> {
  await page.locator('.jp-Notebook').first().click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+s');
  return async () => {
    const r = await page.request.get(`/api/contents/${name}?content=1&token=${TOKEN}`);
    return r.ok() ? (await r.json()).content ?? null : null;
  };
}

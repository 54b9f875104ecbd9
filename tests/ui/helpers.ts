/** Pieces shared by the UI specs. */
import { expect, Page } from '@playwright/test';

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

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

/** Saves the notebook in the page (Ctrl+S), waits until the server has answered that save, and
 * returns a reader of the file's content (null when a read fails), for expect.poll.
 *
 * No read may overlap the save: jupyter_server writes a notebook in place, after copying the
 * old file to `.~NAME`, and a read that finds the file half-written takes it for a failed write:
 * it moves it aside to `NAME.invalid` and puts the old copy back. The save is then lost although
 * the page was told it succeeded (a reader polling from the key press did that once). */
export async function saveNotebook(page: Page, name: string): Promise<() => Promise<any>> {
  await page.locator('.jp-Notebook').first().click({ position: { x: 5, y: 5 } });
  const path = `/api/contents/${encodeURIComponent(name)}`;
  const saved = page.waitForResponse(
    r => r.request().method() === 'PUT' && new URL(r.url()).pathname.endsWith(path),
    { timeout: 60_000 }
  );
  await page.keyboard.press('Control+s');
  const answer = await saved;
  expect(answer.ok(), `saving ${name}: ${answer.status()}`).toBe(true);
  return async () => {
    const r = await page.request.get(`${path}?content=1&token=${TOKEN}`);
    return r.ok() ? (await r.json()).content ?? null : null;
  };
}

/** Makes the page hidden or visible again, as a browser does when its tab is switched. */
export async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate(h => {
    Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

/** Replaces the live stream (`/api/energy/v1/stream`) by one event: energyd's `now` as
 * `change` leaves it. The stream then ends and the page opens it again (a refresh later), so
 * every sample the page shows from then on went through `change`. A stream the page holds
 * open already is closed and opened again (hidden, then visible). */
export async function fakeStream(page: Page, change: (now: any) => void): Promise<void> {
  await page.route('**/api/energy/v1/stream**', async route => {
    let r, body: string;
    try {
      r = await page.request.get(`/api/energy/v1/now?token=${TOKEN}`);
      body = await r.text();
    } catch (e) {
      // The page reloaded while `now` was being answered (on a loaded machine it can take that
      // long), and the answer went with the old page: this stream request is gone too, and the
      // reloaded page opens the stream again.
      return route.abort().catch(() => undefined);
    }
    if (!r.ok()) {
      return route.fulfill({ status: r.status(), contentType: 'application/json', body });
    }
    const now = JSON.parse(body);
    change(now);
    return route.fulfill({ contentType: 'text/event-stream', body: `data: ${JSON.stringify(now)}\n\n` });
  });
  await setHidden(page, true);
  await setHidden(page, false);
}

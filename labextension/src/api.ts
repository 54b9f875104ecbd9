/**
 * Types of the server extension's answers (energyd's API v1, forwarded under /api/energy/v1/)
 * and the one function that requests them. Times are Unix seconds, energy joules, power watts.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IChannelNow {
  watts: number | null;
  joules: number | null;
  measured: boolean;
}

export interface INow {
  time: number;
  channels: { [id: string]: IChannelNow };
  host: {
    watts: number | null;
    joules: number | null;
    coverage: string[];
    measured: boolean;
  };
}

export interface IChannelInfo {
  id: string;
  kind: string;
  label: string;
  measured: boolean;
  status: string;
  error: string | null;
  includes: string[];
}

export interface ISources {
  channels: IChannelInfo[];
  families: { name: string; status: string; detail: string }[];
}

export interface IHistory {
  t: number[];
  channels: { [id: string]: { watts: (number | null)[] } };
  host: { watts: (number | null)[] };
}

/** The carbon factor energyd used (energyd with carbon support only). */
export interface ICarbonFactor {
  provider: string;
  zone: string;
  intensity_g_per_kwh: number | null;
  age_s: number | null;
  status: string;
  error: string | null;
  estimated: boolean;
}

export interface IHostEnergy {
  joules: number | null;
  /** Mean power over the interval (energyd's joules over `seconds`); null when seconds is 0
   * (absent from an energyd older than these fields). */
  watts?: number | null;
  coverage: string[];
  measured: boolean;
  /** Grams CO2eq, always estimated; absent on energyd without carbon support, null unknown. */
  emissions_g?: number | null;
  cost?: number | null;
  currency?: string | null;
}

export interface IEnergy {
  from: number;
  to: number;
  /** Length of the interval answered (`to` − `from`, energyd's). */
  seconds?: number;
  resolution_s: number;
  channels: { [id: string]: { joules: number | null; watts?: number | null } };
  host: IHostEnergy;
  carbon?: ICarbonFactor;
  /** Present with ?scope=… on an energyd that attributes. */
  scope?: IScopeEnergy;
}

export interface IScopeEnergy {
  joules: number;
  watts?: number | null;
  share: number;
  method: string;
  measured: boolean;
}

/** Statistics of one figure over the runs (energyd's; sd, rel_sd and the 95 % interval are
 * null for a single run). */
export interface IStat {
  n: number;
  mean: number | null;
  sd: number | null;
  rel_sd: number | null;
  ci95_low: number | null;
  ci95_high: number | null;
}

export interface IStatJW {
  joules: IStat;
  watts: IStat;
}

/** `runs?runs=T0/T1,…[&scope=…]`: each interval as `energy` answers it, and the statistics. */
export interface IRuns {
  runs: IEnergy[];
  stats: {
    seconds: IStat;
    host: IStatJW;
    channels: { [id: string]: IStatJW };
    scope?: IStatJW | null;
  };
}

export interface ILongterm {
  t: number[];
  step_s: number;
  channels: { [id: string]: { joules: (number | null)[] } };
  host: { joules: (number | null)[]; emissions_g?: (number | null)[] };
  /** What the store holds: since when it records. */
  record?: { began_at: number | null; recorded_to: number | null; status?: string };
  /** Generation group → share per step (energyd with a mix provider only). */
  mix?: { [group: string]: (number | null)[] };
  intensity_g_per_kwh?: (number | null)[];
}

export interface IStatus {
  socket_path: string | null;
  embedded: boolean;
  server_started_at: number;
  startup_error: string | null;
  /** The Jupyter server's user id (the "my processes" view). */
  uid?: number;
}

export interface IProcess {
  pid: number;
  ppid: number;
  uid: number;
  user: string;
  command: string;
  watts: number | null;
  cpu_share: number | null;
  cpu_s: number | null;
  tree_joules: number | null;
}

export interface IProcesses {
  time: number;
  interval_s: number;
  scan_interval_s: number;
  method: string;
  measured: boolean;
  processes: IProcess[];
  host?: { active_watts: number | null; idle_watts: number | null; busy_share: number | null };
}

export interface IKernelEnergy {
  kernel_id: string;
  pid: number | null;
  watch_id: string | null;
  from: number;
  to: number;
  resolution_s: number | null;
  host: IEnergy['host'];
  channels: IEnergy['channels'];
  /** The kernel's attributed share, or null when energyd cannot attribute (see kernel_note). */
  kernel: IScopeEnergy | null;
  kernel_note: string | null;
}

/** The server user's share of the machine ("you": energyd's `user:UID` scope) over an
 * interval, from the server extension's `you` endpoint. Every figure is the API's. */
export interface IYou {
  from: number;
  to: number;
  machine: {
    joules: number | null;
    measured: boolean;
    coverage: string[] | null;
    emissions_g: number | null;
    cost: number | null;
    currency: string | null;
  };
  you: {
    uid: number;
    name: string;
    scope: string;
    joules: number | null;
    share: number | null;
    emissions_g: number | null;
    cost: number | null;
    currency: string | null;
    method: string;
    measured: false;
    /** What the figure is: an estimate of a share of a measured (or estimated) total. */
    label: string;
  };
}

export class EnergyApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint: string = ''
  ) {
    super(message);
  }
}

export type Params = { [key: string]: string | number | undefined };

/** GET /api/energy/v1/<endpoint>?params as a Response (any status); rejects with an
 * EnergyApiError of status 0 when the Jupyter server does not answer. */
async function fetchAPI(
  endpoint: string,
  params: Params,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  const query = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const url =
    URLExt.join(settings.baseUrl, 'api', 'energy', 'v1', endpoint) +
    (query ? `?${query}` : '');
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if (init.signal?.aborted) {
      throw error;
    }
    throw new EnergyApiError(0, `Jupyter server not reachable: ${String(error)}`);
  }
}

/** The EnergyApiError of a failed answer, with energyd's (or the extension's) JSON text. */
async function answerError(response: Response): Promise<EnergyApiError> {
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { error: text.slice(0, 300) };
  }
  return new EnergyApiError(
    response.status,
    String(data.error ?? response.statusText),
    String(data.hint ?? '')
  );
}

/** GET /api/energy/v1/<endpoint>?params; rejects with EnergyApiError carrying energyd's text. */
export async function requestAPI<T>(
  endpoint: string,
  params: Params = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await fetchAPI(endpoint, params, {}, settings);
  if (!response.ok) {
    throw await answerError(response);
  }
  const text = await response.text();
  try {
    return (text ? JSON.parse(text) : {}) as T;
  } catch {
    throw new EnergyApiError(response.status, `not JSON: ${text.slice(0, 300)}`);
  }
}

/** Largest Server-Sent Event accepted (a `now` object is a few kB). */
export const EVENT_MAX_CHARS = 1 << 20;

/**
 * Calls `onData` with the data of each Server-Sent Event of `body` (the `data:` lines of an
 * event joined by newlines) until the stream ends; rejects on an event over `maxChars`.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onData: (data: string) => void,
  maxChars: number = EVENT_MAX_CHARS
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer
        .slice(0, end)
        .split('\n')
        .filter(line => line.startsWith('data:'))
        .map(line => line.slice(line.startsWith('data: ') ? 6 : 5))
        .join('\n');
      buffer = buffer.slice(end + 2);
      if (data) {
        onData(data);
      }
    }
    if (buffer.length > maxChars) {
      await reader.cancel();
      throw new EnergyApiError(0, `an event of the live stream is over ${maxChars} characters`);
    }
  }
}

/**
 * energyd's live stream through the server extension (`GET /api/energy/v1/stream`, one `now`
 * object per sample): `onNow` for each until the stream ends (energyd stopped) or `signal`
 * aborts it. Rejects with an EnergyApiError when it cannot be opened.
 */
export async function streamNow(
  onNow: (now: INow) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const response = await fetchAPI(
    'stream',
    {},
    { signal, headers: { Accept: 'text/event-stream' }, cache: 'no-store' },
    settings
  );
  if (!response.ok || !response.body) {
    throw await answerError(response);
  }
  await readEvents(response.body, data => onNow(JSON.parse(data) as INow));
}

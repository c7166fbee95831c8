/**
 * The cellpipe server extension's REST routes, under `<base_url>/cellpipe/`.
 *
 * Requests go through `ServerConnection.makeRequest`, which adds the token and the
 * XSRF header, so the routes see the same user as the rest of JupyterLab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  Analysis,
  Cancelling,
  Compiled,
  ErrorBody,
  Figures,
  Plugins,
  RunDetail,
  RunList,
  RunStarted,
  StudyCancelling,
  StudyState,
  Submitted,
  TuneStarted
} from './generated/types';

// What the routes answer is typed by src/generated/types.ts, generated from the server's
// JSON Schema (src/cellpipe/server/schema/server-api.v1.schema.json) by `jlpm build:types`.
export type {
  Analysis,
  Compiled,
  ConnectionField,
  Diagnostic,
  Edge,
  ErrorBody,
  Figure,
  Figures,
  Parameter,
  Plugins,
  RunDetail,
  RunList,
  RunStarted,
  RunSummary,
  StepError,
  StepInfo,
  StepState,
  StudyState,
  StudyTrial,
  Submitted,
  TuneStarted
} from './generated/types';

/** An answer other than 2xx, with the server's message and hint. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint: string | null = null,
    readonly body: Partial<ErrorBody> = {}
  ) {
    super(message);
  }

  /** The message and the hint, on one line. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

let settings: ServerConnection.ISettings | null = null;

function serverSettings(): ServerConnection.ISettings {
  if (!settings) {
    settings = ServerConnection.makeSettings();
  }
  return settings;
}

/** The URL of a cellpipe route, with a query. */
export function routeUrl(
  parts: string[],
  query: Record<string, string | number | undefined> = {},
  withToken = false
): string {
  const s = serverSettings();
  const base = URLExt.join(s.baseUrl, 'cellpipe', ...parts.map(encodeURIComponent));
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) {
      params[key] = String(value);
    }
  }
  if (withToken && s.token) {
    params.token = s.token;
  }
  const search = URLExt.objectToQueryString(params);
  return base + search;
}

async function send(url: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, serverSettings());
  } catch (error) {
    throw new ApiError(0, `cannot reach the server: ${String(error)}`);
  }
  if (!response.ok) {
    // What the server says is wrong (ErrorBody), unless a proxy answered something else.
    let body: Partial<ErrorBody> = {};
    try {
      body = await response.json();
    } catch {
      // not JSON: keep the status line
    }
    const message =
      typeof body.message === 'string'
        ? body.message
        : `${response.status} ${response.statusText}`;
    const hint = typeof body.hint === 'string' ? body.hint : null;
    throw new ApiError(response.status, message, hint, body);
  }
  return response;
}

/** GET or POST a route that answers JSON. */
export async function requestJson<T>(
  parts: string[],
  query: Record<string, string | number | undefined> = {},
  body?: unknown
): Promise<T> {
  const init: RequestInit =
    body === undefined
      ? { method: 'GET' }
      : { method: 'POST', body: JSON.stringify(body) };
  const response = await send(routeUrl(parts, query), init);
  return (await response.json()) as T;
}

/** GET a route that answers text (a step's log). */
export async function requestText(
  parts: string[],
  query: Record<string, string | number | undefined> = {}
): Promise<string> {
  const response = await send(routeUrl(parts, query), { method: 'GET' });
  return response.text();
}

export const analyze = (path: string): Promise<Analysis> =>
  requestJson<Analysis>(['analyze'], { path });

/** Analyze the notebook as the editor has it (`content` is its JSON, outputs left out). */
export const analyzeContent = (path: string, content: unknown): Promise<Analysis> =>
  requestJson<Analysis>(['analyze'], { path }, { content });

export const listRuns = (path: string): Promise<RunList> => requestJson(['runs'], { path });

export const startRun = (
  path: string,
  engine: string,
  parameters?: Record<string, unknown>
): Promise<RunStarted> =>
  requestJson(['runs'], {}, parameters && Object.keys(parameters).length ? { path, engine, parameters } : { path, engine });

/** Ask a running run to stop: its running steps end, the finished ones stay cached. */
export const cancelRun = (path: string, id: string): Promise<Cancelling> =>
  requestJson(['runs', id, 'cancel'], { path }, {});

export const getRun = (
  path: string,
  id: string,
  wait?: number,
  since?: number
): Promise<RunDetail> => requestJson<RunDetail>(['runs', id], { path, wait, since });

export const compile = (body: Record<string, unknown>): Promise<Compiled> =>
  requestJson(['compile'], {}, body);

export const submit = (body: Record<string, unknown>): Promise<Submitted> =>
  requestJson(['submit'], {}, body);

/** The engines and targets the server can use: built-in ones first, then plugins'. */
export const plugins = (): Promise<Plugins> => requestJson<Plugins>(['plugins']);

export const stepLog = (path: string, run: string, step: string): Promise<string> =>
  requestText(['runs', run, 'steps', step, 'log'], { path });

export const stepReport = (path: string, run: string, step: string): Promise<string> =>
  requestText(['runs', run, 'steps', step, 'report'], { path });

export const reportUrl = (path: string, run: string, step: string): string =>
  routeUrl(['runs', run, 'steps', step, 'report'], { path }, true);

export const stepFigures = (path: string, run: string, step: string): Promise<Figures> =>
  requestJson<Figures>(['runs', run, 'steps', step, 'figures'], { path });

/** The URL of figure `number` of a step (an `<img>` cannot send the token header). */
export const figureUrl = (path: string, run: string, step: string, number: number): string =>
  routeUrl(['runs', run, 'steps', step, 'figures', `${number}.png`], { path }, true);

/** What a tuning study searches: the body of POST /cellpipe/tune. */
export interface TuneRequest {
  objective: string;
  direction: 'maximize' | 'minimize';
  /** Parameter name → its range (`uniform(0, 1)`, `int(1, 10)`, `choice(a, b)`, …). */
  space: Record<string, string>;
  trials: number;
  sampler?: string;
  seed?: number;
}

/** Start a tuning study of the saved notebook; its trials are runs of it. */
export const startTune = (path: string, body: TuneRequest): Promise<TuneStarted> =>
  requestJson(['tune'], { path }, body);

/** A study's settings, trials and best trial; with `wait`, a long poll. */
export const getStudy = (path: string, study: string, wait?: number, since?: number): Promise<StudyState> =>
  requestJson<StudyState>(['tune', study], { path, wait, since });

/** Stop a study: no trial starts after it, the running ones are cancelled. */
export const cancelStudy = (path: string, study: string): Promise<StudyCancelling> =>
  requestJson(['tune', study, 'cancel'], { path }, {});

// The typed API client: paths and bodies come from the gateway's own OpenAPI document (src/api/schema.d.ts).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Session = Schemas["toefl.session.v1.Session"];
export type ModuleState = Schemas["toefl.session.v1.ModuleState"];
export type Item = Schemas["toefl.item.v1.Item"];
export type Passage = Schemas["toefl.item.v1.Passage"];
export type Answer = Schemas["toefl.session.v1.Answer"];
export type SavedResponse = Schemas["toefl.session.v1.SavedResponse"];
export type ScoreReport = Schemas["toefl.session.v1.ScoreReport"];
export type Section = Schemas["toefl.item.v1.Section"];
export type Role = Schemas["toefl.session.v1.Role"];
type Status = Schemas["google.rpc.Status"];

export const api = createClient<paths>({ baseUrl: "" });

// The signed-in user's tokens (see auth.ts), and how to renew them: the client module does not import auth.ts.
interface Tokens {
  accessToken: string;
  renewAfter: number;
}
let tokens: Tokens | null = null;
let renewTokens: (() => Promise<boolean>) | null = null;
let onSignedOut: (() => void) | null = null;

export function setSession(current: Tokens | null): void {
  tokens = current;
}

/** How the client renews an access token (true: renewed) and what it does when the sign-in has ended. */
export function configureSession(renew: () => Promise<boolean>, signedOut: () => void): void {
  renewTokens = renew;
  onSignedOut = signedOut;
}

api.use({
  onRequest({ request }) {
    if (tokens !== null) request.headers.set("Authorization", `Bearer ${tokens.accessToken}`);
    return request;
  },
});

/** A refusal in words a student understands, with the service's machine-readable reason when it gave one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** No answer from the server at all: the network is down (answers queue and are sent again later). */
export class OfflineError extends Error {
  constructor() {
    super("You are offline. Your answers are kept on this computer and sent when the connection is back.");
    this.name = "OfflineError";
  }
}

// What each reason means to a student (or a member of staff); anything else shows the server's own sentence.
const PLAIN: Record<string, string> = {
  MODULE_TIME_UP: "The time for this part is up. Your saved answers are kept; the test moves on.",
  MODULE_CLOSED: "This part of the test is closed. Your saved answers are kept.",
  NOT_IN_MODULE: "This question is not in the current part of the test any more.",
  SESSION_FINISHED: "This test is finished.",
  SESSION_PAUSED: "Your proctor has paused your exam; your answers are kept.",
  SESSION_VOIDED: "Your proctor has voided this test: it is over and will not be scored. Your answers are kept.",
  SITTING_CLOSED: "This sitting has closed: tests can no longer be started in it.",
  ACCESS_CODE_INVALID: "That access code is not the sitting's. Please ask your proctor for it.",
  PRACTICE_NOT_ALLOWED: "Your school allows tests only in its sittings: start one from a sitting below.",
  DAILY_SESSION_LIMIT: "You have started as many tests as allowed today. Please try again tomorrow.",
  SIGN_IN_THROTTLED: "Too many sign-in attempts. Please wait a moment and try again.",
  // Staff: the item workflow's four-eyes rule and its calibration rule.
  OWN_ITEM_REVIEW: "You wrote this item, so another author must review it.",
  ITEM_NOT_CALIBRATED: "This item has no IRT parameters yet: it must be calibrated before it is activated.",
};

function reasonOf(status: Status | undefined): string | null {
  for (const detail of status?.details ?? []) {
    const info = detail as { "@type"?: string; reason?: string };
    if (info["@type"]?.endsWith("google.rpc.ErrorInfo") && info.reason) return info.reason;
  }
  return null;
}

// Who hears of refusals that change what the page may do (a proctor's pause or void), whichever call met them.
export type RefusalListener = (reason: string) => void;
const refusalListeners = new Set<RefusalListener>();
/** Calls `listener` with the reason of every refusal from now on; returns what stops it. */
export function onRefusal(listener: RefusalListener): () => void {
  refusalListeners.add(listener);
  return () => {
    refusalListeners.delete(listener);
  };
}

export type BusyListener = (seconds: number | null) => void;
let busyListener: BusyListener = () => undefined;
export function onBusy(listener: BusyListener): void {
  busyListener = listener;
}

const MAX_BUSY_RETRIES = 20;

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * One API call: a 429 or 503 with Retry-After is waited out and sent again (the student sees "busy, retrying in N
 * s"); any other refusal is an ApiError in plain words; no answer at all is an OfflineError.
 */
export async function call<T>(send: () => Promise<Result<T>>, options = { renew: true }): Promise<T> {
  let renewed = false;
  for (let attempt = 0; ; attempt++) {
    if (options.renew && tokens !== null && Date.now() > tokens.renewAfter && renewTokens !== null && !renewed) {
      renewed = true;
      await renewTokens();
    }
    let result: Result<T>;
    try {
      result = await send();
    } catch {
      throw new OfflineError();
    }
    const { data, error, response } = result;
    if (response.ok && data !== undefined) {
      busyListener(null);
      return data;
    }
    const retryAfter = Number(response.headers.get("Retry-After") ?? "NaN");
    if ((response.status === 429 || response.status === 503) && retryAfter > 0 && attempt < MAX_BUSY_RETRIES) {
      busyListener(retryAfter);
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
      continue;
    }
    busyListener(null);
    const status = error as Status | undefined;
    const reason = reasonOf(status);
    const sessionEnded = response.status === 401 && tokens !== null;
    if (sessionEnded && options.renew) {
      // The access token lapsed (a laptop asleep, say): renew once and send again; else the sign-in has ended.
      if (!renewed && renewTokens !== null && (await renewTokens())) {
        renewed = true;
        continue;
      }
      onSignedOut?.();
    }
    const message =
      (reason !== null ? PLAIN[reason] : undefined) ??
      (sessionEnded ? "Your sign-in has ended. Please sign in again." : undefined) ??
      status?.message ??
      `The server could not do this (HTTP ${response.status}).`;
    if (reason !== null) for (const listener of refusalListeners) listener(reason);
    throw new ApiError(message, response.status, reason);
  }
}

/**
 * A server stream of the API, asked for as server-sent events, each event's `result` given to `onResult`. Read with
 * fetch() and its streamed body, not an EventSource: that cannot send the Authorization header the gateway asks of
 * every route. Resolves when the stream ends (the gateway ends every stream within its longest deadline, so the
 * caller opens the next); a refusal, or an error the stream ends with, is an ApiError; no answer an OfflineError.
 */
export async function readEventStream(
  url: string,
  onResult: (result: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  // Set by the reader inside the call: an object, since a closure's assignment escapes narrowing.
  const ended: { status: Status | null } = { status: null };
  await call(async (): Promise<Result<true>> => {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (tokens !== null) headers.Authorization = `Bearer ${tokens.accessToken}`;
    const response = await fetch(url, { headers, signal });
    if (!response.ok || response.body === null) {
      const error: unknown = await response.json().catch(() => undefined);
      return { error, response };
    }
    ended.status = await readEvents(response.body, (data, event) => {
      const parsed = JSON.parse(data) as { result?: unknown; error?: Status };
      if (event === "error" || parsed.error !== undefined) {
        return parsed.error ?? { code: 13, message: "The stream ended with an error.", details: [] };
      }
      if (parsed.result !== undefined) onResult(parsed.result);
      return null;
    });
    return { data: true, response };
  });
  if (ended.status !== null) {
    throw new ApiError(ended.status.message || "The stream ended with an error.", 500, reasonOf(ended.status));
  }
}

/** Reads `text/event-stream` until it ends or `onEvent` returns an error status (the stream's last event). */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (data: string, event: string) => Status | null,
): Promise<Status | null> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length === 0) continue;
      const error = onEvent(data.join("\n"), event);
      if (error !== null) {
        await reader.cancel();
        return error;
      }
    }
  }
}

export function newRequestId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

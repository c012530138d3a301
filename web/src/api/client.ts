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

// What each reason means to a student or a member of staff, in a sentence (README, "Errors", lists them). A refusal
// whose reason is not here, or that gives none, gets the sentence for its HTTP status (plainSentence): never the
// server's own text, which is written for developers and could be anything a proxy in between sent.
const PLAIN: Record<string, string> = {
  // Taking a test.
  MODULE_TIME_UP: "The time for this part is up. Your saved answers are kept; the test moves on.",
  MODULE_CLOSED: "This part of the test is closed. Your saved answers are kept.",
  NOT_IN_MODULE: "This question is not in the current part of the test any more.",
  SESSION_FINISHED: "This test is finished.",
  NO_CURRENT_MODULE: "This test has no part left to take.",
  SESSION_MOVED_ON: "The test has already moved on. Please reload the page.",
  SESSION_PAUSED: "Your proctor has paused your exam; your answers are kept.",
  SESSION_NOT_PAUSED: "This test is not paused.",
  SESSION_VOIDED: "Your proctor has voided this test: it is over and will not be scored. Your answers are kept.",
  SITTING_NOT_OPEN: "This exam has not opened yet.",
  SITTING_CLOSED: "This sitting has closed: tests can no longer be started in it.",
  ACCESS_CODE_INVALID: "That access code is not the sitting's. Please ask your proctor for it.",
  PRACTICE_NOT_ALLOWED: "Your school allows tests only in its sittings: start one from a sitting below.",
  DAILY_SESSION_LIMIT: "You have started as many tests as allowed today. Please try again tomorrow.",
  ANSWERED_WHILE_SCORING: "An answer arrived while this part was being scored. Please try again.",
  MEDIA_LINK_INVALID: "The link to this audio has expired. Please reload the page.",
  // Spoken answers.
  RECORDING_TYPE_UNSUPPORTED: "This browser records audio in a format the test does not take. Please use a current browser.",
  RECORDING_UNDECODABLE: "The recording could not be read. Please record your answer again.",
  RECORDING_TOO_LONG: "The recording is longer than the time allowed. Please record it again within the time.",
  RECORDING_TOO_LARGE: "The recording is too large to send. Please record it again.",
  RECORDINGS_TOTAL_EXCEEDED: "This test holds no more recordings. Please tell your proctor.",
  NOT_A_SPEAKING_ITEM: "This question does not take a spoken answer.",
  AUDIO_REF_UNKNOWN: "The recording for this answer was not found. Please record it again.",
  // Signing in.
  SIGN_IN_THROTTLED: "Too many sign-in attempts. Please wait a moment and try again.",
  SIGN_IN_BUSY: "Many people are signing in at once. Please try again in a moment.",
  SIGN_IN_ENDED: "Your sign-in has ended. Please sign in again.",
  // Staff: rating, the item workflow (its four-eyes and calibration rules), classes and scores.
  RATING_FINAL: "This response already has its final rating. Please take the next one.",
  OWN_ITEM_REVIEW: "You wrote this item, so another author must review it.",
  ITEM_NOT_CALIBRATED: "This item has no IRT parameters yet: it must be calibrated before it is activated.",
  ITEM_NOT_CALIBRATABLE: "This item names no IRT model, so it cannot be pretested: set its IRT model first.",
  ITEM_STATUS: "The item's status does not allow this step (someone may have moved it on meanwhile). Please reload it.",
  STALE_ETAG: "Someone else changed this item meanwhile. Please reload it and try again.",
  ITEM_BANK_READ_ONLY: "This item bank is read-only: its items cannot be changed here.",
  STATISTICS_RUN_REUSED: "These statistics were already written by another run.",
  WRONG_ROLE: "This account does not have the role this needs.",
  SESSION_NOT_FINISHED: "This test is not finished yet, so it cannot be rescored.",
  ITEM_POOL_EXHAUSTED: "There are not enough items to put this test together. Please tell an administrator.",
  ITEM_SERVICE_REFUSED: "The item bank refused this. Please tell an administrator.",
  // The service itself.
  ITEM_SERVICE_UNAVAILABLE: "The item bank cannot be reached just now. Saved answers are kept; please try again soon.",
  DATABASE_BUSY: "The service is busy. Nothing was lost; please try again in a moment.",
  DATABASE_UNAVAILABLE: "The service cannot reach its database just now. Please try again in a moment.",
  SHUTTING_DOWN: "The service is restarting. Please try again in a moment.",
  DISK_FULL: "The server cannot save anything just now. Please tell an administrator.",
};

/** The sentence for a refusal that gives no reason the client knows, by its HTTP status. */
function plainSentence(status: number, signedIn: boolean): string {
  if (status === 401) {
    return signedIn ? "Your sign-in has ended. Please sign in again." : "The username or password is not right.";
  }
  if (status === 403) return "You are not allowed to do this.";
  if (status === 404) return "This was not found: it may have been removed. Please reload the page.";
  if (status === 409) return "This changed meanwhile. Please reload the page and try again.";
  if (status === 413) return "This is too large to send.";
  if (status === 429 || status === 503) return "The service is busy. Please try again in a moment.";
  if (status >= 500) return "Something went wrong on the server. Please try again; if it keeps happening, tell an administrator.";
  if (status >= 400) return "This could not be done as asked. Please check what you entered and try again.";
  return `The server could not do this (HTTP ${status}).`;
}

interface Refusal {
  reason: string;
  metadata: Record<string, string>;
}

function refusalOf(status: Status | undefined): Refusal | null {
  for (const detail of status?.details ?? []) {
    const info = detail as { "@type"?: string; reason?: string; metadata?: Record<string, string> };
    if (info["@type"]?.endsWith("google.rpc.ErrorInfo") && info.reason) {
      return { reason: info.reason, metadata: info.metadata ?? {} };
    }
  }
  return null;
}

// Refusals whose sentence names what the service sent with them (the ErrorInfo's metadata), when it did.
const WITH_DETAILS: Record<string, (metadata: Record<string, string>) => string | null> = {
  SITTING_NOT_OPEN: ({ open_time: opens }) =>
    opens ? `This exam opens at ${new Date(opens).toLocaleString()}. Please start it then.` : null,
};

function sentenceOf(refusal: Refusal): string | undefined {
  return WITH_DETAILS[refusal.reason]?.(refusal.metadata) ?? PLAIN[refusal.reason];
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
    const refusal = refusalOf(status);
    const reason = refusal?.reason ?? null;
    const sessionEnded = response.status === 401 && tokens !== null;
    if (sessionEnded && options.renew) {
      // The access token lapsed (a laptop asleep, say): renew once and send again; else the sign-in has ended.
      if (!renewed && renewTokens !== null && (await renewTokens())) {
        renewed = true;
        continue;
      }
      onSignedOut?.();
    }
    const message = (refusal !== null ? sentenceOf(refusal) : undefined) ?? plainSentence(response.status, sessionEnded);
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
    throw new ApiError(ended.status.message || "The stream ended with an error.", 500, refusalOf(ended.status)?.reason ?? null);
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

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
    throw new ApiError(message, response.status, reason);
  }
}

export function newRequestId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

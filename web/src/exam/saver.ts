// Answers saved as they are given: queued in this browser's storage first, then sent in order, each with its own
// request id, and sent again with the same id until the server answers (a retry stores nothing twice).
import { api, ApiError, call, OfflineError, type Answer } from "../api/client";

export interface Pending {
  itemId: string;
  answer: Answer;
  requestId: string;
  elapsedMs: number;
}

export type SaveState = "saved" | "saving" | "offline";

export interface SaverEvents {
  state(state: SaveState, pending: number): void;
  // The server took an answer (remainingSeconds re-syncs the clock).
  saved(itemId: string, remainingSeconds: number): void;
  // The server refused an answer for good (for example after the module's deadline): it is dropped. A proctor's
  // pause is not such a refusal: the answers stay queued until resume().
  refused(itemId: string, error: ApiError): void;
}

const RETRY_MS = 2000;

export class AnswerSaver {
  private readonly key: string;
  private queue: Pending[];
  private sending = false;
  private stopped = false;
  // The refusal while a proctor has paused the test: the queue waits, whole, until resume().
  private pausedBy: ApiError | null = null;

  constructor(
    private readonly sessionId: string,
    private readonly events: SaverEvents,
  ) {
    this.key = `toefl.pending.${sessionId}`;
    this.queue = JSON.parse(localStorage.getItem(this.key) ?? "[]") as Pending[];
    window.addEventListener("online", this.onOnline);
  }

  /** The answers not yet acknowledged, oldest first (shown over the saved ones after a reload). */
  pending(): readonly Pending[] {
    return this.queue;
  }

  save(entry: Pending): void {
    this.queue.push(entry);
    this.persist();
    void this.flush();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
  }

  /** The proctor resumed the test: the answers kept during the pause are sent, with their own request ids. */
  resume(): void {
    this.pausedBy = null;
    void this.flush();
  }

  /**
   * Resolves once every queued answer has been acknowledged or refused (before moving to the next module); rejects
   * with the refusal when the test is paused, the answers still queued.
   */
  async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      this.throwIfPaused();
      await this.flush();
      this.throwIfPaused();
      if (this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  private throwIfPaused(): void {
    if (this.pausedBy !== null) throw this.pausedBy;
  }

  private readonly onOnline = (): void => {
    void this.flush();
  };

  private persist(): void {
    if (this.queue.length === 0) localStorage.removeItem(this.key);
    else localStorage.setItem(this.key, JSON.stringify(this.queue));
  }

  readonly flush = async (): Promise<void> => {
    if (this.sending || this.pausedBy !== null) return;
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const head = this.queue[0];
        if (head === undefined) break;
        this.events.state("saving", this.queue.length);
        try {
          const reply = await call(() =>
            api.PUT("/api/sessions/{session_id}/responses/{item_id}", {
              params: { path: { session_id: this.sessionId, item_id: head.itemId } },
              body: { answer: head.answer, requestId: head.requestId, elapsedMs: head.elapsedMs },
            }),
          );
          this.queue.shift();
          this.persist();
          this.events.saved(head.itemId, reply.remainingSeconds ?? 0);
        } catch (error) {
          if (error instanceof OfflineError) {
            this.events.state("offline", this.queue.length);
            setTimeout(() => void this.flush(), RETRY_MS);
            return;
          }
          if (error instanceof ApiError && error.reason === "SESSION_PAUSED") {
            // Not refused for good: kept, and sent with the same request id once the proctor resumes the test.
            this.pausedBy = error;
            return;
          }
          if (error instanceof ApiError && error.status < 500) {
            this.queue.shift();
            this.persist();
            this.events.refused(head.itemId, error);
            continue;
          }
          // A 5xx the call did not wait out: keep the answer and try again shortly, with the same request id.
          this.events.state("offline", this.queue.length);
          setTimeout(() => void this.flush(), RETRY_MS);
          return;
        }
      }
      this.events.state("saved", 0);
    } finally {
      this.sending = false;
    }
  };
}

// The session's event log as the client feeds it: focus lost and regained, and each item the student moves to, sent
// in batches. The batch waits in this browser's storage until the server took it, so a reload loses no event, and
// an item viewed but not yet reported is still where this device resumes.
import { api, ApiError, call } from "../api/client";

export type EventType = "EVENT_TYPE_FOCUS_LOST" | "EVENT_TYPE_FOCUS_REGAINED" | "EVENT_TYPE_ITEM_VIEWED";

interface ClientEvent {
  type: EventType;
  clientTime: string;
  itemId?: string;
}

const BATCH_MS = 5000;

export class EventLog {
  private readonly key: string;
  private batch: ClientEvent[];
  private timer: ReturnType<typeof setInterval> | undefined;
  private sending = false;

  constructor(private readonly sessionId: string) {
    this.key = `toefl.events.${sessionId}`;
    this.batch = JSON.parse(localStorage.getItem(this.key) ?? "[]") as ClientEvent[];
  }

  /** Sends the batch every few seconds, until stop(). */
  start(): void {
    this.timer ??= setInterval(() => void this.send(), BATCH_MS);
  }

  note(type: EventType, itemId?: string): void {
    this.batch.push({ type, clientTime: new Date().toISOString(), ...(itemId ? { itemId } : {}) });
    this.persist();
  }

  /** Of `itemIds`, the last one viewed on this device that the server has not heard of yet; null if none. */
  unreportedView(itemIds: readonly string[]): string | null {
    for (let index = this.batch.length - 1; index >= 0; index--) {
      const event = this.batch[index];
      if (event?.type === "EVENT_TYPE_ITEM_VIEWED" && event.itemId !== undefined && itemIds.includes(event.itemId)) {
        return event.itemId;
      }
    }
    return null;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private persist(): void {
    if (this.batch.length === 0) localStorage.removeItem(this.key);
    else localStorage.setItem(this.key, JSON.stringify(this.batch));
  }

  private drop(count: number): void {
    // Events noted while the batch was on its way stay for the next one.
    this.batch = this.batch.slice(count);
    this.persist();
  }

  private async send(): Promise<void> {
    if (this.sending || this.batch.length === 0) return;
    this.sending = true;
    const events = this.batch.slice();
    try {
      await call(() =>
        api.POST("/api/sessions/{session_id}/events:batchCreate", {
          params: { path: { session_id: this.sessionId } },
          body: { events },
        }),
      );
      this.drop(events.length);
    } catch (error) {
      // Refused for good (the session is over): dropped. Offline, or the service busy: sent with the next batch.
      if (error instanceof ApiError && error.status < 500) this.drop(events.length);
    } finally {
      this.sending = false;
    }
  }
}

// The session's event log as the client feeds it: focus lost and regained, each item the student moves to, and each
// prompt audio played (so that no device offers it again), sent in batches. A batch gets its request id once, when
// it is first sent, and keeps it on every retry, so a batch whose reply was lost is stored once. Both the batch on
// its way and the events noted since wait in this browser's storage until the server took them, so a reload loses no
// event, and an item viewed but not yet reported is still where this device resumes.
import { api, ApiError, call, newRequestId } from "../api/client";

export type EventType =
  | "EVENT_TYPE_FOCUS_LOST"
  | "EVENT_TYPE_FOCUS_REGAINED"
  | "EVENT_TYPE_ITEM_VIEWED"
  | "EVENT_TYPE_AUDIO_PLAYED";

interface ClientEvent {
  type: EventType;
  clientTime: string;
  itemId?: string;
}

interface Batch {
  requestId: string;
  events: ClientEvent[];
}

interface Stored {
  // Sent at least once and not yet acknowledged: sent again as it is, with its request id.
  sending: Batch | null;
  // Noted since: the next batch.
  pending: ClientEvent[];
}

const BATCH_MS = 5000;
// The most events the server takes in one batch.
const MAX_BATCH = 500;

function load(key: string): Stored {
  const kept: unknown = JSON.parse(localStorage.getItem(key) ?? "null");
  // A client before request ids kept an array of events: they become the next batch.
  if (Array.isArray(kept)) return { sending: null, pending: kept as ClientEvent[] };
  return (kept as Stored | null) ?? { sending: null, pending: [] };
}

export class EventLog {
  private readonly key: string;
  private stored: Stored;
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(private readonly sessionId: string) {
    this.key = `toefl.events.${sessionId}`;
    this.stored = load(this.key);
  }

  /** Sends the batch every few seconds, until stop(). */
  start(): void {
    this.timer ??= setInterval(() => void this.send(), BATCH_MS);
  }

  note(type: EventType, itemId?: string): void {
    this.stored.pending.push({ type, clientTime: new Date().toISOString(), ...(itemId ? { itemId } : {}) });
    this.persist();
  }

  /** Of `itemIds`, the last one viewed on this device that the server has not heard of yet; null if none. */
  unreportedView(itemIds: readonly string[]): string | null {
    const events = this.unreported();
    for (let index = events.length - 1; index >= 0; index--) {
      const event = events[index];
      if (event?.type === "EVENT_TYPE_ITEM_VIEWED" && event.itemId !== undefined && itemIds.includes(event.itemId)) {
        return event.itemId;
      }
    }
    return null;
  }

  /** The items whose audio this device played and has not yet reported. */
  unreportedPlays(): string[] {
    return this.unreported()
      .filter((event) => event.type === "EVENT_TYPE_AUDIO_PLAYED" && event.itemId !== undefined)
      .map((event) => event.itemId ?? "");
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private unreported(): ClientEvent[] {
    return [...(this.stored.sending?.events ?? []), ...this.stored.pending];
  }

  private persist(): void {
    if (this.stored.sending === null && this.stored.pending.length === 0) localStorage.removeItem(this.key);
    else localStorage.setItem(this.key, JSON.stringify(this.stored));
  }

  private async send(): Promise<void> {
    if (this.busy) return;
    if (this.stored.sending === null) {
      if (this.stored.pending.length === 0) return;
      // The events noted so far become one batch with its own request id, kept until the server has it.
      const { pending } = this.stored;
      this.stored = {
        sending: { requestId: newRequestId(), events: pending.slice(0, MAX_BATCH) },
        pending: pending.slice(MAX_BATCH),
      };
      this.persist();
    }
    const batch = this.stored.sending;
    if (batch === null) return;
    this.busy = true;
    try {
      await call(() =>
        api.POST("/api/sessions/{session_id}/events:batchCreate", {
          params: { path: { session_id: this.sessionId } },
          body: { events: batch.events, requestId: batch.requestId },
        }),
      );
      this.done();
    } catch (error) {
      // Refused for good (the session is over): dropped. Offline, or the service busy: sent again, the same batch
      // with the same request id.
      if (error instanceof ApiError && error.status < 500) this.done();
    } finally {
      this.busy = false;
    }
  }

  private done(): void {
    this.stored = { ...this.stored, sending: null };
    this.persist();
  }
}

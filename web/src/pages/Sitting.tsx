// One sitting for its proctors: the room at a glance, kept up to date by the live view's stream, and the actions on
// each student's test (pause, resume, extend, void), each sent with a request id that a retry reuses.
import { useEffect, useRef, useState, type SyntheticEvent } from "react";
import { Link } from "wouter";
import { api, ApiError, call, newRequestId, OfflineError, readEventStream, type Schemas } from "../api/client";
import { formatClock } from "../exam/clock";
import { sectionName, testName, when } from "./names";
import type { Sitting } from "./Sittings";

type Seat = Schemas["toefl.session.v1.Seat"];
type SittingView = Schemas["toefl.session.v1.SittingView"];

// A seat as this page last heard of it, and when: the time left counts down from that moment.
interface Heard {
  seat: Seat;
  at: number;
}

// After a stream failed, the next is opened this long after (one that ended cleanly is reopened at once).
const RECONNECT_MS = 2000;

const STATES: Record<string, string> = {
  SEAT_STATE_NOT_STARTED: "Not started",
  SEAT_STATE_IN_PROGRESS: "In progress",
  SEAT_STATE_PAUSED: "Paused",
  SEAT_STATE_FINISHED: "Finished",
  SEAT_STATE_VOIDED: "Voided",
};

type Kind = "pause" | "resume" | "extend" | "void";

interface Chosen {
  kind: "extend" | "void";
  sessionId: string;
  name: string;
}

export function SittingPage({ sittingId }: { sittingId: string }) {
  const [sitting, setSitting] = useState<Sitting | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [chosen, setChosen] = useState<Chosen | null>(null);
  const { seats, connection } = useLiveView(sittingId);
  const now = useNow();
  // A pause's or resume's request id, kept until the server answered it: a retry after a failure acts only once.
  const requestIds = useRef(new Map<string, string>());
  useEffect(() => {
    call(() => api.GET("/api/sittings/{sitting_id}", { params: { path: { sitting_id: sittingId } } }))
      .then(setSitting)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, [sittingId]);

  const act = (kind: "pause" | "resume", sessionId: string, name: string) => {
    const key = `${kind}:${sessionId}`;
    const requestId = requestIds.current.get(key) ?? newRequestId();
    requestIds.current.set(key, requestId);
    setDone(null);
    setError(null);
    proctorAction(kind, sessionId, requestId, {})
      .then(() => {
        requestIds.current.delete(key);
        setDone(`${kind === "pause" ? "Paused" : "Resumed"} the test of ${name}.`);
      })
      .catch((reason: unknown) => {
        if (!retryable(reason)) requestIds.current.delete(key);
        setError(`Could not ${kind} the test of ${name}: ${reason instanceof Error ? reason.message : String(reason)}`);
      });
  };

  const rows = [...seats.values()].sort((a, b) =>
    (a.seat.displayName ?? "").localeCompare(b.seat.displayName ?? ""),
  );
  return (
    <div>
      <p>
        <Link href="/sittings">All sittings</Link>
      </p>
      <h1>{sitting?.title || "Sitting"}</h1>
      {sitting !== null ? (
        <p>
          {testName(sitting)}, open from {when(sitting.openTime)} until {when(sitting.closeTime)}
          {sitting.accessCode ? `; access code ${sitting.accessCode}` : "; no access code"}.
        </p>
      ) : null}
      <p className="live">{connection}</p>
      {error !== null ? <p role="alert">{error}</p> : null}
      {done !== null ? <p role="status">{done}</p> : null}
      <table className="card seats">
        <caption>Live view of the room</caption>
        <thead>
          <tr>
            <th scope="col">Student</th>
            <th scope="col">State</th>
            <th scope="col">Part</th>
            <th scope="col">Answered</th>
            <th scope="col">Time left</th>
            <th scope="col">Focus lost</th>
            <th scope="col">Last activity</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ seat, at }) => {
            const name = seat.displayName || seat.studentId || "";
            const sessionId = seat.sessionId ?? "";
            const state = String(seat.state ?? "");
            const running = state === "SEAT_STATE_IN_PROGRESS" || state === "SEAT_STATE_PAUSED";
            return (
              <tr key={seat.studentId}>
                <th scope="row">{name}</th>
                <td>{STATES[state] ?? "–"}</td>
                <td>{running ? `${sectionName(seat.section)}, part ${seat.moduleSequence ?? ""}` : "–"}</td>
                <td>{running ? `${seat.answeredCount ?? 0} of ${seat.itemCount ?? 0}` : "–"}</td>
                <td className="clock">{running ? formatClock(timeLeft(seat, at, now)) : "–"}</td>
                <td>{seat.focusLostCount ?? 0}</td>
                <td>{seat.lastActivityTime ? new Date(seat.lastActivityTime).toLocaleTimeString() : "–"}</td>
                <td>
                  {state === "SEAT_STATE_IN_PROGRESS" ? (
                    <button type="button" aria-label={`Pause ${name}`} onClick={() => { act("pause", sessionId, name); }}>
                      Pause
                    </button>
                  ) : null}
                  {state === "SEAT_STATE_PAUSED" ? (
                    <button type="button" aria-label={`Resume ${name}`} onClick={() => { act("resume", sessionId, name); }}>
                      Resume
                    </button>
                  ) : null}
                  {running ? (
                    <>
                      <button
                        type="button"
                        aria-label={`Extend time of ${name}`}
                        onClick={() => {
                          setChosen({ kind: "extend", sessionId, name });
                        }}
                      >
                        Extend time
                      </button>
                      <button
                        type="button"
                        aria-label={`Void the test of ${name}`}
                        onClick={() => {
                          setChosen({ kind: "void", sessionId, name });
                        }}
                      >
                        Void
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {chosen !== null ? (
        <ActionForm
          key={`${chosen.kind}:${chosen.sessionId}`}
          chosen={chosen}
          onDone={(message) => {
            setChosen(null);
            setDone(message);
          }}
          onCancel={() => {
            setChosen(null);
          }}
        />
      ) : null}
    </div>
  );
}

/** Seconds left for the seat now: frozen while paused, else counted down from when the view was heard. */
function timeLeft(seat: Seat, at: number, now: number): number {
  const left = seat.remainingSeconds ?? 0;
  if (seat.state === "SEAT_STATE_PAUSED") return left;
  return Math.max(0, Math.ceil(left - (now - at) / 1000));
}

/** The extension or the void of one student's test: the reason asked for, the request id made once per form. */
function ActionForm(props: { chosen: Chosen; onDone: (message: string) => void; onCancel: () => void }) {
  const { kind, sessionId, name } = props.chosen;
  const [requestId] = useState(newRequestId);
  const [minutes, setMinutes] = useState("5");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    first.current?.focus();
  }, []);
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setSending(true);
    setError(null);
    const body = kind === "extend" ? { minutes: Number(minutes), reason } : { reason };
    proctorAction(kind, sessionId, requestId, body)
      .then(() => {
        props.onDone(
          kind === "extend" ? `Gave ${name} ${minutes} more minutes.` : `Voided the test of ${name}; its score is withheld.`,
        );
      })
      .catch((reason: unknown) => {
        // Sent again with the same request id: a first attempt that did reach the server acts only once.
        setError(reason instanceof Error ? reason.message : String(reason));
        setSending(false);
      });
  };
  const title = kind === "extend" ? `Extend the time of ${name}` : `Void the test of ${name}`;
  return (
    <form className="card" aria-label={title} onSubmit={submit}>
      <h2>{title}</h2>
      {kind === "extend" ? (
        <label>
          Minutes to add to the current part{" "}
          <input
            ref={first}
            type="number"
            min={1}
            max={120}
            required
            value={minutes}
            onChange={(event) => {
              setMinutes(event.target.value);
            }}
          />
        </label>
      ) : (
        <p>
          Voiding ends the test of {name} now and withholds its score from the student, the roster and the
          analytics. The answers are kept. It cannot be undone.
        </p>
      )}
      <label>
        Reason (for the audit log){" "}
        <input
          ref={kind === "void" ? first : undefined}
          required
          value={reason}
          onChange={(event) => {
            setReason(event.target.value);
          }}
        />
      </label>
      {error !== null ? <p role="alert">{error}</p> : null}
      <button type="submit" disabled={sending}>
        {kind === "extend" ? "Extend" : `Void the test of ${name}`}
      </button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </form>
  );
}

function proctorAction(
  kind: Kind,
  sessionId: string,
  requestId: string,
  body: { minutes?: number; reason?: string },
): Promise<unknown> {
  const path = { session_id: sessionId };
  switch (kind) {
    case "pause":
      return call(() => api.POST("/api/sessions/{session_id}:pause", { params: { path }, body: { requestId, ...body } }));
    case "resume":
      return call(() => api.POST("/api/sessions/{session_id}:resume", { params: { path }, body: { requestId, ...body } }));
    case "extend":
      return call(() => api.POST("/api/sessions/{session_id}:extend", { params: { path }, body: { requestId, ...body } }));
    case "void":
      return call(() => api.POST("/api/sessions/{session_id}:void", { params: { path }, body: { requestId, ...body } }));
  }
}

/** A failure a retry may mend (no answer, or the server's own trouble), as opposed to a refusal. */
function retryable(reason: unknown): boolean {
  return reason instanceof OfflineError || (reason instanceof ApiError && reason.status >= 500);
}

/**
 * The sitting's seats from its live view: the first view of each stream is whole, later ones only the seats that
 * changed (merged by student). The gateway ends a stream within its longest deadline; the next one opens at once.
 */
function useLiveView(sittingId: string): { seats: Map<string, Heard>; connection: string } {
  const [seats, setSeats] = useState(new Map<string, Heard>());
  const [connection, setConnection] = useState("Connecting to the live view…");
  useEffect(() => {
    const controller = new AbortController();
    const onView = (view: SittingView) => {
      const at = Date.now();
      setSeats((current) => {
        const next = new Map(view.full ? [] : current);
        for (const seat of view.seats ?? []) next.set(seat.studentId ?? "", { seat, at });
        return next;
      });
      setConnection(`Live: updated at ${new Date(at).toLocaleTimeString()}.`);
    };
    const stopped = () => controller.signal.aborted;
    const watch = async () => {
      const url = `/api/sittings/${encodeURIComponent(sittingId)}:watch`;
      while (!stopped()) {
        try {
          await readEventStream(
            url,
            (view) => {
              onView(view as SittingView);
            },
            controller.signal,
          );
        } catch (reason) {
          if (stopped()) return;
          if (reason instanceof ApiError && (reason.status === 403 || reason.status === 404)) {
            setConnection(reason.message);
            return;
          }
          setConnection("The live view was interrupted; reconnecting…");
          await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
        }
      }
    };
    void watch();
    return () => {
      controller.abort();
    };
  }, [sittingId]);
  return { seats, connection };
}

/** Date.now(), once a second: the time left of each seat counts down between views. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => {
      setNow(Date.now());
    }, 1000);
    return () => {
      clearInterval(timer);
    };
  }, []);
  return now;
}

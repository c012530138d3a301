// The exam runner: the current module's items one at a time, every answer saved as it is given, the server's clock.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useLocation } from "wouter";
import { api, ApiError, call, newRequestId, type Answer, type Session } from "../api/client";
import { clockWarning, formatClock, useCountdown } from "../exam/clock";
import { EventLog } from "../exam/events";
import { Halted, isHalt, useHalt } from "../exam/halt";
import { AnswerSaver, type SaveState } from "../exam/saver";
import { audioPlayedBefore, Task } from "../exam/tasks";
import { sectionName } from "./names";

export function Exam({ sessionId }: { sessionId: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [, navigate] = useLocation();

  const load = useCallback(async () => {
    const loaded = await call(() => api.GET("/api/sessions/{session_id}", { params: { path: { session_id: sessionId } } }));
    if (loaded.state === "SESSION_STATE_FINISHED") {
      navigate(`/report/${sessionId}`);
      return;
    }
    if (loaded.currentModule == null) {
      // Past its last module: the session only needs finishing.
      await finish(sessionId);
      navigate(`/report/${sessionId}`);
      return;
    }
    setSession(loaded);
  }, [sessionId, navigate]);

  useEffect(() => {
    load().catch((reason: unknown) => {
      setError(reason instanceof Error ? reason.message : String(reason));
    });
  }, [load]);

  const events = useEventLog(sessionId);

  if (error !== null) return <p role="alert" className="card">{error}</p>;
  if (session === null) return <p className="card">Loading your test…</p>;
  const module = session.currentModule;
  if (module == null) return null;
  return (
    <ModuleRunner
      key={module.moduleId}
      session={session}
      events={events}
      onModuleOver={async () => {
        await advance(sessionId, module.moduleId ?? "");
        await load();
      }}
    />
  );
}

async function finish(sessionId: string): Promise<void> {
  await call(() =>
    api.POST("/api/sessions/{session_id}:finish", { params: { path: { session_id: sessionId } }, body: {} }),
  );
}

/** Moves to the next module; the request id is kept per module, so a retry after a reload advances only once. */
async function advance(sessionId: string, moduleId: string): Promise<void> {
  const key = `toefl.advance.${moduleId}`;
  const requestId = localStorage.getItem(key) ?? newRequestId();
  localStorage.setItem(key, requestId);
  try {
    await call(() =>
      api.POST("/api/sessions/{session_id}:advance", {
        params: { path: { session_id: sessionId } },
        body: { requestId },
      }),
    );
  } catch (reason) {
    if (!(reason instanceof ApiError && reason.reason === "NO_CURRENT_MODULE")) throw reason;
  }
}

function ModuleRunner(props: { session: Session; events: EventLog; onModuleOver: () => Promise<void> }) {
  const { session, events, onModuleOver } = props;
  const module = session.currentModule ?? {};
  const sessionId = session.sessionId ?? "";
  const items = useMemo(() => module.items ?? [], [module.items]);
  const passages = useMemo(
    () => new Map((module.passages ?? []).map((p) => [p.passageId ?? "", p])),
    [module.passages],
  );
  const [answers, setAnswers] = useState<Map<string, Answer>>(
    () => new Map((module.responses ?? []).map((r) => [r.itemId ?? "", r.answer ?? {}])),
  );
  const [saveState, setSaveState] = useState<SaveState>("saved");
  const [notice, setNotice] = useState<string | null>(null);
  const [deadlineMs, setDeadlineMs] = useState(() => Date.now() + (module.remainingSeconds ?? 0) * 1000);
  // A proctor's pause (the clock stands still, answers stay queued) or void, shown over the exam.
  const [halt, setHalt] = useHalt(module.paused === true);
  // Where the student was: on this device, a move not yet reported; else the last item the server heard of from
  // any device; else the first question without an answer.
  const reported = useRef<string | null>(null);
  const [position, setPosition] = useState(() => {
    const itemIds = items.map((item) => item.itemId ?? "");
    reported.current = events.unreportedView(itemIds) ?? module.currentItemId ?? "";
    const at = itemIds.indexOf(reported.current);
    if (at >= 0) return at;
    const firstOpen = items.findIndex((item) => !answers.has(item.itemId ?? ""));
    return firstOpen < 0 ? 0 : firstOpen;
  });
  // Each move reported in the event log, so that a reload or another device lands on the same question.
  const viewedItemId = items[position]?.itemId ?? "";
  useEffect(() => {
    if (viewedItemId === "" || viewedItemId === reported.current) return;
    reported.current = viewedItemId;
    events.note("EVENT_TYPE_ITEM_VIEWED", viewedItemId);
  }, [events, viewedItemId]);
  const shown = useRef(Date.now());
  const saver = useMemo(
    () =>
      new AnswerSaver(sessionId, {
        state: (state) => {
          setSaveState(state);
        },
        saved: (_itemId, remainingSeconds) => {
          setDeadlineMs(Date.now() + remainingSeconds * 1000);
        },
        refused: (_itemId, error) => {
          setNotice(error.message);
        },
      }),
    [sessionId],
  );
  useEffect(() => {
    // Answers queued before a reload or while offline show over the saved ones and are sent now.
    const pending = saver.pending();
    if (pending.length > 0) {
      setAnswers((current) => new Map([...current, ...pending.map((p) => [p.itemId, p.answer] as const)]));
      void saver.flush();
    }
    return () => {
      saver.stop();
    };
  }, [saver]);

  const remaining = useCountdown(deadlineMs);
  const over = useRef(false);
  const moveOn = useCallback(async () => {
    if (over.current) return;
    over.current = true;
    setNotice("Saving your answers and moving on…");
    try {
      await saver.drain();
      await onModuleOver();
    } catch (reason) {
      if (!isHalt(reason)) throw reason;
      // Paused: the module goes on after the resume, with the server's time left.
      over.current = false;
      setNotice(null);
    }
  }, [saver, onModuleOver]);
  useEffect(() => {
    if (remaining === 0 && halt === null) void moveOn();
  }, [remaining, moveOn, halt]);

  const item = items[position];
  const onAnswer = useCallback(
    (answer: Answer) => {
      if (item === undefined) return;
      const itemId = item.itemId ?? "";
      setAnswers((current) => new Map(current).set(itemId, answer));
      saver.save({ itemId, answer, requestId: newRequestId(), elapsedMs: Date.now() - shown.current });
    },
    [item, saver],
  );
  const go = (next: number) => {
    shown.current = Date.now();
    setPosition(next);
  };
  if (item === undefined) return <p className="card">This part has no questions.</p>;
  const warning = clockWarning(remaining);
  const passage = item.passageId ? passages.get(item.passageId) : undefined;
  // Prompt audio played on any device the server heard of, or on this one and not yet reported: not offered again.
  const played = new Set([...(module.audioPlayedItemIds ?? []), ...events.unreportedPlays()]);
  return (
    <div className="exam" inert={halt !== null}>
      {halt !== null ? (
        <Halted
          sessionId={sessionId}
          halt={halt}
          onResumed={(seconds) => {
            setDeadlineMs(Date.now() + seconds * 1000);
            setHalt(null);
            saver.resume();
          }}
        />
      ) : null}
      <div className="exam-bar">
        <span>
          {sectionName(module.section)}, part {module.sequence}: question {position + 1} of {items.length}
        </span>
        <span className={`save ${saveState}`} role="status" aria-live="polite">
          {saveState === "saved" ? "All answers saved" : saveState === "saving" ? "Saving…" : "Offline: answers kept here"}
        </span>
        <span className="clock" aria-label="Time left in this part">
          {formatClock(remaining)}
        </span>
      </div>
      {warning !== null ? (
        <p className="warning" role="alert">
          {warning}
        </p>
      ) : null}
      {notice !== null ? <p role="alert">{notice}</p> : null}
      <section aria-label={`Question ${position + 1}`} className="card">
        <Task
          key={item.itemId}
          sessionId={sessionId}
          item={item}
          passage={passage}
          answer={answers.get(item.itemId ?? "")}
          onAnswer={onAnswer}
          audioPlayed={audioPlayedBefore(item, items, played)}
          onAudioPlayed={() => {
            events.note("EVENT_TYPE_AUDIO_PLAYED", item.itemId ?? undefined);
          }}
        />
      </section>
      <nav className="exam-nav" aria-label="Questions">
        <button type="button" disabled={position === 0} onClick={() => { go(position - 1); }}>
          Previous
        </button>
        {position + 1 < items.length ? (
          <button type="button" onClick={() => { go(position + 1); }}>
            Next
          </button>
        ) : (
          <button
            type="button"
            onClick={() => {
              if (window.confirm("Leave this part? You cannot come back to it.")) void moveOn();
            }}
          >
            Finish this part
          </button>
        )}
      </nav>
    </div>
  );
}

/** The session's event log, with focus lost and regained noted as the browser reports them. */
function useEventLog(sessionId: string): EventLog {
  const events = useMemo(() => new EventLog(sessionId), [sessionId]);
  useEffect(() => {
    const lost = () => {
      events.note("EVENT_TYPE_FOCUS_LOST");
    };
    const regained = () => {
      events.note("EVENT_TYPE_FOCUS_REGAINED");
    };
    window.addEventListener("blur", lost);
    window.addEventListener("focus", regained);
    events.start();
    return () => {
      window.removeEventListener("blur", lost);
      window.removeEventListener("focus", regained);
      events.stop();
    };
  }, [events]);
  return events;
}

// A proctor's pause or void as the student meets it: a full screen over the exam that says so in a sentence, the
// clock stopped at the server's time left, the session looked at until the proctor resumes the test.
import { useEffect, useRef, useState } from "react";
import { createPortal } from "react-dom";
import { Link, useLocation } from "wouter";
import { api, ApiError, call, onRefusal } from "../api/client";
import { formatClock } from "./clock";

export type Halt = "paused" | "voided";

const HALTS: Record<string, Halt | undefined> = { SESSION_PAUSED: "paused", SESSION_VOIDED: "voided" };
// How often a paused student's page asks whether the proctor has resumed the test.
const LOOK_MS = 2000;

/** Paused or voided: since the page opened on a paused module, or since any call was refused for either. */
export function useHalt(pausedAtStart: boolean): [Halt | null, (halt: Halt | null) => void] {
  const [halt, setHalt] = useState<Halt | null>(pausedAtStart ? "paused" : null);
  useEffect(
    () =>
      onRefusal((reason) => {
        const met = HALTS[reason];
        // A void is final: a later pause refusal (an answer sent before it) does not hide it.
        if (met !== undefined) setHalt((current) => (current === "voided" ? current : met));
      }),
    [],
  );
  return [halt, setHalt];
}

/** Whether a call failed because the test is paused or voided (the screen then says so; nothing else to do). */
export function isHalt(error: unknown): boolean {
  return error instanceof ApiError && error.reason !== null && HALTS[error.reason] !== undefined;
}

/** The screen over the exam while paused (looking every few seconds whether the test goes on) or once voided. */
export function Halted(props: { sessionId: string; halt: Halt; onResumed: (remainingSeconds: number) => void }) {
  const { sessionId } = props;
  const [voided, setVoided] = useState(props.halt === "voided");
  const [left, setLeft] = useState<number | null>(null);
  const [, navigate] = useLocation();
  // The latest callback, without restarting the looks at each render of the exam (its clock ticks).
  const onResumed = useRef(props.onResumed);
  useEffect(() => {
    onResumed.current = props.onResumed;
  });
  useEffect(() => {
    if (props.halt === "voided") setVoided(true);
  }, [props.halt]);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
  }, [voided]);

  useEffect(() => {
    if (voided) return;
    let current = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const look = async () => {
      try {
        const session = await call(() =>
          api.GET("/api/sessions/{session_id}", { params: { path: { session_id: sessionId } } }),
        );
        if (!current) return;
        const module = session.currentModule;
        if (session.voidTime) {
          setVoided(true);
          return;
        }
        if (session.state === "SESSION_STATE_FINISHED") {
          navigate(`/report/${sessionId}`);
          return;
        }
        if (!session.pauseTime && module?.paused !== true) {
          onResumed.current(module?.remainingSeconds ?? 0);
          return;
        }
        setLeft(module?.remainingSeconds ?? null);
      } catch {
        // Offline or busy: the next look tries again.
      }
      if (current) timer = setTimeout(() => void look(), LOOK_MS);
    };
    void look();
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [sessionId, voided, navigate]);

  // Into the page's body, beside the exam: the exam under it is inert (no focus, no clicks, hidden from readers).
  return createPortal(
    <div className="halted" role="dialog" aria-modal="true" aria-labelledby="halted-heading">
      <div className="card">
        {voided ? (
          <>
            <h1 id="halted-heading" tabIndex={-1} ref={heading}>
              Your proctor has voided this test
            </h1>
            <p>The test is over and will not be scored. The answers you gave are kept.</p>
            <Link href="/">Back to your tests</Link>
          </>
        ) : (
          <>
            <h1 id="halted-heading" tabIndex={-1} ref={heading}>
              Your proctor has paused your exam; your answers are kept.
            </h1>
            <p>
              {left !== null ? (
                <>
                  Time left in this part: <span className="clock">{formatClock(left)}</span>. The clock is stopped
                  until your proctor resumes the test.
                </>
              ) : (
                "The clock is stopped until your proctor resumes the test."
              )}
            </p>
            <p role="status">Waiting for your proctor… The test continues here by itself.</p>
          </>
        )}
      </div>
    </div>,
    document.body,
  );
}
